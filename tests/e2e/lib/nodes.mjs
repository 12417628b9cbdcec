// Several relay nodes for the end-to-end tests: a redis-server on a free loopback port, relay
// processes sharing it (--broker redis://…), and in front of them a small load balancer or nginx
// with the shipped configuration (crates/relay/deploy/nginx.conf).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, env, freePort } from './harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when something answers `PING` with `+PONG` on 127.0.0.1:`port`. */
function ping(port) {
  return new Promise((ok) => {
    const s = connect(port, '127.0.0.1');
    s.setTimeout(1000, () => (s.destroy(), ok(false)));
    s.on('error', () => ok(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => (s.destroy(), ok(d.toString().startsWith('+PONG'))));
  });
}

/** A redis-server without persistence; `stop()` kills it. */
export async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 200 && !(await ping(port)); i++) await sleep(25);
  if (!(await ping(port))) throw new Error('redis-server did not start');
  return { url: `redis://127.0.0.1:${port}/0`, stop: () => child.kill('SIGKILL') };
}

/** A relay process on the shared Redis; resolves once it printed its address. */
export function startNode(redisUrl, extra = []) {
  const bin = env('SSE_RELAY_BIN');
  const args = ['--listen', '127.0.0.1:0', '--broker', redisUrl, '--allow-origin', '*', '--heartbeat-ms', '1000', ...extra];
  const child = spawn(bin, args, { env: { ...process.env, SSE_RELAY_SECRET: 'nodes-e2e-secret-of-at-least-32-bytes' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => (err = (err + c).slice(-4000)));
  return new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      const m = /listening on http:\/\/([0-9.]+):(\d+)/.exec(out);
      if (m) ok({ child, host: m[1], port: Number(m[2]), exited: new Promise((r) => child.on('exit', (code) => r(code))), stderr: () => err });
    });
    child.on('exit', (code) => fail(new Error(`relay exited ${code}: ${err}`)));
  });
}

/**
 * A load balancer on 127.0.0.1: requests go round-robin to the nodes; streams (`/events`, and
 * WebSocket upgrades) to the first node that accepts a connection, so that they all sit on
 * `nodes[0]` while it lives. A node that refuses the connection (gone, or draining) is skipped:
 * request bodies are read whole first, so nothing was sent to it.
 */
export function startBalancer(nodes) {
  let turn = 0;
  const order = (stream) => {
    if (stream) return nodes;
    turn = (turn + 1) % nodes.length;
    return [...nodes.slice(turn), ...nodes.slice(0, turn)];
  };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const targets = order(req.url.split('?')[0].endsWith('/events'));
      const attempt = (i) => {
        if (i >= targets.length) {
          res.writeHead(502).end('no node');
          return;
        }
        const { host, port } = targets[i];
        const up = request({ host, port, method: req.method, path: req.url, headers: req.headers, agent: false }, (r) => {
          res.writeHead(r.statusCode, r.headers);
          r.pipe(res);
          r.on('error', () => res.destroy());
        });
        up.on('error', (e) => {
          if (e.code === 'ECONNREFUSED' && !res.headersSent) attempt(i + 1);
          else res.destroy();
        });
        res.on('close', () => up.destroy());
        up.end(body);
      };
      attempt(0);
    });
  });
  const upgraded = new Set();
  server.on('upgrade', (req, socket, head) => {
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    const targets = order(true);
    const attempt = (i) => {
      if (i >= targets.length) return socket.destroy();
      const up = connect(targets[i].port, targets[i].host);
      up.once('error', (e) => (e.code === 'ECONNREFUSED' ? attempt(i + 1) : socket.destroy()));
      up.once('connect', () => {
        let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
        for (let h = 0; h < req.rawHeaders.length; h += 2) raw += `${req.rawHeaders[h]}: ${req.rawHeaders[h + 1]}\r\n`;
        up.write(raw + '\r\n');
        if (head.length) up.write(head);
        up.pipe(socket);
        socket.pipe(up);
        up.on('error', () => socket.destroy());
        socket.on('error', () => up.destroy());
        up.on('close', () => socket.destroy());
        socket.on('close', () => up.destroy());
      });
    };
    attempt(0);
  });
  return new Promise((ok) => {
    server.listen(0, '127.0.0.1', () =>
      ok({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () =>
          new Promise((done) => {
            server.close(done);
            server.closeAllConnections();
            for (const s of upgraded) s.destroy();
          }),
      }),
    );
  });
}

/** True when something accepts a TCP connection on 127.0.0.1:`port`. */
function listening(port) {
  return new Promise((ok) => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => ok(false));
    s.on('connect', () => (s.destroy(), ok(true)));
  });
}

/**
 * nginx on 127.0.0.1 with crates/relay/deploy/nginx.conf, its upstream servers
 * replaced by `nodes` and its `listen` by a free loopback port. `balance` (for comparison runs)
 * replaces the `hash` line: `''` round-robin, `'least_conn;'` and so on. `tls: { cert, key }`
 * turns on the file's commented TLS lines instead (HTTPS and HTTP/2; `http2: false` leaves HTTP/2
 * off, for comparison runs). Resolves to `{ url, close }`.
 */
export async function startNginx(nodes, { balance, tls, http2 = true } = {}) {
  const shipped = readFileSync(join(ROOT, 'crates/relay/deploy/nginx.conf'), 'utf8');
  const port = await freePort();
  const servers = nodes.map((n) => `server ${n.host}:${n.port};`).join('\n  ');
  let conf = shipped.replace(/server 10\.0\.0\.11:8080;\n\s*server 10\.0\.0\.12:8080;/, servers);
  const listen = tls ? `listen 127.0.0.1:${port} ssl${http2 ? ' http2' : ''};` : `listen 127.0.0.1:${port};`;
  if (tls) {
    conf = conf
      .replace(/^\s*listen 80;\n/m, '')
      .replace(/# listen 443 ssl http2;/, listen)
      .replace(/# ssl_certificate +\S+;/, `ssl_certificate ${tls.cert};`)
      .replace(/# ssl_certificate_key +\S+;/, `ssl_certificate_key ${tls.key};`);
  } else {
    conf = conf.replace(/listen 80;/, listen);
  }
  if (balance !== undefined) conf = conf.replace(/^(\s*)hash .*$/m, `$1${balance}`);
  if (!conf.includes(servers) || !conf.includes(listen) || (tls && !conf.includes(`ssl_certificate_key ${tls.key};`))) {
    throw new Error('nginx.conf: its upstream servers, listen or TLS lines changed; update startNginx');
  }
  const work = mkdtempSync(join(tmpdir(), 'sse-nginx-'));
  writeFileSync(join(work, 'sse-relay.conf'), conf);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${work}/${t};`).join('\n');
  writeFileSync(
    join(work, 'nginx.conf'),
    `daemon off;\nmaster_process off;\nworker_processes 1;\npid ${work}/nginx.pid;\nerror_log ${work}/error.log warn;\nevents {}\nhttp {\n  access_log off;\n${temp}\n  include ${work}/sse-relay.conf;\n}\n`,
  );
  const child = spawn('nginx', ['-p', work, '-c', join(work, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => (err = (err + c).slice(-4000)));
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  for (let i = 0; i < 200 && !(await listening(port)); i++) {
    if (child.exitCode !== null) break;
    await sleep(25);
  }
  if (!(await listening(port))) {
    child.kill('SIGKILL');
    let log = '';
    try {
      log = readFileSync(join(work, 'error.log'), 'utf8');
    } catch {
      // none written
    }
    rmSync(work, { recursive: true, force: true });
    throw new Error(`nginx did not start: ${err}${log}`);
  }
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: async () => {
      child.kill('SIGTERM');
      await exited;
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/**
 * A self-signed certificate for 127.0.0.1 in a fresh directory: `{ cert, key, remove }` (paths).
 * Node trusts it through NODE_EXTRA_CA_CERTS, the browser through `ignoreHTTPSErrors`.
 */
export function selfSignedCert() {
  const dir = mkdtempSync(join(tmpdir(), 'sse-cert-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
