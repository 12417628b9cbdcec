// Flow control end to end (issue 8): the packed package, a relay at its default settings (started by
// tests/e2e/run.sh), and a page slower than its writer. The Node writer writes 20,000 messages of
// ~1 KiB without awaiting any; the page's message listener busy-works ~0.1 ms per message. Over
// both transports the page must get every message exactly once, in order, no MESSAGES_LOST, then
// `end` and `close`: the relay holds its publish answers while the page is far behind, so the
// writer slows down instead of pushing events out of the replay buffer.
// FLOW_MESSAGES=N changes the count, FLOW_BUSY_MS the listener's work per message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OUT, ROOT, TRANSPORTS, assertAllOnce, env, enabled, flowClosed, flowPage, freshProject, launchBrowser, log, runWriter, serveStatic } from './lib/harness.mjs';

const N = Number(process.env.FLOW_MESSAGES || 20_000);
const BUSY_MS = Number(process.env.FLOW_BUSY_MS || 0.1);

describe('flow control: a writer faster than the page', { skip: !enabled('flow') }, () => {
  let browser;
  let dir;
  let server;
  before(async () => {
    browser = await launchBrowser();
    dir = freshProject('flow', join(ROOT, 'tests/e2e/plain'));
    server = await serveStatic(dir);
  });
  after(async () => {
    await server?.close();
    await browser?.close();
  });

  for (const transport of TRANSPORTS) {
    test(`${transport}: ${N} messages of ~1 KiB written un-awaited, listener ${BUSY_MS} ms each: all once, in order`, { timeout: 240_000 }, async () => {
      const relay = env('RELAY_URL');
      const context = await browser.newContext();
      const problems = [];
      try {
        const page = await flowPage(context, server.url, problems);
        const descriptor = await page.evaluate(([r, t, b]) => window.__flow.start(r, t, b), [relay, transport, BUSY_MS]);
        const t0 = Date.now();
        const wrote = await runWriter(dir, 'cjs', descriptor, relay, N, { script: 'flow-writer.cjs', timeoutMs: 200_000 });
        assert.equal(wrote.ok, true, JSON.stringify(wrote));
        const got = await flowClosed(page, transport, 200_000);
        const ms = Date.now() - t0;
        await page.screenshot({ path: join(OUT, `flow-${transport}.png`) });
        assertAllOnce(got, N, transport);
        assert.deepEqual(problems, []);
        log(`[flow-${transport}] ok: ${N} messages in ${ms} ms (writer done after ${wrote.ms} ms)`);
      } finally {
        await context.close();
      }
    });
  }
});
