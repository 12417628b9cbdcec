// Issue 12 end to end: the packed package in Chromium (the plain page tests/e2e/plain/lifecycle.html),
// its Node writer (tests/e2e/app/lifecycle-writer.cjs) and real relays started by tests/e2e/run.sh
// (RELAY_URL; HOOKS_RELAY_URL has --test-hooks, to cut a page's streams). Over both transports:
// - ch.cancel() aborts writer.signal while the function awaits a fetch that never answers;
// - abandonAfterMs: closing the last tab aborts writer.signal (reason ABANDONED);
// - a reload attaches from sessionStorage (SSEChannel.attach) and gets every message once, then
//   `end`; a second tab attached at the same time gets the same sequence;
// - writer.fail() gives `error` FUNCTION_FAILED {message, details}, then `close`, also when it
//   happened while the page was cut off.
// The latencies are printed (not asserted beyond bounds far from the expected values).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { OUT, ROOT, TRANSPORTS, env, enabled, freshProject, launchBrowser, log, serveStatic } from './lib/harness.mjs';


/** Starts the project's lifecycle writer; `lines()` are its JSON lines so far, `done` its exit. */
function startWriter(dir, descriptor, relay, extra) {
  const child = spawn(process.execPath, ['lifecycle-writer.cjs'], {
    cwd: dir,
    env: { ...process.env, DESC: descriptor, RELAY: relay, SSE_CHANNEL_ALLOWED_RELAYS: '', ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (err += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const lines = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const done = new Promise((ok) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      ok({ code, lines: lines(), stderr: err });
    }),
  );
  return { lines, done, kill: () => child.kill('SIGKILL') };
}

async function until(what, cond, timeoutMs = 30_000) {
  const t0 = Date.now();
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('cancel, fail, abandonAfterMs, re-attach', { skip: !enabled('lifecycle') }, () => {
  let browser;
  let dir;
  let server;
  let slow; // an HTTP server that never answers: the writer's "slow fetch"
  const held = [];
  before(async () => {
    browser = await launchBrowser();
    dir = freshProject('lifecycle', join(ROOT, 'tests/e2e/plain'));
    server = await serveStatic(dir);
    slow = http.createServer((req, res) => held.push(res));
    await new Promise((r) => slow.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    for (const res of held) res.destroy();
    slow?.closeAllConnections?.();
    await new Promise((r) => slow?.close(r) ?? r());
    await server?.close();
    await browser?.close();
  });

  async function openPage(context) {
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(`${server.url}/lifecycle.html`, { timeout: 60_000 });
    await page.waitForFunction(() => window.__lc, null, { timeout: 60_000 });
    return { page, problems };
  }

  for (const transport of TRANSPORTS) {
    test(`${transport}: cancel() aborts writer.signal while the function awaits a slow fetch`, { timeout: 90_000 }, async () => {
      const relay = env('RELAY_URL');
      const context = await browser.newContext();
      try {
        const { page, problems } = await openPage(context);
        const descriptor = await page.evaluate(([r, t]) => window.__lc.start(r, t), [relay, transport]);
        const w = startWriter(dir, descriptor, relay, { MODE: 'slow', SLOW_URL: `http://127.0.0.1:${slow.address().port}/` });
        await until('the writer awaiting its fetch', () => w.lines().some((l) => l.ready));
        await until('the slow fetch at the server', () => held.length > 0);
        const t0 = Date.now();
        assert.equal(await page.evaluate(() => window.__lc.cancel('stop now')), 'ok');
        const { code, lines, stderr } = await w.done;
        const out = lines.at(-1);
        assert.equal(code, 0, stderr);
        assert.equal(out.ok, true, JSON.stringify(out));
        assert.equal(out.aborted, true);
        assert.equal(out.code, 'CHANNEL_CANCELLED');
        assert.equal(out.reason, 'stop now');
        assert.equal(out.cancelled, 'stop now');
        const ms = out.at - t0;
        log(`[lifecycle-${transport}] cancel() → writer.signal aborted after ${ms} ms`);
        assert.ok(ms < 10_000, `the writer learned of the cancel from the relay, not a timeout (${ms} ms)`);
        await page.waitForFunction(() => window.__lc.got().events.includes('close'), null, { timeout: 20_000 });
        const got = await page.evaluate(() => window.__lc.got());
        assert.deepEqual(got.events, ['open', 'message', 'error', 'close']);
        assert.equal(got.errors[0].code, 'CHANNEL_CANCELLED');
        assert.equal(got.errors[0].message, 'stop now');
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    });

    test(`${transport}: abandonAfterMs 2000: closing the last tab aborts writer.signal (ABANDONED)`, { timeout: 90_000 }, async () => {
      const relay = env('RELAY_URL');
      const context = await browser.newContext();
      let w;
      try {
        const { page } = await openPage(context);
        const descriptor = await page.evaluate(([r, t]) => window.__lc.start(r, t, { abandonAfterMs: 2000 }), [relay, transport]);
        w = startWriter(dir, descriptor, relay, { MODE: 'abandon' });
        await page.waitForFunction(() => window.__lc.got().messages.length >= 3, null, { timeout: 20_000 });
        const t0 = Date.now();
        await context.close(); // the last (only) tab
        const { code, lines, stderr } = await w.done;
        const out = lines.at(-1);
        assert.equal(code, 0, stderr);
        assert.equal(out.code, 'CHANNEL_CANCELLED', JSON.stringify(out));
        assert.equal(out.reason, 'ABANDONED');
        const ms = out.at - t0;
        log(`[lifecycle-${transport}] last tab closed → writer.signal aborted (ABANDONED) after ${ms} ms (abandonAfterMs 2000)`);
        assert.ok(ms >= 1_500, `not before abandonAfterMs (${ms} ms)`);
        assert.ok(ms < 15_000, `abandoned, not left running (${ms} ms)`);
      } finally {
        w?.kill();
        await context.close().catch(() => {});
      }
    });

    test(`${transport}: a reload re-attaches from sessionStorage; a second tab attached at once gets the same`, { timeout: 90_000 }, async () => {
      const relay = env('RELAY_URL');
      const N = 30;
      const context = await browser.newContext();
      try {
        const { page, problems } = await openPage(context);
        const descriptor = await page.evaluate(([r, t]) => window.__lc.start(r, t), [relay, transport]);
        const w = startWriter(dir, descriptor, relay, { MODE: 'steps', N: String(N) });
        await page.waitForFunction(() => window.__lc.got().messages.length >= 5, null, { timeout: 20_000 });
        await page.reload();
        await page.waitForFunction(() => window.__lc, null, { timeout: 60_000 });
        const subscription = await page.evaluate(() => window.__lc.subscription());
        const second = await openPage(context);
        const [a, b] = await Promise.all([
          page.evaluate((t) => window.__lc.attach(t), transport),
          second.page.evaluate(([t, s]) => window.__lc.attach(t, s), [transport, subscription]),
        ]);
        assert.equal(a.toJSON, 'INVALID_STATE', 'an attached channel has no descriptor to give');
        assert.equal(b.lastEventId, a.lastEventId);
        for (const p of [page, second.page]) {
          await p.waitForFunction(() => window.__lc.got().events.includes('close'), null, { timeout: 30_000 });
        }
        const { code, stderr } = await w.done;
        assert.equal(code, 0, stderr);
        const reloaded = await page.evaluate(() => window.__lc.got());
        const other = await second.page.evaluate(() => window.__lc.got());
        const all = Array.from({ length: N }, (_, i) => ({ i }));
        assert.ok(reloaded.before.length >= 5);
        assert.deepEqual([...reloaded.before, ...reloaded.messages], all, 'before + after the reload: every message once, in order');
        assert.deepEqual(other.messages, reloaded.messages, 'the second tab got the same sequence');
        for (const g of [reloaded, other]) {
          assert.deepEqual(g.end, { done: true, n: N });
          assert.deepEqual(g.errors, []);
          assert.deepEqual(g.events.filter((e) => e !== 'message' && e !== 'reconnecting'), ['open', 'end', 'close']);
        }
        log(`[lifecycle-${transport}] reload after ${reloaded.before.length} of ${N}: attached, ${reloaded.messages.length} more + end in both tabs`);
        await page.screenshot({ path: join(OUT, `lifecycle-reload-${transport}.png`) });
        assert.deepEqual([...problems, ...second.problems], []);
      } finally {
        await context.close();
      }
    });

    for (const cutOff of [false, true]) {
      test(`${transport}: writer.fail() gives error FUNCTION_FAILED, then close${cutOff ? ', also after a reconnect' : ''}`, { timeout: 90_000 }, async () => {
        const relay = cutOff ? env('HOOKS_RELAY_URL') : env('RELAY_URL');
        const context = await browser.newContext();
        try {
          const { page, problems } = await openPage(context);
          const descriptor = await page.evaluate(([r, t]) => window.__lc.start(r, t), [relay, transport]);
          if (cutOff) {
            // Drop the page's stream and refuse reconnects for 1.5 s; the function fails meanwhile.
            const { channelId } = JSON.parse(descriptor);
            const res = await fetch(`${relay}/v1/test/channels/${channelId}/disconnect?pauseMs=1500`, { method: 'POST' });
            assert.equal(res.status, 200);
          }
          const w = startWriter(dir, descriptor, relay, { MODE: 'fail', N: '3' });
          const { code, stderr } = await w.done;
          assert.equal(code, 0, stderr);
          await page.waitForFunction(() => window.__lc.got().events.includes('close'), null, { timeout: 30_000 });
          const got = await page.evaluate(() => window.__lc.got());
          assert.deepEqual(got.messages, [{ i: 0 }, { i: 1 }, { i: 2 }]);
          assert.deepEqual(got.errors, [{ code: 'FUNCTION_FAILED', message: 'step failed', details: { step: 3 } }]);
          assert.deepEqual(got.events.filter((e) => e !== 'message' && e !== 'reconnecting'), ['open', 'error', 'close']);
          if (cutOff) assert.ok(got.events.includes('reconnecting'), 'the page was cut off and reconnected');
          const n = got.events.length;
          await new Promise((r) => setTimeout(r, 500));
          assert.equal((await page.evaluate(() => window.__lc.got())).events.length, n, 'nothing after close');
          assert.deepEqual(problems, []);
        } finally {
          await context.close();
        }
      });
    }
  }
});
