// Memory benchmark of the browser entry (pkg/index.js) over many channels in one page: each channel
// is opened, receives a few messages and its `end` (published by the page with fetch, as a cloud
// function would), closes, and is dropped; every STEP channels the page forces a garbage collection
// and records the JS heap (Chromium's precise memory info) and the SDK's wasm memory (its
// `memory.buffer.byteLength`, caught as the module is instantiated; also checked by tests/browser.rs,
// `nothing_left_behind`). The same loop on a
// bare WebSocket + fetch (no SDK) is the baseline. Prints numbers, asserts nothing.
// Run through tests/e2e/bench-memory.sh (`make bench-memory`), which builds pkg/ and starts a relay.
// BENCH_CHANNELS (default 2000) channels per loop; BENCH_KINDS (default websocket,eventsource,bare).
// BENCH_SNAPSHOTS=a,b instead: heap snapshots after a and b channels, the live objects that changed.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from './lib/harness.mjs';

const relay = process.env.RELAY_URL;
if (!relay) throw new Error('RELAY_URL is not set: run tests/e2e/bench-memory.sh');
const N = Number(process.env.BENCH_CHANNELS || 2000);
const STEP = Math.max(1, Math.floor(N / 8));

const PAGE = `<!doctype html><meta charset="utf-8"><title>bench-memory</title><script>
// The SDK's wasm memory, caught as the module is instantiated.
const grab = (r) => { const i = r && (r.instance || r); for (const x of Object.values((i && i.exports) || {})) if (x instanceof WebAssembly.Memory) window.wasmMemory = x; return r; };
const inst = WebAssembly.instantiate;
WebAssembly.instantiate = (...a) => inst.apply(WebAssembly, a).then(grab);
const Instance = WebAssembly.Instance;
WebAssembly.Instance = function (...a) { return grab(new Instance(...a)); };
WebAssembly.Instance.prototype = Instance.prototype;
</script><script type="module">
import { SSEChannel } from './index.js';
const relay = new URLSearchParams(location.search).get('relay');
const post = (url, token, body) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token }, body: JSON.stringify(body) });
async function sdkOne(transport) {
  const ch = new SSEChannel({ relay, transport });
  let got = 0;
  const closed = new Promise((ok) => ch.on('close', ok));
  ch.on('message', () => got++);
  await ch.open();
  const d = ch.toJSON();
  const base = relay + '/v1/channels/' + d.channelId;
  await post(base + '/messages', d.publishToken, { messages: [1, 2, 3] });
  await post(base + '/end', d.publishToken, { data: 'done' });
  await closed;
  if (got !== 3) throw new Error('got ' + got + ' messages');
}
async function bareOne() {
  const created = await (await fetch(relay + '/v1/channels', { method: 'POST', body: '{}' })).json();
  const base = relay + '/v1/channels/' + created.channelId;
  const ws = new WebSocket(base.replace(/^http/, 'ws') + '/ws?token=' + created.subscribeToken);
  let got = 0;
  const ended = new Promise((ok) => { ws.onmessage = (e) => { const f = JSON.parse(e.data); if (f.event === 'message') got++; if (f.event === 'end') ok(); }; });
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error('bare WebSocket failed')); });
  await post(base + '/messages', created.publishToken, { messages: [1, 2, 3] });
  await post(base + '/end', created.publishToken, { data: 'done' });
  await ended;
  ws.close();
  if (got !== 3) throw new Error('got ' + got + ' messages');
}
window.run = async (kind, n, step) => {
  const samples = [];
  const sample = async (i) => { await new Promise((ok) => setTimeout(ok, 50)); gc(); gc();
    samples.push({ channels: i, heap: performance.memory.usedJSHeapSize, wasm: window.wasmMemory ? window.wasmMemory.buffer.byteLength : 0 }); };
  await sample(0);
  for (let i = 1; i <= n; i++) {
    if (kind === 'bare') await bareOne(); else await sdkOne(kind);
    if (i % step === 0) await sample(i);
  }
  return samples;
};
// n more channels, no samples (BENCH_SNAPSHOTS).
window.loop = async (kind, n) => {
  for (let i = 0; i < n; i++) if (kind === 'bare') await bareOne(); else await sdkOne(kind);
};
window.ready = true;
</script>`;

const pkg = join(ROOT, 'pkg');
const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  if (path === '/index.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(join(pkg, 'index.js')));
  res.writeHead(404).end();
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const url = `http://127.0.0.1:${server.address().port}/?relay=${encodeURIComponent(relay)}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--js-flags=--expose-gc', '--enable-precise-memory-info'],
});
// Live objects per type and constructor name in a heap snapshot taken after a forced GC (the
// DevTools protocol's HeapProfiler): Map of `type name` → { count, size }.
async function liveObjects(cdp) {
  let json = '';
  const chunk = (e) => {
    json += e.chunk;
  };
  cdp.on('HeapProfiler.addHeapSnapshotChunk', chunk);
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  cdp.off('HeapProfiler.addHeapSnapshotChunk', chunk);
  const snap = JSON.parse(json);
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [ti, ni, si] = ['type', 'name', 'self_size'].map((k) => f.indexOf(k));
  const out = new Map();
  for (let i = 0; i < snap.nodes.length; i += f.length) {
    const key = `${types[snap.nodes[i + ti]]} ${String(snap.strings[snap.nodes[i + ni]]).slice(0, 60)}`;
    const v = out.get(key) || { count: 0, size: 0 };
    v.count++;
    v.size += snap.nodes[i + si];
    out.set(key, v);
  }
  return out;
}

// BENCH_SNAPSHOTS=a,b: for each kind, heap snapshots after a and after b channels (no sampling),
// and the types whose live objects changed between them, by count.
if (process.env.BENCH_SNAPSHOTS) {
  const [a, b] = process.env.BENCH_SNAPSHOTS.split(',').map(Number);
  try {
    for (const kind of (process.env.BENCH_KINDS || 'websocket,eventsource,bare').split(',')) {
      const page = await browser.newPage();
      page.on('pageerror', (e) => console.error(`[bench-memory] page error: ${e.message}`));
      await page.goto(url);
      await page.waitForFunction(() => window.ready);
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('HeapProfiler.enable');
      await page.evaluate(([k, n]) => window.loop(k, n), [kind, a]);
      const before = await liveObjects(cdp);
      await page.evaluate(([k, n]) => window.loop(k, n), [kind, b - a]);
      const after = await liveObjects(cdp);
      await page.close();
      const total = (m) => [...m.values()].reduce((t, v) => ({ count: t.count + v.count, size: t.size + v.size }), { count: 0, size: 0 });
      const [tb, ta] = [total(before), total(after)];
      console.log(`${kind}: live objects after ${a} channels ${tb.count} (${tb.size} B), after ${b} ${ta.count} (${ta.size} B)`);
      const keys = new Set([...before.keys(), ...after.keys()]);
      const diff = [...keys]
        .map((k) => ({ k, dc: (after.get(k)?.count || 0) - (before.get(k)?.count || 0), ds: (after.get(k)?.size || 0) - (before.get(k)?.size || 0), n: after.get(k)?.count || 0 }))
        .filter((d) => d.dc !== 0)
        .sort((x, y) => Math.abs(y.ds) - Math.abs(x.ds) || Math.abs(y.dc) - Math.abs(x.dc));
      for (const d of diff.slice(0, 25)) console.log(`  ${d.dc > 0 ? '+' : ''}${d.dc} (${d.ds > 0 ? '+' : ''}${d.ds} B; ${d.n} live) ${d.k}`);
      // By snapshot node type (object, closure, array, string, code, native, …).
      const byType = new Map();
      for (const d of diff) {
        const t = d.k.split(' ')[0];
        const v = byType.get(t) || { dc: 0, ds: 0 };
        v.dc += d.dc;
        v.ds += d.ds;
        byType.set(t, v);
      }
      console.log(`  by type: ${[...byType].map(([t, v]) => `${t} ${v.dc > 0 ? '+' : ''}${v.dc} (${v.ds > 0 ? '+' : ''}${v.ds} B)`).join(', ')}`);
      for (const name of ['SSEChannel', 'WebSocket', 'EventSource', 'Promise']) {
        const c = (m) => m.get(`object ${name}`)?.count || 0;
        console.log(`  object ${name}: ${c(before)} → ${c(after)}`);
      }
    }
  } finally {
    await browser.close();
    server.close();
  }
  process.exit(0);
}

try {
  console.log(`| loop (${N} channels, 3 messages + end each) | JS heap after GC: start → end | growth per channel | fitted slope over the last ${N - STEP} | slope over the last half | wasm memory: start → end |`);
  console.log('|---|---|---|---|---|---|');
  for (const kind of (process.env.BENCH_KINDS || 'websocket,eventsource,bare').split(',')) {
    const page = await browser.newPage();
    page.on('console', (m) => console.error(`[bench-memory] page: ${m.text()}`));
    page.on('pageerror', (e) => console.error(`[bench-memory] page error: ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => window.ready);
    const samples = await page.evaluate(([k, n, s]) => window.run(k, n, s), [kind, N, STEP]);
    await page.close();
    const first = samples[0].heap;
    const last = samples[samples.length - 1].heap;
    // Least squares over the samples after the first STEP (warm-up: code compiled, pools grown),
    // and over the second half alone (does the growth flatten?).
    const fit = (pts) => {
      const mx = pts.reduce((a, p) => a + p.channels, 0) / pts.length;
      const my = pts.reduce((a, p) => a + p.heap, 0) / pts.length;
      return pts.reduce((a, p) => a + (p.channels - mx) * (p.heap - my), 0) / pts.reduce((a, p) => a + (p.channels - mx) ** 2, 0);
    };
    const slope = fit(samples.filter((p) => p.channels >= STEP));
    const late = fit(samples.filter((p) => p.channels >= N / 2));
    const name = kind === 'bare' ? 'bare WebSocket + fetch, no SDK' : `SDK, ${kind}`;
    const wasm = kind === 'bare' ? '–' : `${samples[1].wasm / 1024} KiB → ${samples[samples.length - 1].wasm / 1024} KiB`;
    console.log(`| ${name} | ${(first / 1024).toFixed(0)} KiB → ${(last / 1024).toFixed(0)} KiB | ${((last - first) / N).toFixed(0)} B | ${slope.toFixed(1)} B/channel | ${late.toFixed(1)} B/channel | ${wasm} |`);
    console.error(`[bench-memory] ${kind}: ${samples.map((p) => `${p.channels}:${(p.heap / 1024).toFixed(0)}K/${p.wasm / 1024}K`).join(' ')}`);
  }
} finally {
  await browser.close();
  server.close();
}
