// End-to-end test of the demo: `scripts/demo.sh` (a real sse-relay + the function runner + the built
// package) on free loopback ports, driven in headless Chromium through playwright-core.
//
//   node --test tests/demo/demo.test.mjs        (make test-demo)
//
// Screenshots go to tests/out/. SSE_RELAY_BIN / SSE_CHANNEL_PKG are passed through to demo.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT = path.join(ROOT, 'tests', 'out');
const CHANNEL_EVENTS = new Set(['open', 'message', 'end', 'close']);
const RUN_TIMEOUT_MS = 30_000;

let demo; // the demo.sh child process
let demoOutput = '';
let baseUrl;
let browser;

/** A port that was free a moment ago (the demo's relay allows exactly this page origin). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startDemo() {
  const port = await freePort();
  return new Promise((resolve, reject) => {
    demo = spawn('bash', ['scripts/demo.sh'], {
      cwd: ROOT,
      env: { ...process.env, DEMO_PORT: String(port), DEMO_SKIP_SETUP: '1', NODE_ENV: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onData = (chunk) => {
      demoOutput += chunk;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(demoOutput);
      if (m) resolve(m[1]);
    };
    demo.stdout.setEncoding('utf8').on('data', onData);
    demo.stderr.setEncoding('utf8').on('data', (c) => (demoOutput += c));
    demo.on('exit', (code) => reject(new Error(`demo.sh exited with ${code} before listening:\n${demoOutput}`)));
    // Never leave the relay and runner behind, even if this process ends abruptly.
    process.once('exit', () => demo.exitCode === null && demo.kill('SIGTERM'));
  });
}

function stopDemo() {
  if (!demo || demo.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => demo.kill('SIGKILL'), 10_000);
    demo.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    demo.kill('SIGTERM');
  });
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  // demo.sh builds what is missing (relay binary, pkg/): allow for a cold build.
  baseUrl = await startDemo();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}, { timeout: 900_000 });

after(async () => {
  await browser?.close();
  await stopDemo();
});

/** Opens the demo page, waits until the SDK is loaded; records page errors. */
async function openPage(origin = baseUrl) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 960 } });
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  // The browser itself logs refused connections (expected while a cut connection is paused).
  const networkNoise = /WebSocket connection to|EventSource|Failed to load resource|net::ERR_/;
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !networkNoise.test(msg.text())) pageErrors.push(`console: ${msg.text()}`);
  });
  await page.goto(origin + '/');
  await page.evaluate(() => window.demo.ready);
  return { page, pageErrors };
}

/** Fills the form and presses Start. */
async function startRun(page, { fn = 'longTask', steps, delayMs, failAt, chunks, chunkWorkMs, transport }) {
  await page.selectOption('#fn', fn);
  if (chunks != null) await page.fill('#chunks', String(chunks));
  if (chunkWorkMs != null) await page.fill('#chunk-work', String(chunkWorkMs));
  if (steps != null) await page.fill('#steps', String(steps));
  if (delayMs != null) await page.fill('#delay', String(delayMs));
  if (failAt != null) await page.fill('#fail-at', String(failAt));
  await page.check(`input[name="transport"][value="${transport}"]`);
  await page.click('#start');
}

async function waitForClose(page) {
  await page.waitForFunction(() => window.demo.events.some((e) => e.kind === 'close'), null, { timeout: RUN_TIMEOUT_MS });
  // callFunction's answer may arrive just after the channel closed.
  await page.waitForFunction(() => window.demo.events.some((e) => e.kind === 'call'), null, { timeout: RUN_TIMEOUT_MS });
}

/** The page's record of the run, and the log as rendered in the DOM. */
async function runRecord(page) {
  await page.waitForTimeout(400); // let the bar's CSS transition finish before screenshots
  return page.evaluate(() => ({
    events: window.demo.events.map(({ kind, detail, data }) => ({ kind, detail, data })),
    domKinds: [...document.querySelectorAll('#log li')].map((li) => li.dataset.event),
    progress: { value: document.querySelector('#progress').value, max: document.querySelector('#progress').max },
    result: document.querySelector('#result').textContent,
    state: document.querySelector('#state').textContent,
    channelTransport: window.demo.channel?.transport,
    tally: Object.fromEntries(['received', 'duplicates', 'missing'].map((k) => [k, Number(document.getElementById(`tally-${k}`).textContent)])),
  }));
}

function assertLongTaskRun(rec, steps) {
  const channelKinds = rec.events.filter((e) => CHANNEL_EVENTS.has(e.kind)).map((e) => e.kind);
  assert.deepEqual(channelKinds, ['open', ...Array(steps).fill('message'), 'end', 'close'], 'open → message… → end → close');
  assert.deepEqual(
    rec.domKinds.filter((k) => CHANNEL_EVENTS.has(k)),
    channelKinds,
    'the rendered log shows the same events in the same order',
  );
  const stepsSeen = rec.events.filter((e) => e.kind === 'message').map((e) => e.data.step);
  assert.deepEqual(stepsSeen, Array.from({ length: steps }, (_, i) => i + 1), 'every step exactly once, in order');
  assert.equal(rec.progress.max, steps);
  assert.equal(rec.progress.value, steps, 'the progress bar reached its max');
  assert.deepEqual(rec.tally, { received: steps, duplicates: 0, missing: 0 }, 'the page shows nothing lost or repeated');
  const end = rec.events.find((e) => e.kind === 'end');
  assert.equal(end.data.ok, true);
  assert.equal(end.data.steps, steps);
  assert.deepEqual(JSON.parse(rec.result), end.data, 'the end result is shown');
  assert.equal(rec.state, 'closed');
  const call = rec.events.find((e) => e.kind === 'call');
  assert.deepEqual(call.data, end.data, "callFunction answered like uniCloud: {result}");
  assert.deepEqual(rec.events.filter((e) => e.kind === 'error'), [], 'no error events');
}

const RUNS = [
  { transport: 'auto', host: '127.0.0.1' },
  { transport: 'websocket', host: '127.0.0.1' },
  { transport: 'eventsource', host: '127.0.0.1' },
  // The page at its other allowed origin: the relay's CORS allow-list has both.
  { transport: 'eventsource', host: 'localhost' },
];
for (const { transport, host } of RUNS) {
  test(`Start fills the bar; the log shows open → message… → end → close (${transport}, ${host})`, { timeout: 60_000 }, async () => {
    const { page, pageErrors } = await openPage(baseUrl.replace('127.0.0.1', host));
    try {
      const steps = 8;
      await startRun(page, { steps, delayMs: 100, transport });
      await waitForClose(page);
      const rec = await runRecord(page);
      assertLongTaskRun(rec, steps);
      if (transport !== 'auto') assert.equal(rec.channelTransport, transport, 'the chosen transport was used');
      if (host === '127.0.0.1') await page.screenshot({ path: path.join(OUT, `demo-${transport}.png`), fullPage: true });
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });
}

for (const transport of ['websocket', 'eventsource']) {
  test(`Cut connection mid-task: resumes and still gets every step exactly once (${transport})`, { timeout: 60_000 }, async () => {
    const { page, pageErrors } = await openPage();
    try {
      const steps = 12;
      await startRun(page, { steps, delayMs: 250, transport });
      await page.waitForFunction(() => document.querySelector('#progress').value >= 3, null, { timeout: RUN_TIMEOUT_MS });
      await page.click('#cut');
      await page.waitForFunction(() => window.demo.events.some((e) => e.kind === 'cut'), null, { timeout: RUN_TIMEOUT_MS });
      await page.screenshot({ path: path.join(OUT, `demo-cut-${transport}-midway.png`), fullPage: true });
      await waitForClose(page);
      const rec = await runRecord(page);
      const cut = rec.events.find((e) => e.kind === 'cut');
      assert.ok(cut.data?.dropped >= 1, `the relay dropped the live stream: ${cut.detail}`);
      const cutIndex = rec.events.indexOf(cut);
      const stepsBeforeCut = rec.events.slice(0, cutIndex).filter((e) => e.kind === 'message').length;
      assert.ok(stepsBeforeCut < steps, 'the cut happened mid-task');
      assert.ok(rec.events.some((e) => e.kind === 'reconnecting'), 'the channel reconnected');
      assertLongTaskRun(rec, steps);
      await page.screenshot({ path: path.join(OUT, `demo-cut-${transport}.png`), fullPage: true });
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });
}

for (const transport of ['websocket', 'eventsource']) {
  test(`Fail at step N: the function's writer.fail gives error FUNCTION_FAILED, then close (${transport})`, { timeout: 60_000 }, async () => {
    const { page, pageErrors } = await openPage();
    try {
      await startRun(page, { steps: 8, delayMs: 100, failAt: 4, transport });
      await waitForClose(page);
      const rec = await runRecord(page);
      const kinds = rec.events.filter((e) => CHANNEL_EVENTS.has(e.kind) || e.kind === 'error').map((e) => e.kind);
      assert.deepEqual(kinds, ['open', 'message', 'message', 'message', 'error', 'close']);
      const err = rec.events.find((e) => e.kind === 'error').data;
      assert.equal(err.code, 'FUNCTION_FAILED');
      assert.equal(err.message, 'step 4 failed (failAt)');
      assert.deepEqual(err.details, { step: 4 });
      assert.deepEqual(rec.events.find((e) => e.kind === 'call').data, { ok: false, failedAt: 4 });
      assert.equal(rec.state, 'closed');
      await page.screenshot({ path: path.join(OUT, `demo-fail-${transport}.png`), fullPage: true });
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });

  test(`Cancel mid-task: the function's writer.signal aborts its work, the page gets CHANNEL_CANCELLED (${transport})`, { timeout: 60_000 }, async () => {
    const { page, pageErrors } = await openPage();
    try {
      // Long steps: the cancel lands while the function is inside a step's work.
      await startRun(page, { steps: 20, delayMs: 3000, transport });
      await page.waitForFunction(() => document.querySelector('#progress').value >= 1, null, { timeout: RUN_TIMEOUT_MS });
      await page.click('#cancel');
      await waitForClose(page);
      const rec = await runRecord(page);
      const kinds = rec.events.filter((e) => CHANNEL_EVENTS.has(e.kind) || e.kind === 'error').map((e) => e.kind);
      assert.equal(kinds.at(-2), 'error');
      assert.equal(kinds.at(-1), 'close');
      assert.ok(!kinds.includes('end'));
      const err = rec.events.find((e) => e.kind === 'error').data;
      assert.equal(err.code, 'CHANNEL_CANCELLED');
      assert.equal(err.message, 'cancelled from the demo page');
      const result = rec.events.find((e) => e.kind === 'call').data;
      assert.equal(result.cancelled, 'cancelled from the demo page');
      assert.equal(result.stoppedDuring, 'work', 'writer.signal interrupted the work, not a later write');
      assert.ok(rec.events.some((e) => e.kind === 'info' && /cancel\(\) resolved/.test(e.detail)));
      assert.ok(rec.events.filter((e) => e.kind === 'message').length < 20);
      await page.screenshot({ path: path.join(OUT, `demo-cancel-${transport}.png`), fullPage: true });
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });
}

for (const transport of ['websocket', 'eventsource']) {
  test(`streamResults: 20,000 results of ~1 KiB written without await into a page busy 0.2 ms each: the relay holds the function, the page gets all once, in order (${transport})`, { timeout: 120_000 }, async () => {
    const { page, pageErrors } = await openPage();
    try {
      const chunks = 20000;
      const relay = await page.evaluate(() => window.demo.config.relay);
      const holds = async () => {
        const text = await (await fetch(`${relay}/metrics`)).text();
        return Number(/^sse_relay_publish_holds_total (\d+)$/m.exec(text)[1]);
      };
      const held = await holds();
      await startRun(page, { fn: 'streamResults', chunks, chunkWorkMs: 0.2, transport });
      await waitForClose(page);
      // The results' text stays in the page: only what the assertions need comes out.
      const rec = await page.evaluate(() => ({
        kinds: window.demo.events.map((e) => e.kind),
        seen: window.demo.events.filter((e) => e.kind === 'message').map((e) => e.data.i),
        chars: window.demo.events.filter((e) => e.kind === 'message').reduce((n, e) => n + e.data.text.length, 0),
        end: window.demo.events.find((e) => e.kind === 'end')?.data,
        errors: window.demo.events.filter((e) => e.kind === 'error'),
        logged: [...document.querySelectorAll('#log li')].filter((li) => li.dataset.event === 'message').length,
        tally: Object.fromEntries(['received', 'duplicates', 'missing'].map((k) => [k, Number(document.getElementById(`tally-${k}`).textContent)])),
        progress: document.querySelector('#progress').value,
        latest: document.querySelector('#latest').textContent,
        transport: window.demo.channel?.transport,
      }));
      assert.ok((await holds()) > held, 'the relay held its answers to the function while the page was behind');
      assert.deepEqual(rec.errors, [], 'no error events (no MESSAGES_LOST)');
      const channelKinds = rec.kinds.filter((k) => CHANNEL_EVENTS.has(k));
      assert.deepEqual(channelKinds, ['open', ...Array(chunks).fill('message'), 'end', 'close'], 'open → message… → end → close');
      assert.deepEqual(rec.seen, Array.from({ length: chunks }, (_, i) => i + 1), 'every result exactly once, in order');
      assert.deepEqual(rec.tally, { received: chunks, duplicates: 0, missing: 0 }, 'the page shows nothing lost or repeated');
      assert.equal(rec.progress, chunks, 'the progress bar reached its max');
      assert.equal(rec.logged, chunks / 1000 + 1, 'the log shows the first and every 1,000th result');
      assert.equal(rec.end.ok, true);
      assert.equal(rec.end.chunks, chunks);
      assert.equal(rec.chars, rec.end.chars, 'the page got every character the function wrote');
      assert.ok(rec.latest.startsWith(`#${chunks}: `), 'the page shows the latest result');
      assert.equal(rec.transport, transport);
      await page.waitForTimeout(400);
      await page.screenshot({ path: path.join(OUT, `demo-results-${transport}.png`), fullPage: true });
      assert.deepEqual(pageErrors, []);
    } finally {
      await page.close();
    }
  });
}

test("the 'sse' function (uniCloud's docs example, verbatim) runs unchanged", { timeout: 60_000 }, async () => {
  const { page, pageErrors } = await openPage();
  try {
    await startRun(page, { fn: 'sse', transport: 'auto' });
    await waitForClose(page);
    const rec = await runRecord(page);
    const channel = rec.events.filter((e) => CHANNEL_EVENTS.has(e.kind));
    assert.deepEqual(channel.map((e) => e.kind), ['open', 'message', 'message', 'end', 'close']);
    assert.deepEqual(channel.filter((e) => e.kind === 'message').map((e) => e.data), ['message1', 'message2']);
    assert.deepEqual(rec.events.find((e) => e.kind === 'call').data, { errCode: 0 });
    assert.equal(rec.progress.value, rec.progress.max);
    await page.screenshot({ path: path.join(OUT, 'demo-sse.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
  } finally {
    await page.close();
  }
});

/** A raw request, so paths like `/pkg/%2e%2e/…` reach the runner unnormalized. */
function request(method, pathname, body, headers = { 'Content-Type': 'application/json' }) {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path: pathname, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c) => (text += c));
      res.on('end', () => {
        let json = null;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('error', reject);
    req.end(body === undefined || typeof body === 'string' ? body : JSON.stringify(body));
  });
}

test('the runner validates function names and serves no server code', { timeout: 30_000 }, async () => {
  for (const name of ['../server/runner', '../../scripts/x', 'a/b', '', 42, 'x'.repeat(65)]) {
    const r = await request('POST', '/__callFunction', { name, data: {} });
    assert.equal(r.status, 400, `name ${JSON.stringify(name)}`);
    assert.equal(r.json.error.code, 'FUNCTION_NAME_INVALID');
  }
  const missing = await request('POST', '/__callFunction', { name: 'noSuchFunction', data: {} });
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.code, 'FUNCTION_NOT_FOUND');
  assert.equal((await request('POST', '/__callFunction', '{not json')).status, 400);
  for (const p of ['/server/runner.mjs', '/cloudfunctions/longTask/index.js', '/%2e%2e/Cargo.toml', '/pkg/%2e%2e/Cargo.toml', '/pkg/..%2fCargo.toml']) {
    assert.equal((await request('GET', p)).status, 404, p);
  }
  assert.equal((await request('GET', '/index.html%00.js')).status, 400);
});

test('the runner refuses requests from other sites', { timeout: 30_000 }, async () => {
  const call = JSON.stringify({ name: 'sse', data: {} });
  const json = { 'Content-Type': 'application/json' };
  // A cross-site form or no-cors fetch cannot send application/json without a preflight.
  const form = await request('POST', '/__callFunction', call, { 'Content-Type': 'text/plain' });
  assert.equal(form.status, 415);
  assert.equal(form.json.error.code, 'UNSUPPORTED_MEDIA_TYPE');
  const crossSite = await request('POST', '/__callFunction', call, { ...json, Origin: 'https://evil.example' });
  assert.equal(crossSite.status, 403);
  // DNS rebinding: the browser sends the attacker's host name.
  const rebound = await request('GET', '/__config', undefined, { Host: 'evil.example' });
  assert.equal(rebound.status, 403);
  const cut = await request('POST', '/__cut', { channelId: 'x' }, { ...json, Origin: 'http://evil.example' });
  assert.equal(cut.status, 403);
  assert.equal((await request('GET', '/')).status, 200);
  const config = await request('GET', '/__config');
  assert.equal(config.json.testHooks, true);
  for (const fn of ['longTask', 'streamResults', 'sse']) assert.ok(config.json.functions.includes(fn), fn);
  const sdk = await request('GET', config.json.sdk);
  assert.equal(sdk.status, 200, 'the package browser entry is served');
});

test('a descriptor aimed at another relay is refused with RELAY_NOT_ALLOWED', { timeout: 30_000 }, async () => {
  const sseChannel = {
    type: 'SSEChannel',
    version: 1,
    relay: 'http://127.0.0.1:9',
    channelId: '0123456789abcdef0123456789abcdef',
    publishToken: 'x.y.z',
    expiresAt: Date.now() + 60_000,
  };
  const r = await request('POST', '/__callFunction', { name: 'longTask', data: { sseChannel, steps: 1, delayMs: 0 } });
  assert.equal(r.status, 500);
  assert.equal(r.json.error.code, 'RELAY_NOT_ALLOWED', r.text);
});

test('the runner and demo.sh refuse to start with NODE_ENV=production', { timeout: 30_000 }, async () => {
  const run = (cmd, args, env) =>
    new Promise((resolve) => {
      const p = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (c) => (out += c));
      p.stderr.on('data', (c) => (out += c));
      p.on('exit', (code) => resolve({ code, out }));
    });
  const runner = await run('node', ['www/server/runner.mjs'], { NODE_ENV: 'production', SSE_RELAY_URL: 'http://127.0.0.1:9', DEMO_PORT: '0' });
  assert.equal(runner.code, 1);
  assert.match(runner.out, /NODE_ENV=production/);
  const script = await run('bash', ['scripts/demo.sh'], { NODE_ENV: 'production', DEMO_PORT: '0', DEMO_SKIP_SETUP: '1' });
  assert.equal(script.code, 1);
  assert.match(script.out, /NODE_ENV=production/);
});
