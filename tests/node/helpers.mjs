// Shared helpers of the Node tests: the package under test, a real relay, an SSE reader, a fault proxy.
// Environment (set by scripts/test-node.sh): SSE_RELAY_URL, SSE_CHANNEL_NODE_MODULE.
import http from 'node:http';
import net from 'node:net';
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

export const relayUrl = process.env.SSE_RELAY_URL;
if (!relayUrl) throw new Error('SSE_RELAY_URL is not set: run scripts/test-node.sh');

/** The Node build of the package (its `require` entry). */
export function loadSdk() {
  const where = process.env.SSE_CHANNEL_NODE_MODULE;
  if (!where) throw new Error('SSE_CHANNEL_NODE_MODULE is not set: run scripts/test-node.sh');
  return createRequire(import.meta.url)(where);
}

/** POST /v1/channels on the real relay (retrying its creation rate limit). */
export async function createChannel(body = undefined, relay = relayUrl) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${relay}/v1/channels`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 429 && attempt < 50) {
      await res.arrayBuffer();
      await sleep(200);
      continue;
    }
    const json = await res.json();
    if (res.status !== 201) throw new Error(`create channel: HTTP ${res.status} ${JSON.stringify(json)}`);
    return json;
  }
}

/** A token signed with the relay's secret (SSE_RELAY_SECRET): JWT HS256 `{sub, scope, exp}` (exp in seconds). */
export function mintToken(claims) {
  const secret = process.env.SSE_RELAY_SECRET;
  if (!secret) throw new Error('SSE_RELAY_SECRET is not set: run scripts/test-node.sh');
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const signed = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

/** The descriptor the browser's SSEChannel.toJSON() would give for `ch`. */
export function descriptorOf(ch, relay = relayUrl) {
  return {
    type: 'SSEChannel',
    version: 1,
    relay,
    channelId: ch.channelId,
    publishToken: ch.publishToken,
    expiresAt: ch.expiresAt,
  };
}

/**
 * Subscribes to a channel's EventSource stream with plain fetch and parses it.
 * `ready` resolves once the relay sent its `ready` frame; `done` resolves with every
 * message/end/error event ({id, event, data}) once `end` (or a closing error) arrives.
 */
export function subscribe(ch, { relay = relayUrl, lastEventId = 0, timeoutMs = 20000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let onReady;
  const ready = new Promise((resolve) => (onReady = resolve));
  const events = [];
  const done = (async () => {
    const url = `${relay}/v1/channels/${ch.channelId}/events?token=${encodeURIComponent(ch.subscribeToken)}&lastEventId=${lastEventId}`;
    const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
    if (res.status !== 200) throw new Error(`subscribe: HTTP ${res.status} ${await res.text()}`);
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
          const ev = parseBlock(block);
          if (!ev) continue;
          if (ev.event === 'ready') { onReady(); continue; }
          if (ev.event === 'ping') continue;
          events.push(ev);
          if (ev.event === 'end') return events;
          if (ev.event === 'error' && ev.data?.code !== 'MESSAGES_LOST') return events;
        }
      }
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    return events;
  })();
  done.catch(() => onReady());
  return { ready, done, events, cancel: () => controller.abort() };
}

function parseBlock(block) {
  let id = null;
  let event = 'message';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'id') id = Number(value);
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0 && id === null) return event === 'message' ? null : { id, event, data: null };
  return { id, event, data: data.length ? JSON.parse(data.join('\n')) : null };
}

/** Every event of an ended channel, read from the start (the relay keeps ended channels). */
export async function eventsOf(ch) {
  return subscribe(ch).done;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of `target`, logging every request and injecting faults.
 * `plan(entry, index)` returns one of:
 *   'forward'            pass through
 *   'reset'              destroy the client connection before the relay sees the request
 *   'drop-response'      forward, let the relay store it, then destroy the client connection
 *   'cut-response'       forward, send the relay's status, headers and part of its body, then destroy
 *   {delayMs}            forward, then answer only after delayMs (for timeouts)
 *   {status, code, raw}  answer this status, relay not involved; body {"error":{code,...}} (code default
 *                        INTERNAL) or the text `raw`
 *   {status, stream}     answer this status, relay not involved, with a body that starts with the text
 *                        `stream` and never ends (64 KiB of spaces at a time, as fast as the client
 *                        reads) until the client closes the connection: entry.streamed counts the
 *                        bytes written, entry.clientClosed turns true
 *   {waitFor}            forward, then answer only once the promise `waitFor` has settled
 * Log entries: {method, path, key, body, action, status, replayed, clientGone}.
 */
export async function startProxy(target = relayUrl, plan = () => 'forward', { stripPrefix = '' } = {}) {
  const log = [];
  const sockets = new Set();
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const entry = {
      method: req.method,
      path: req.url,
      key: req.headers['idempotency-key'],
      body: body.toString('utf8'),
      status: null,
      replayed: false,
    };
    entry.action = plan(entry, log.length);
    log.push(entry);
    const action = entry.action;
    if (action === 'reset') { req.socket.destroy(); return; }
    if (action && typeof action === 'object' && action.stream !== undefined) {
      entry.status = action.status;
      entry.streamed = 0;
      entry.clientClosed = false;
      res.writeHead(action.status, { 'content-type': 'application/json' });
      const pad = Buffer.alloc(64 * 1024, ' ');
      const pump = () => {
        while (!entry.clientClosed) {
          const chunk = entry.streamed === 0 ? Buffer.from(action.stream) : pad;
          entry.streamed += chunk.length;
          if (!res.write(chunk)) return res.once('drain', pump);
        }
      };
      res.on('close', () => { entry.clientClosed = true; });
      pump();
      return;
    }
    if (action && typeof action === 'object' && action.status) {
      entry.status = action.status;
      res.writeHead(action.status, { 'content-type': 'application/json' });
      res.end(action.raw ?? JSON.stringify({ error: { code: action.code ?? 'INTERNAL', message: 'injected by the test proxy' } }));
      return;
    }
    const headers = {};
    for (const h of ['authorization', 'content-type', 'idempotency-key']) {
      if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    }
    let up;
    try {
      const path = stripPrefix && req.url.startsWith(stripPrefix + '/') ? req.url.slice(stripPrefix.length) : req.url;
      up = await fetch(target + path, {
        method: req.method,
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
      });
    } catch (e) {
      entry.status = 'upstream-failed';
      req.socket.destroy();
      return;
    }
    const text = await up.text();
    entry.status = up.status;
    entry.replayed = up.headers.get('idempotent-replayed') === 'true';
    if (action === 'drop-response') { req.socket.destroy(); return; }
    if (action === 'cut-response') {
      res.writeHead(up.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.write(text.slice(0, 3));
      setTimeout(() => req.socket.destroy(), 20);
      return;
    }
    if (action && typeof action === 'object' && action.delayMs) await sleep(action.delayMs);
    if (action && typeof action === 'object' && action.waitFor) await action.waitFor.catch(() => {});
    entry.clientGone = req.socket.destroyed;
    if (req.socket.destroyed) return;
    res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
    res.end(text);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    log,
    /** Requests that reached the proxy for a given route tail ('messages' or 'end'). */
    requests: (tail) => log.filter((e) => e.path.endsWith('/' + tail)),
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Waits until `fn()` is truthy (polling), at most `ms`; returns its last value. */
export async function until(fn, ms = 5000) {
  const end = Date.now() + ms;
  let v;
  while (!(v = fn()) && Date.now() < end) await sleep(10);
  return v;
}

/**
 * A TCP proxy on 127.0.0.1 in front of `target` (an http://host:port URL). `fault(n)` for the n-th
 * connection (0-based) returns:
 *   null                 pipe both ways
 *   {cutRequestAfter: k} forward only the first k bytes the client sends, then kill both sides
 *   'drop-response'      forward the request; when the relay's first answer bytes come, kill both
 *                        sides instead of forwarding them (the relay has stored the request)
 */
export async function startTcpProxy(target = relayUrl, fault = () => null) {
  const { hostname, port } = new URL(target);
  const sockets = new Set();
  const stats = { connections: 0, faults: 0, answers: '' }; // answers: every relay byte passed on, as text
  const server = net.createServer((client) => {
    const n = stats.connections++;
    const f = fault(n);
    const upstream = net.connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    const kill = () => { stats.faults++; client.destroy(); upstream.destroy(); };
    let sent = 0;
    client.on('data', (chunk) => {
      if (f && f.cutRequestAfter !== undefined) {
        const room = f.cutRequestAfter - sent;
        if (room <= 0) return;
        upstream.write(chunk.subarray(0, room));
        sent += Math.min(room, chunk.length);
        if (sent >= f.cutRequestAfter) setTimeout(kill, 50);
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (f === 'drop-response') return kill();
      stats.answers += chunk.toString('latin1');
      client.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stats,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Asserts that `promise` rejects with an Error carrying `code`; returns the error. */
export async function rejectsWith(assert, promise, code, messageRe) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected a rejection with ${code}, but it resolved`);
  assert.ok(err instanceof Error, `expected an Error, got ${err}`);
  assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
  if (messageRe) assert.match(err.message, messageRe);
  return err;
}

/** Asserts that `fn()` throws an Error carrying `code`; returns the error. */
export function throwsWith(assert, fn, code, messageRe) {
  let err;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected a throw with ${code}`);
  assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
  if (messageRe) assert.match(err.message, messageRe);
  return err;
}
