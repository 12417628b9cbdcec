// Loading-strategy benchmark (docs/loading.md): for each candidate build of the browser entry,
// the bytes a browser downloads (gzip) and the time from navigation to the first `open()` resolved,
// in headless Chromium against a real relay, on loopback and on an emulated slow mobile link.
// Run through tests/e2e/bench-loading.sh (`make bench-loading`); it builds the variants into
// build/variants/{eager,lazy,async} and sets RELAY_URL. Prints a Markdown table; numbers, no asserts.
import { createServer } from 'node:http';
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, launchBrowser } from './lib/harness.mjs';

const VARIANTS_DIR = join(ROOT, 'build/variants');
const RUNS = Number(process.env.BENCH_RUNS || 7);
const relay = process.env.RELAY_URL;
if (!relay) throw new Error('RELAY_URL is not set: run tests/e2e/bench-loading.sh');

const VARIANTS = [
  { name: 'inline, sync compile at import (eager)', id: 'eager', files: ['eager/index.js'] },
  { name: 'inline, sync compile at first use (lazy)', id: 'lazy', files: ['lazy/index.js'] },
  { name: 'inline, lazy, first use 1 s after import (background compile done)', id: 'lazy', delay: 1000, files: ['lazy/index.js'] },
  { name: 'inline, async compile from import (async)', id: 'async', files: ['async/index.js'] },
  { name: 'slim: glue + .wasm by URL, `await init()`', id: 'slim', files: ['eager/slim.js', 'eager/sse_channel_bg.wasm'] },
];
const PROFILES = [
  { name: 'loopback', network: null, cpu: 1 },
  // Lighthouse's "slow 4G" link and a 4x slower CPU: a mid-range phone on a mobile network.
  { name: 'slow 4G (150 ms RTT, 1.6 Mbit/s) + 4x CPU', network: { latency: 150, down: 1.6e6 / 8, up: 750e3 / 8 }, cpu: 4 },
];

const PAGE = `<!doctype html><meta charset="utf-8"><title>bench</title><script type="module">
const q = new URLSearchParams(location.search);
const v = q.get('variant');
const t0 = performance.now();
const m = await import(v === 'slim' ? './eager/slim.js' : './' + v + '/index.js');
const t1 = performance.now();
if (v === 'slim') await m.default();
if (q.get('delay')) await new Promise((ok) => setTimeout(ok, Number(q.get('delay'))));
const t2 = performance.now();
const ch = new m.SSEChannel({ relay: q.get('relay'), transport: 'websocket' });
const t3 = performance.now();
await ch.open();
const t4 = performance.now();
ch.close();
const bytes = performance.getEntriesByType('resource').filter((e) => /\\.(js|wasm)$/.test(e.name))
  .reduce((n, e) => n + e.transferSize, 0);
window.result = { importMs: t1 - t0, initMs: t2 - t1, constructMs: t3 - t2, openMs: t4 - t3, fromNavMs: t4, transferBytes: bytes };
</script>`;

const gzCache = new Map();
function gz(file) {
  if (!gzCache.has(file)) gzCache.set(file, gzipSync(readFileSync(file), { level: 9 }));
  return gzCache.get(file);
}

const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/bench.html') {
    res.writeHead(200, { 'Content-Type': 'text/html' }).end(PAGE);
    return;
  }
  const file = resolve(VARIANTS_DIR, `.${path}`);
  if (!file.startsWith(resolve(VARIANTS_DIR) + sep) || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404).end();
    return;
  }
  // Compressed on the wire, as any production server would.
  res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream', 'Content-Encoding': 'gzip', 'Cache-Control': 'no-store' });
  res.end(gz(file));
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}`;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

const browser = await launchBrowser();
const rows = [];
try {
  for (const profile of PROFILES) {
    for (const variant of VARIANTS) {
      const samples = [];
      for (let i = 0; i < RUNS + 1; i++) {
        const context = await browser.newContext();
        const page = await context.newPage();
        const cdp = await context.newCDPSession(page);
        await cdp.send('Network.enable');
        await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
        if (profile.network) {
          await cdp.send('Network.emulateNetworkConditions', {
            offline: false,
            latency: profile.network.latency,
            downloadThroughput: profile.network.down,
            uploadThroughput: profile.network.up,
          });
        }
        if (profile.cpu > 1) await cdp.send('Emulation.setCPUThrottlingRate', { rate: profile.cpu });
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(`${base}/bench.html?variant=${variant.id}&delay=${variant.delay || ''}&relay=${encodeURIComponent(relay)}`);
        await page.waitForFunction(() => window.result, null, { timeout: 60_000 }).catch(() => {
          throw new Error(`${variant.id}: no result; ${errors.join('; ')}`);
        });
        const r = await page.evaluate(() => window.result);
        await context.close();
        if (i > 0) samples.push(r); // the first run warms the relay and the browser
      }
      const gzipBytes = variant.files.reduce((n, f) => n + gz(join(VARIANTS_DIR, f)).length, 0);
      const row = {
        profile: profile.name,
        variant: variant.name,
        gzipBytes,
        transferBytes: median(samples.map((s) => s.transferBytes)),
        importMs: median(samples.map((s) => s.importMs)),
        initMs: median(samples.map((s) => s.initMs)),
        constructMs: median(samples.map((s) => s.constructMs)),
        openMs: median(samples.map((s) => s.openMs)),
        fromNavMs: median(samples.map((s) => s.fromNavMs)),
      };
      rows.push(row);
      process.stderr.write(`${JSON.stringify(row)}\n`);
    }
  }
} finally {
  await browser.close();
  server.close();
}

const f1 = (x) => x.toFixed(1);
const kb = (b) => `${(b / 1024).toFixed(1)} KiB`;
const lines = [
  `Medians of ${RUNS} runs each (fresh browser context, cache disabled), headless Chromium, WebSocket transport, real relay on loopback.`,
  '',
  '| profile | candidate | download (gzip -9 files) | import | init | `new` | `open()` | navigation → first `open()` resolved |',
  '|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.profile} | ${r.variant} | ${kb(r.gzipBytes)} | ${f1(r.importMs)} ms | ${f1(r.initMs)} ms | ${f1(r.constructMs)} ms | ${f1(r.openMs)} ms | **${f1(r.fromNavMs)} ms** |`,
  ),
];
const md = lines.join('\n');
mkdirSync(join(ROOT, 'tests/out'), { recursive: true });
writeFileSync(join(ROOT, 'tests/out/bench-loading.md'), md + '\n');
writeFileSync(join(ROOT, 'tests/out/bench-loading.json'), JSON.stringify(rows, null, 2) + '\n');
console.log(md);
