// A proxy in front of the test relay for the browser tests (started by scripts/test-wasm.sh; prints
// its port, exits on SIGTERM or after 15 minutes). Each behaviour is a path prefix; the rest of the
// path goes to the relay. `<tag>` is any word a test picks, so that counters start fresh per test
// (the suite runs once per browser against the same proxy).
//   /no-ws/…          forwards HTTP, refuses WebSocket upgrades (some corporate proxies do)
//   /bad-token/…      forwards, with every `token=` query value altered (the relay refuses: UNAUTHORIZED)
//   /cut-<tag>/…      cuts the connection of the first 6 `POST /v1/channels` (no answer at all; a
//                     browser may retry a cut request once on its own, so the page sees at least 3)
//   /busy-<tag>/…     answers the first 2 `POST /v1/channels` with 503 SHUTTING_DOWN, then forwards
//   /ws-hang/…        forwards HTTP; a WebSocket upgrade is accepted by TCP and never answered
//   /ws-silent/…      forwards WebSocket upgrades, then drops every frame from the relay (a buffering proxy)
//   /ready-drop/…     forwards WebSocket upgrades, then closes each one right after its first frame (`ready`)
// Anything else is forwarded as it is.
const http = require('http');
const net = require('net');

const target = new URL(process.argv[2]);
const counts = new Map();
/** How many times `key` was seen before (0 the first time). */
const seen = (key) => {
  const n = counts.get(key) || 0;
  counts.set(key, n + 1);
  return n;
};

/** [behaviour, prefix, rest of the path] */
function route(url) {
  const m = /^\/(no-ws|bad-token|ws-hang|ws-silent|ready-drop|cut-[\w-]+|busy-[\w-]+)(\/.*)$/.exec(url);
  if (!m) return [null, '', url];
  let rest = m[2];
  const name = m[1];
  const kind = name.startsWith('cut-') ? 'cut' : name.startsWith('busy-') ? 'busy' : name;
  if (kind === 'bad-token') rest = rest.replace(/([?&]token=)([^&]*)/, (_, k, v) => k + 'x' + v);
  return [kind, m[1], rest];
}

const server = http.createServer((req, res) => {
  const [kind, prefix, path] = route(req.url);
  const creating = req.method === 'POST' && path.startsWith('/v1/channels') && !path.startsWith('/v1/channels/');
  if (creating && kind === 'cut' && seen(prefix) < 6) {
    req.socket.destroy();
    return;
  }
  if (creating && kind === 'busy' && seen(prefix) < 2) {
    res.writeHead(503, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
    res.end(JSON.stringify({ error: { code: 'SHUTTING_DOWN', message: 'the relay is draining' } }));
    return;
  }
  const up = http.request(
    { host: target.hostname, port: target.port, method: req.method, path, headers: req.headers },
    (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  res.on('close', () => up.destroy());
  req.pipe(up);
});

const held = [];
server.on('upgrade', (req, socket, head) => {
  const [kind, , path] = route(req.url);
  if (kind === 'no-ws') return socket.destroy();
  if (kind === 'ws-hang') return held.push(socket);
  const up = net.connect(Number(target.port), target.hostname, () => {
    let text = `${req.method} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i < req.rawHeaders.length; i += 2) text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
    up.write(`${text}\r\n`);
    up.write(head);
    socket.pipe(up);
    if (kind !== 'ws-silent' && kind !== 'ready-drop') {
      up.pipe(socket);
      return;
    }
    // Pass the handshake answer; then nothing (ws-silent), or the first frame and a cut (ready-drop).
    let buf = Buffer.alloc(0);
    let passed = false;
    let dropping = false;
    const firstFrame = (bytes) => {
      if (kind !== 'ready-drop' || dropping || bytes.length === 0) return;
      dropping = true;
      socket.write(bytes);
      setTimeout(() => socket.destroy(), 20);
    };
    up.on('data', (chunk) => {
      if (passed) return firstFrame(chunk);
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      passed = true;
      socket.write(buf.subarray(0, end + 4));
      firstFrame(buf.subarray(end + 4));
    });
  });
  up.on('error', () => socket.destroy());
  socket.on('error', () => up.destroy());
  socket.on('close', () => up.destroy());
});

server.listen(0, '127.0.0.1', () => console.log(server.address().port));
setTimeout(() => process.exit(0), 15 * 60 * 1000).unref();
process.on('SIGTERM', () => process.exit(0));
