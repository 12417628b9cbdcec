// The demo's local function runner: a stand-in for uniCloud's `callFunction`, for DEVELOPMENT ONLY.
//
//   SSE_RELAY_URL=http://127.0.0.1:PORT [DEMO_PORT=8080] [DEMO_TEST_HOOKS=1] node www/server/runner.mjs
//
// It serves the demo page (`www/`) and the package's browser build (`pkg/`, at `/pkg/`) on
// 127.0.0.1:DEMO_PORT, and answers:
//   GET  /__config        {relay, testHooks, sdk, functions}: what the page needs to start.
//   POST /__callFunction  {name, data}: runs `exports.main(event, context)` of
//                         `www/cloudfunctions/<name>/index.js` with a global `uniCloud` whose
//                         `deserializeSSEChannel` comes from the package's Node build, and answers
//                         like uniCloud: {result, requestId}, or {error: {code, message}}.
//   POST /__cut           {channelId, pauseMs}: asks the relay (started with --test-hooks) to drop
//                         the channel's streams, to show resume without loss.
// It refuses to start when NODE_ENV=production: it runs code on request and has no authentication.

import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { readFileSync, existsSync, statSync, createReadStream, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WWW = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = path.resolve(WWW, '..');
const FUNCTIONS = path.join(WWW, 'cloudfunctions');
const PKG = path.resolve(process.env.SSE_CHANNEL_PKG || path.join(ROOT, 'pkg'));
const HOST = '127.0.0.1';
const MAX_BODY = 1024 * 1024;
const CALL_TIMEOUT_MS = 120_000;
const FUNCTION_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const CHANNEL_ID = /^[0-9a-f]{32}$/;

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.ts': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
};

function fail(message) {
  console.error(`runner: ${message}`);
  process.exit(1);
}

if (process.env.NODE_ENV === 'production') {
  fail(
    'refusing to start: NODE_ENV=production. This runner emulates uniCloud.callFunction for local ' +
      'development only (it runs functions on request, without authentication). Deploy your functions ' +
      'to your cloud platform instead.',
  );
}

// ---- configuration -------------------------------------------------------------------------------

const relay = (process.env.SSE_RELAY_URL || '').replace(/\/+$/, '');
if (!/^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(relay)) {
  fail(`SSE_RELAY_URL must be the relay's http(s) base URL, got ${JSON.stringify(process.env.SSE_RELAY_URL ?? '')}`);
}
const relayOrigin = new URL(relay).origin;
const testHooks = process.env.DEMO_TEST_HOOKS === '1';
const port = Number(process.env.DEMO_PORT ?? 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`DEMO_PORT must be a port number, got ${process.env.DEMO_PORT}`);

// ---- the package: resolve its entries through its `exports` map -----------------------------------

/** Resolves `exports` (or a sub-tree of it) for the given conditions, in the map's own key order. */
function resolveExport(target, conditions) {
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const r = resolveExport(t, conditions);
      if (r) return r;
    }
    return null;
  }
  if (target && typeof target === 'object') {
    if (Object.keys(target).some((k) => k.startsWith('.'))) return resolveExport(target['.'], conditions);
    for (const [key, value] of Object.entries(target)) {
      if (key === 'default' || conditions.includes(key)) {
        const r = resolveExport(value, conditions);
        if (r) return r;
      }
    }
  }
  return null;
}

function readPackage() {
  const file = path.join(PKG, 'package.json');
  if (!existsSync(file)) {
    fail(`the npm package is not built: ${file} is missing. Run \`bash scripts/build-pkg.sh\` (make demo does it).`);
  }
  const manifest = JSON.parse(readFileSync(file, 'utf8'));
  const entry = (conditions, fallbacks) => {
    const rel = (manifest.exports && resolveExport(manifest.exports, conditions)) || fallbacks.map((f) => manifest[f]).find(Boolean);
    if (!rel) fail(`${file} has no entry for ${conditions.join('/')}`);
    const abs = path.resolve(PKG, rel);
    if (!abs.startsWith(PKG + path.sep) || !existsSync(abs)) fail(`${file}: entry ${rel} does not exist`);
    return abs;
  };
  return {
    name: manifest.name,
    version: manifest.version,
    browser: entry(['browser', 'import', 'module'], ['module', 'browser', 'main']),
    node: entry(['node', 'require'], ['main']),
  };
}

const pkg = readPackage();
const sdkUrl = '/pkg/' + path.relative(PKG, pkg.browser).split(path.sep).join('/');

// ---- the cloud-function side: a global `uniCloud` with deserializeSSEChannel ----------------------

const require = createRequire(import.meta.url);
const nodeBuild = require(pkg.node);
// The writer only posts to relays the deployer allowed; here that is the demo's own relay.
process.env.SSE_CHANNEL_ALLOWED_RELAYS = relayOrigin;
globalThis.uniCloud = {};
if (typeof nodeBuild.installUniCloud === 'function') {
  nodeBuild.installUniCloud(globalThis.uniCloud, { allowedRelays: [relayOrigin] });
}
if (typeof globalThis.uniCloud.deserializeSSEChannel !== 'function') {
  if (typeof nodeBuild.deserializeSSEChannel !== 'function') {
    fail(`${pkg.node} exports neither installUniCloud nor deserializeSSEChannel`);
  }
  globalThis.uniCloud.deserializeSSEChannel = (obj, options) =>
    nodeBuild.deserializeSSEChannel(obj, { allowedRelays: [relayOrigin], ...options });
}

function listFunctions() {
  return readdirSync(FUNCTIONS, { withFileTypes: true })
    .filter((d) => d.isDirectory() && FUNCTION_NAME.test(d.name) && existsSync(path.join(FUNCTIONS, d.name, 'index.js')))
    .map((d) => d.name)
    .sort();
}

/** mtime of each function file when it was last loaded. */
const loadedAt = new Map();

class CallError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function callFunction(name, data, clientIP) {
  if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) {
    throw new CallError(400, 'FUNCTION_NAME_INVALID', 'function name must match ' + FUNCTION_NAME);
  }
  const file = path.join(FUNCTIONS, name, 'index.js');
  if (!existsSync(file)) throw new CallError(404, 'FUNCTION_NOT_FOUND', `no cloud function named ${name}`);
  // Edit a function and call it again: a changed file is loaded afresh (no restart needed).
  const mtime = statSync(file).mtimeMs;
  if (loadedAt.get(file) !== mtime) {
    delete require.cache[require.resolve(file)];
    loadedAt.set(file, mtime);
  }
  const mod = require(file);
  if (typeof mod.main !== 'function') throw new CallError(500, 'FUNCTION_INVALID', `${name} does not export main`);
  const requestId = randomUUID();
  const context = { requestId, FUNCTION_NAME: name, PLATFORM: 'web', CLIENTIP: clientIP, SPACEINFO: { provider: 'local' } };
  const event = data && typeof data === 'object' ? data : {};
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CallError(504, 'FUNCTION_TIMEOUT', `${name} ran longer than ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS);
  });
  try {
    const result = await Promise.race([mod.main(event, context), timeout]);
    return { result: result === undefined ? null : result, requestId };
  } finally {
    clearTimeout(timer);
  }
}

// ---- HTTP ---------------------------------------------------------------------------------------

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new CallError(413, 'BODY_TOO_LARGE', `request body over ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'));
      } catch {
        reject(new CallError(400, 'BAD_REQUEST', 'request body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

/** Serves a file under `base`, never outside it; `deny` lists top-level folders that stay private. */
function serveStatic(res, base, rel, deny = []) {
  let decoded;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    decoded = '\0';
  }
  if (decoded.includes('\0')) return send(res, 400, { error: { code: 'BAD_REQUEST', message: 'bad path' } });
  const file = path.resolve(base, '.' + path.posix.normalize('/' + decoded));
  const inside = path.relative(base, file);
  if (inside.startsWith('..') || path.isAbsolute(inside) || deny.includes(inside.split(path.sep)[0])) {
    return send(res, 404, { error: { code: 'NOT_FOUND', message: 'not found' } });
  }
  let target = file;
  if (existsSync(target) && statSync(target).isDirectory()) target = path.join(target, 'index.html');
  if (!existsSync(target) || !statSync(target).isFile()) {
    return send(res, 404, { error: { code: 'NOT_FOUND', message: 'not found' } });
  }
  res.writeHead(200, {
    'Content-Type': MIME[path.extname(target)] || 'application/octet-stream',
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
  createReadStream(target).pipe(res);
}

async function cut(body) {
  if (!testHooks) throw new CallError(404, 'TEST_HOOKS_OFF', 'the relay was started without --test-hooks');
  const channelId = body?.channelId;
  if (typeof channelId !== 'string' || !CHANNEL_ID.test(channelId)) {
    throw new CallError(400, 'BAD_REQUEST', 'channelId must be 32 lowercase hex digits');
  }
  const pauseMs = Math.max(0, Math.min(30_000, Math.trunc(Number(body.pauseMs ?? 0)) || 0));
  const url = `${relay}/v1/test/channels/${channelId}/disconnect?pauseMs=${pauseMs}`;
  const r = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(5000) });
  const answer = await r.json().catch(() => ({}));
  if (!r.ok) throw new CallError(r.status, answer?.error?.code || 'RELAY_ERROR', answer?.error?.message || `relay answered ${r.status}`);
  return { ...answer, pauseMs };
}

/**
 * Only this machine's pages may use the runner: the Host header must name loopback (a DNS-rebinding
 * page names its own host), a cross-site Origin is refused, and POSTs must be JSON (so a cross-site
 * form or `no-cors` fetch cannot run a function: they cannot send that content type without a
 * preflight, which the runner never grants).
 */
function refuseForeign(req) {
  const host = req.headers.host ?? '';
  if (!/^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(host)) return [403, 'FORBIDDEN', 'Host must be 127.0.0.1 or localhost'];
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) return [403, 'FORBIDDEN', 'cross-origin requests are refused'];
  if (req.method === 'POST' && !/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
    return [415, 'UNSUPPORTED_MEDIA_TYPE', 'POST bodies must be application/json'];
  }
  return null;
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, `http://${HOST}`);
  const started = Date.now();
  const refused = refuseForeign(req);
  if (refused) return send(res, refused[0], { error: { code: refused[1], message: refused[2] } });
  try {
    if (url.pathname === '/__config' && req.method === 'GET') {
      return send(res, 200, { relay, testHooks, sdk: sdkUrl, package: `${pkg.name}@${pkg.version}`, functions: listFunctions() });
    }
    if (url.pathname === '/__callFunction') {
      if (req.method !== 'POST') return send(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'POST only' } });
      const body = await readJson(req);
      const name = body?.name;
      try {
        const answer = await callFunction(name, body?.data, req.socket.remoteAddress);
        console.log(`runner: ${name} ok in ${Date.now() - started} ms`);
        return send(res, 200, answer);
      } catch (err) {
        console.log(`runner: ${typeof name === 'string' ? name.slice(0, 64) : '?'} failed: ${err?.code ?? ''} ${err?.message ?? err}`);
        throw err;
      }
    }
    if (url.pathname === '/__cut') {
      if (req.method !== 'POST') return send(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'POST only' } });
      return send(res, 200, await cut(await readJson(req)));
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'GET only' } });
    }
    if (url.pathname.startsWith('/pkg/')) return serveStatic(res, PKG, url.pathname.slice('/pkg'.length));
    // The functions and this runner are server code: never served.
    return serveStatic(res, WWW, url.pathname, ['server', 'cloudfunctions']);
  } catch (err) {
    const status = err instanceof CallError ? err.status : 500;
    const code = err?.code && typeof err.code === 'string' ? err.code : 'FUNCTION_ERROR';
    if (!res.headersSent) send(res, status, { error: { code, message: String(err?.message ?? err) } });
  }
});

server.on('error', (err) => {
  fail(`cannot listen on ${HOST}:${port}: ${err.code || err.message}. Set DEMO_PORT to a free port.`);
});
server.listen(port, HOST, () => {
  const { port: bound } = server.address();
  console.log(`open-sse-channel demo (development only) listening on http://${HOST}:${bound}/`);
  console.log(`  relay ${relay}${testHooks ? ' (test hooks on)' : ''}, package ${pkg.name}@${pkg.version} from ${PKG}`);
  console.log(`  open http://${HOST}:${bound}/ and press Start; Ctrl-C stops the demo`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
