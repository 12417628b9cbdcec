// Shared pieces of the package end-to-end tests: fresh projects installed from the packed tarball
// (with a node_modules cache keyed by the project's package.json), a static server, dev servers,
// headless Chromium through the workspace's playwright-core, and the scenario itself.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Agent, createServer, request as httpRequest } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const OUT = join(ROOT, 'tests/out/e2e');
const CACHE = join(ROOT, 'tests/out/npm-cache');
const require = createRequire(join(ROOT, 'package.json'));
const { chromium } = require('playwright-core');
const { messageFor } = require(join(ROOT, 'tests/e2e/app/messages.cjs'));

export const TRANSPORTS = ['websocket', 'eventsource'];
export const N_MESSAGES = Number(process.env.E2E_MESSAGES || 40);

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the e2e tests through tests/e2e/run.sh (make test-e2e)`);
  return v;
}

/** Whether the project or suite `name` runs: E2E_ONLY (comma-separated) limits them; unset runs all. */
export function enabled(name) {
  const only = (process.env.E2E_ONLY || '').split(',').filter(Boolean);
  return only.length === 0 || only.includes(name);
}

export function log(...args) {
  mkdirSync(OUT, { recursive: true });
  const line = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
  appendFileSync(join(OUT, 'e2e.log'), `${new Date().toISOString()} ${line}\n`);
}

function run(cmd, args, opts) {
  log('$', cmd, ...args, `(in ${opts.cwd})`);
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed in ${opts.cwd}:\n${e.stdout || ''}\n${e.stderr || ''}`);
  }
}

const NPM_FLAGS = ['--no-audit', '--no-fund', '--loglevel=error', '--prefer-offline'];

/**
 * A fresh project in tests/out/e2e/<name>: the template's files, the shared page/writer files, its
 * npm dependencies (from the cache when the template's package.json is unchanged, else from the
 * registry), then `npm install <tarball>`.
 */
export function freshProject(name, templateDir, { appDir = '.', packageJson } = {}) {
  const dir = join(OUT, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(templateDir, dir, { recursive: true });
  if (packageJson) {
    const file = join(dir, 'package.json');
    writeFileSync(file, JSON.stringify(packageJson(JSON.parse(readFileSync(file, 'utf8'))), null, 2) + '\n');
  }
  const app = join(ROOT, 'tests/e2e/app');
  cpSync(join(app, 'sse-test.js'), join(dir, appDir, 'sse-test.js'));
  for (const f of ['writer.cjs', 'writer.mjs', 'flow-writer.cjs', 'nodes-writer.cjs', 'bench-writer.cjs', 'lifecycle-writer.cjs', 'messages.cjs']) cpSync(join(app, f), join(dir, f));

  const pkgText = readFileSync(join(dir, 'package.json'), 'utf8');
  const deps = Object.keys({ ...JSON.parse(pkgText).dependencies, ...JSON.parse(pkgText).devDependencies });
  if (deps.length > 0) {
    const key = createHash('sha256').update(pkgText).update(process.version).digest('hex').slice(0, 16);
    const cached = join(CACHE, `${name}-${key}`);
    if (!existsSync(join(cached, 'done'))) {
      rmSync(cached, { recursive: true, force: true });
      run('npm', ['install', ...NPM_FLAGS], { cwd: dir, timeout: 300_000 });
      mkdirSync(cached, { recursive: true });
      // Hard links: fast, and npm/vite only ever add or replace files, never edit them in place.
      run('cp', ['-al', join(dir, 'node_modules'), join(cached, 'node_modules')], { cwd: dir });
      cpSync(join(dir, 'package-lock.json'), join(cached, 'package-lock.json'));
      writeFileSync(join(cached, 'done'), new Date().toISOString());
    } else {
      run('cp', ['-al', join(cached, 'node_modules'), join(dir, 'node_modules')], { cwd: dir });
      cpSync(join(cached, 'package-lock.json'), join(dir, 'package-lock.json'));
    }
  }
  run('npm', ['install', ...NPM_FLAGS, env('SSE_CHANNEL_TARBALL')], { cwd: dir, timeout: 300_000 });
  const installed = JSON.parse(readFileSync(join(dir, 'node_modules/open-sse-channel/package.json'), 'utf8'));
  assert.equal(installed.name, 'open-sse-channel');
  return dir;
}

export { run };

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** A static file server for `root` on 127.0.0.1, port 0. Resolves with { url, close }. */
export function serveStatic(root) {
  const server = createServer((req, res) => {
    let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (path.endsWith('/')) path += 'index.html';
    const file = resolve(root, `.${path}`);
    if (!(file + sep).startsWith(resolve(root) + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-store' });
    res.end(readFileSync(file));
  });
  return new Promise((ok) => {
    server.listen(0, '127.0.0.1', () => {
      ok({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () =>
          new Promise((done) => {
            server.close(done);
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** A free loopback port (for dev servers that need a port number up front). */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createNetServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

// Dev servers run in their own process groups; make sure none outlives this process, even when the
// test run is interrupted.
const devGroups = new Set();
process.on('exit', () => {
  for (const pid of devGroups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

/**
 * Starts a dev server (its own process group, stopped by `stop()`) and resolves once `ready` matches
 * its output. Output goes to tests/out/e2e/<label>.log.
 */
export function startDevServer(label, cmd, args, { cwd, ready, timeoutMs = 120_000 }) {
  const logFile = join(OUT, `${label}.log`);
  writeFileSync(logFile, `$ ${cmd} ${args.join(' ')}\n`);
  const child = spawn(cmd, args, {
    cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', BROWSER: 'none' },
  });
  devGroups.add(child.pid);
  child.on('exit', () => devGroups.delete(child.pid));
  let text = '';
  const stop = () =>
    new Promise((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once('exit', () => done());
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        done();
      }
      setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 3000).unref();
    });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      stop();
      fail(new Error(`${label}: not ready after ${timeoutMs} ms:\n${text.slice(-3000)}`));
    }, timeoutMs);
    const onData = (chunk) => {
      const s = chunk.toString();
      text += s;
      appendFileSync(logFile, s);
      // eslint-disable-next-line no-control-regex
      const m = text.replace(/\x1b\[[0-9;]*m/g, '').match(ready);
      if (m) {
        clearTimeout(timer);
        ok({ match: m, stop, output: () => text });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`${label}: exited with ${code} before ready:\n${text.slice(-3000)}`));
    });
  });
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * Chromium before 114 refuses `new WebAssembly.Module(bytes)` and `new WebAssembly.Instance(module)`
 * of modules over 4 KB on the main thread (RangeError). This init script makes today's Chromium
 * behave the same way (for the package's module, which is far over 4 KB), to test the fallback.
 */
export function simulateOldChromium() {
  const Instance = WebAssembly.Instance;
  const PatchedInstance = function () {
    throw new RangeError('WebAssembly.Instance is disallowed on the main thread, if the buffer size is larger than 4KB. Use WebAssembly.instantiate.');
  };
  PatchedInstance.prototype = Instance.prototype; // `instanceof WebAssembly.Instance` still holds
  WebAssembly.Instance = PatchedInstance;
  const Module = WebAssembly.Module;
  const Patched = function (bytes) {
    if (bytes && bytes.byteLength > 4096) {
      throw new RangeError(
        'WebAssembly.Compile is disallowed on the main thread, if the buffer size is larger than 4KB. Use WebAssembly.compile, or compile on a worker thread.',
      );
    }
    return new Module(bytes);
  };
  Patched.prototype = Module.prototype;
  WebAssembly.Module = Patched;
}

/**
 * Runs the Node writer of `project` (CommonJS or ESM) for `descriptor`; `script` names another
 * writer file of the project, `timeoutMs` bounds its run (default 30 s), `env` adds variables.
 */
export function runWriter(project, kind, descriptor, relay, n = N_MESSAGES, { script, timeoutMs = 30_000, env: extra = {} } = {}) {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [script || (kind === 'esm' ? 'writer.mjs' : 'writer.cjs')], {
      cwd: project,
      env: { ...process.env, DESC: descriptor, RELAY: relay, N: String(n), SSE_CHANNEL_ALLOWED_RELAYS: '', ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) ok(JSON.parse(out.trim().split('\n').pop()));
      else fail(new Error(`writer (${kind}) exited ${code}: ${out}\n${err}`));
    });
  });
}

/**
 * The scenario, over one transport: open the page, open a channel in it, hand its descriptor to the
 * project's Node writer, which writes N messages and ends; the page must receive every message, in
 * order, exactly once, then `end`, then `close`, and no error. Returns the page's numbers.
 */
export async function scenario(browser, { url, project, transport, label, writer = 'cjs', oldChromium = false, expectClass }) {
  const relay = env('RELAY_URL');
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  page.on('console', (m) => {
    // Failed loads are reported with their URL by the response listener above.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console.error: ${m.text()}`);
    log(`[${label}] console.${m.type()}: ${m.text()}`);
  });
  try {
    if (oldChromium) await page.addInitScript(simulateOldChromium);
    await page.goto(url, { timeout: 60_000 });
    await page.waitForFunction(() => window.__sseTest, null, { timeout: 60_000 }).catch((e) => {
      throw new Error(`${label}: the page never installed its test hooks (${e.message}); ${problems.join('; ')}`);
    });
    const descriptor = await page.evaluate(([r, t]) => window.__sseTest.start(r, t), [relay, transport]);
    const desc = JSON.parse(descriptor);
    assert.equal(desc.type, 'SSEChannel');
    assert.ok(!('subscribeToken' in desc), 'the subscribe token must not leave the browser');
    const wrote = await runWriter(project, writer, descriptor, relay);
    assert.equal(wrote.ok, true);
    await page
      .waitForFunction(() => window.__sseTest.got().events.includes('close'), null, { timeout: 20_000 })
      .catch(async () => {
        const got = await page.evaluate(() => window.__sseTest.got());
        throw new Error(`${label}: no close within 20 s; got ${JSON.stringify(got).slice(0, 2000)}`);
      });
    const got = await page.evaluate(() => window.__sseTest.got());
    await page.screenshot({ path: join(OUT, `${label}.png`) });
    assert.deepEqual(got.errors, [], `${label}: error events`);
    const expected = Array.from({ length: N_MESSAGES }, (_, i) => messageFor(i));
    assert.deepEqual(got.messages, expected, `${label}: every message, in order, once`);
    assert.deepEqual(got.end, { done: true, n: N_MESSAGES });
    assert.deepEqual(got.events, ['open', ...expected.map(() => 'message'), 'end', 'close']);
    assert.equal(got.constructedSync, true, 'new SSEChannel() right after import is an SSEChannel');
    if (expectClass) assert.equal(got.className, expectClass, 'which object new SSEChannel() gave');
    assert.deepEqual(problems, [], `${label}: page errors`);
    log(`[${label}] ok: ${got.messages.length} messages + end, first open() ${got.openMs.toFixed(1)} ms`);
    return { openMs: got.openMs };
  } finally {
    await context.close();
  }
}

/**
 * `request(method, url, body, headers)` over one keep-alive socket (the benchmarks' publisher):
 * resolves the answer's text when its status is below 300, rejects otherwise. `request.agent` is
 * the socket's agent (destroy it at the end).
 */
/** The median of the finite numbers of `xs` (the mean of the middle two for an even count); NaN for none. */
export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Headers for nchan's publish requests in the side-by-side benchmarks: what the relay's carry (an
 * `Authorization: Bearer` token of the same length as one the relay at `relay` issues, and the JSON
 * content type), which nchan ignores, so that the publisher does the same work per request for both
 * servers and sends them as many header bytes.
 */
export async function relayLikeHeaders(request, relay) {
  const ch = JSON.parse(await request('POST', `${relay}/v1/channels`, '{}', { 'content-type': 'application/json' }));
  return { authorization: `Bearer ${'x'.repeat(ch.publishToken.length)}`, 'content-type': 'application/json' };
}

/**
 * A channel for the side-by-side benchmarks, one message per POST: on nchan (`nchan` true) its
 * `/pub` and `/sub` locations named `name`, on sse-relay a fresh channel. Returns the channel's
 * fields (relay), `sub` (the subscriber URL over `transport`, `eventsource` or `websocket`),
 * `envelope` (frames wrap the message: the relay's) and `post(json)`, which publishes one message
 * (a JSON text) over `request` (`keepAliveRequest`); `nchanHeaders` from `relayLikeHeaders`.
 */
export async function onePostChannel(request, { url, nchan = false, name, transport = 'eventsource', nchanHeaders }) {
  if (nchan) {
    const sub = `${transport === 'websocket' ? url.replace('http', 'ws') : url}/sub/${name}`;
    return { sub, envelope: false, post: (json) => request('POST', `${url}/pub/${name}`, json, nchanHeaders) };
  }
  const ch = JSON.parse(await request('POST', `${url}/v1/channels`, '{}', { 'content-type': 'application/json' }));
  const base = transport === 'websocket' ? url.replace('http', 'ws') : url;
  const path = transport === 'websocket' ? 'ws' : 'events';
  const messages = `${url}/v1/channels/${ch.channelId}/messages`;
  const headers = { authorization: `Bearer ${ch.publishToken}`, 'content-type': 'application/json' };
  return {
    ...ch,
    sub: `${base}/v1/channels/${ch.channelId}/${path}?token=${ch.subscribeToken}`,
    envelope: true,
    post: (json) => request('POST', messages, `{"data":${json}}`, headers),
  };
}

export function keepAliveRequest() {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const request = (method, url, body, headers = {}) =>
    new Promise((ok, fail) => {
      const req = httpRequest(url, { method, agent, headers: { 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => (res.statusCode < 300 ? ok(text) : fail(new Error(`${method} ${url}: ${res.statusCode} ${text}`))));
      });
      req.on('error', fail);
      req.end(body);
    });
  request.agent = agent;
  return request;
}

/**
 * A new page of `context` on the flow page (tests/e2e/plain/flow.html) served at `baseUrl`, once
 * its `window.__flow` is there; page errors go into `problems`.
 */
export async function flowPage(context, baseUrl, problems) {
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(`${baseUrl}/flow.html`, { timeout: 60_000 });
  await page.waitForFunction(() => window.__flow, null, { timeout: 60_000 });
  return page;
}

/**
 * Waits until the flow page (tests/e2e/plain/flow.html) on `page` has seen `close` and resolves to
 * its record of the run; on timeout fails with what it got. `label` names the run in the error.
 */
export async function flowClosed(page, label, timeoutMs) {
  await page
    .waitForFunction(() => window.__flow.got().events.includes('close'), null, { timeout: timeoutMs, polling: 100 })
    .catch(async () => {
      const got = await page.evaluate(() => window.__flow.got());
      throw new Error(`${label}: no close; got ${JSON.stringify(got).slice(0, 2000)}`);
    });
  return page.evaluate(() => window.__flow.got());
}

/**
 * The flow page's record `got` shows all `n` messages once, in order, then the writer's end
 * (`{ done: true, n }`) and `close`, with no `error` event (so no `MESSAGES_LOST`). `why` is added
 * to the first assertion's message.
 */
export function assertAllOnce(got, n, label, why = '') {
  assert.deepEqual(got.errors, [], `${label}: no error event (no MESSAGES_LOST)${why}`);
  assert.equal(got.misordered, null, `${label}: every message in order, none skipped or repeated`);
  assert.equal(got.received, n, `${label}: every message exactly once`);
  assert.deepEqual(got.end, { done: true, n });
  assert.deepEqual(got.events, ['open', 'end', 'close']);
}
