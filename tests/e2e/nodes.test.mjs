// Several relay nodes sharing one Redis (--broker redis://…), the packed package in Chromium and its
// Node writer in front of them. Over both transports:
// - A rolling restart under load (issue 9), through a small load balancer and through nginx with
//   the shipped configuration: while the writer streams 2,000 messages, the node with the page's
//   stream gets SIGTERM. Its stream ends with SHUTTING_DOWN, the SDK reconnects through the
//   balancer to the other node with its last event id, and the page must get all 2,000 messages
//   once, in order, then `end` and `close`, with no `error` event; the node must drain and exit
//   0. NODES_MESSAGES=N changes the count.
// - Flow control across nodes: nginx with the shipped configuration
//   (crates/relay/deploy/nginx.conf), which sends every request of a channel to one
//   node, in front of two nodes; 20,000 messages of ~1 KiB written un-awaited into a page whose
//   listener works 0.1 ms each must all arrive once, in order, no MESSAGES_LOST, and one node must
//   have stored them all. NODES_FLOW_MESSAGES=N changes the count; NODES_NGINX_BALANCE replaces
//   the configuration's `hash` line for a comparison run (e.g. `least_conn;`; expected to fail).
// - Many streams in one page: nginx with the configuration's TLS lines (HTTPS and HTTP/2, a
//   self-signed certificate) in front of a node; 8 channels at once, more than the 6 connections
//   per host a browser keeps over HTTP/1.1, each gets all its messages once, in order (WebSocket:
//   wss:// through the same lines). NODES_NGINX_HTTP1=1 leaves HTTP/2 off for a comparison run
//   (EventSource then fails).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OUT, ROOT, TRANSPORTS, assertAllOnce, enabled, flowClosed, flowPage, freshProject, launchBrowser, log, runWriter, serveStatic } from './lib/harness.mjs';
import { selfSignedCert, startBalancer, startNginx, startNode, startRedis } from './lib/nodes.mjs';

const N = Number(process.env.NODES_MESSAGES || 2000);
const N_FLOW = Number(process.env.NODES_FLOW_MESSAGES || 20_000);
const BUSY_MS = 0.1;
const BALANCE = process.env.NODES_NGINX_BALANCE;
const STREAMS = 8;
const N_MANY = 200;
const HTTP2 = process.env.NODES_NGINX_HTTP1 !== '1';

/** `sse_relay_messages_total` of the node at `n` (messages and ends it stored). */
async function stored(n) {
  const text = await (await fetch(`http://${n.host}:${n.port}/metrics`)).text();
  return Number(/^sse_relay_messages_total (\d+)$/m.exec(text)[1]);
}

/** The subscriber streams open on the node at `n`, both transports. */
async function streams(n) {
  const text = await (await fetch(`http://${n.host}:${n.port}/metrics`)).text();
  return [...text.matchAll(/^sse_relay_connections\{transport="\w+"\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

describe('several relay nodes on one Redis', { skip: !enabled('nodes') }, () => {
  let browser;
  let dir;
  let server;
  let redis;
  before(async () => {
    browser = await launchBrowser();
    dir = freshProject('nodes', join(ROOT, 'tests/e2e/plain'));
    server = await serveStatic(dir);
    redis = await startRedis();
  });
  after(async () => {
    await server?.close();
    await browser?.close();
    redis?.stop();
  });

  for (const [via, front] of [
    ['a balancer', startBalancer],
    ['nginx as shipped', startNginx],
  ]) {
    for (const transport of TRANSPORTS) {
      test(`${transport}: ${N} messages through ${via}, the reader's node restarted: all once, in order`, { timeout: 180_000 }, async () => {
        const a = await startNode(redis.url);
        const b = await startNode(redis.url);
        const balancer = await front([a, b]);
        const context = await browser.newContext();
        const problems = [];
        try {
          const page = await flowPage(context, server.url, problems);
          const descriptor = await page.evaluate(([r, t]) => window.__flow.start(r, t, 0), [balancer.url, transport]);
          // The small balancer puts streams on its first node; nginx on the channel's node.
          const victim = (await streams(a)) > 0 ? a : b;
          assert.equal((await streams(a)) + (await streams(b)), 1, 'the page has one stream');
          const writer = runWriter(dir, 'cjs', descriptor, balancer.url, N, { script: 'nodes-writer.cjs', timeoutMs: 150_000 });
          // Mid-stream: the page has some of it, the writer is still writing.
          await page.waitForFunction((n) => window.__flow.got().received >= n, N / 5, { timeout: 60_000, polling: 20 });
          const before = await page.evaluate(() => window.__flow.got().received);
          victim.child.kill('SIGTERM');
          const wrote = await writer;
          assert.equal(wrote.ok, true, JSON.stringify(wrote));
          const got = await flowClosed(page, transport, 120_000);
          await page.screenshot({ path: join(OUT, `nodes-${front === startNginx ? 'nginx-' : ''}${transport}.png`) });
          assert.ok(before < N, `SIGTERM came mid-stream (${before} of ${N} received)`);
          assertAllOnce(got, N, transport);
          assert.deepEqual(problems, []);
          assert.equal(await victim.exited, 0, `the reader's node drained and exited 0: ${victim.stderr()}`);
          log(`[nodes-${transport}] ok through ${via}: ${N} messages, the reader's node stopped after ${before}; writer ${wrote.ms} ms`);
        } finally {
          await context.close();
          await balancer.close();
          a.child.kill('SIGKILL');
          b.child.kill('SIGKILL');
        }
      });
    }
  }
  for (const transport of TRANSPORTS) {
    test(`${transport}: behind nginx as shipped, ${N_FLOW} messages written faster than the page reads: all once, in order, on one node`, { timeout: 240_000 }, async () => {
      const a = await startNode(redis.url);
      const b = await startNode(redis.url);
      const nginx = await startNginx([a, b], { balance: BALANCE });
      const context = await browser.newContext();
      const problems = [];
      try {
        const page = await flowPage(context, server.url, problems);
        const descriptor = await page.evaluate(([r, t, ms]) => window.__flow.start(r, t, ms), [nginx.url, transport, BUSY_MS]);
        const wrote = await runWriter(dir, 'cjs', descriptor, nginx.url, N_FLOW, { script: 'flow-writer.cjs', timeoutMs: 200_000 });
        assert.equal(wrote.ok, true, JSON.stringify(wrote));
        const got = await flowClosed(page, transport, 200_000);
        const perNode = [await stored(a), await stored(b)];
        assertAllOnce(got, N_FLOW, transport, `; stored per node ${perNode}`);
        assert.deepEqual(problems, []);
        assert.deepEqual([...perNode].sort((x, y) => x - y), [0, N_FLOW + 1], `one node stored every message and the end: ${perNode}`);
        assert.equal((await fetch(`${nginx.url}/metrics`)).status, 404, 'the balancer does not serve a node\'s metrics');
        log(`[nodes-nginx-${transport}] ok: ${N_FLOW} messages, stored per node ${perNode}; writer ${wrote.ms} ms`);
      } finally {
        await context.close();
        await nginx.close();
        a.child.kill('SIGKILL');
        b.child.kill('SIGKILL');
      }
    });
  }
  for (const transport of TRANSPORTS) {
    test(`${transport}: behind nginx over HTTPS and HTTP/2, ${STREAMS} channels in one page at once: each gets its ${N_MANY} messages once, in order`, { timeout: 120_000 }, async () => {
      const a = await startNode(redis.url);
      const cert = selfSignedCert();
      const nginx = await startNginx([a], { tls: cert, http2: HTTP2 });
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const problems = [];
      try {
        const page = await context.newPage();
        page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
        await page.goto(`${server.url}/many.html`, { timeout: 60_000 });
        await page.waitForFunction(() => window.__many, null, { timeout: 60_000 });
        const descriptors = await page.evaluate(([r, t, k]) => window.__many.start(r, t, k), [nginx.url, transport, STREAMS]);
        const env = { NODE_EXTRA_CA_CERTS: cert.cert };
        const wrote = await Promise.all(descriptors.map((d) => runWriter(dir, 'cjs', d, nginx.url, N_MANY, { script: 'flow-writer.cjs', env, timeoutMs: 60_000 })));
        for (const w of wrote) assert.equal(w.ok, true, JSON.stringify(w));
        await page.waitForFunction((k) => window.__many.got().filter((r) => r.events.includes('close')).length === k, STREAMS, { timeout: 60_000, polling: 100 });
        const got = await page.evaluate(() => window.__many.got());
        got.forEach((g, c) => assertAllOnce(g, N_MANY, `channel ${c}`));
        assert.deepEqual(problems, []);
        log(`[nodes-nginx-h2-${transport}] ok: ${STREAMS} channels at once, ${N_MANY} messages each`);
      } finally {
        await context.close();
        await nginx.close();
        cert.remove();
        a.child.kill('SIGKILL');
      }
    });
  }
});
