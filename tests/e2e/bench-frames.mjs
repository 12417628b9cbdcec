// Browser time per event of the SDK vs bare JS on the same frames, without the network: the page gives
// the SDK fake WebSocket / EventSource objects (and a fake fetch for channel creation) and feeds them
// 200 batches of 256 message frames (the relay's `batch=1` shape); the bare side is plain JS as a
// page would write it (JSON.parse, a loop over the batch) on the same text; both call the same
// listener. Prints the median ns per event of N (default 9) alternating runs; asserts nothing.
// `make bench-frames` (builds pkg/ first); PKG=<dir> measures another build of the package.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from './lib/harness.mjs';

const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
import { SSEChannel } from './index.js';
let fake = null;
class FakeWS { constructor(url) { this.url = url; fake = this; setTimeout(() => { this.onopen && this.onopen({}); this.onmessage({ data: JSON.stringify({ event: 'ready', data: { heartbeatMs: 600000 } }) }); }, 0); } close() {} send() {} }
class FakeES { constructor(url) { this.url = url; fake = this; this.l = {}; setTimeout(() => { this.fire('open', {}); this.fire('ready', new MessageEvent('ready', { data: JSON.stringify({ heartbeatMs: 600000 }) })); }, 0); }
  addEventListener(n, f) { (this.l[n] ||= []).push(f); } removeEventListener() {} close() {} fire(n, e) { for (const f of this.l[n] || []) f(e); } }
window.WebSocket = FakeWS; window.EventSource = FakeES;
window.fetch = async () => new Response(JSON.stringify({ channelId: 'ab', subscribeToken: 't', publishToken: 'p', expiresAt: 9e12 }), { status: 201, headers: { 'content-type': 'application/json' } });
const per = 256, rounds = 200;
function batches(startId) { const out = []; let id = startId; for (let r = 0; r < rounds; r++) { const a = []; for (let i = 0; i < per; i++) a.push({ id: id++, event: 'message', data: { seq: id, pad: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' } }); out.push(JSON.stringify(a)); } return out; }
function listener() { const r = { n: 0, sum: 0, f: (v) => { r.last = performance.now(); r.sum += v.seq; r.n++; } }; return r; }
window.runSdk = async (transport) => {
  const ch = new SSEChannel({ relay: 'http://127.0.0.1:1', transport });
  const rec = listener(); ch.on('message', rec.f);
  await ch.open();
  const texts = batches(1);
  const t0 = performance.now();
  for (const t of texts) { if (transport === 'websocket') fake.onmessage(new MessageEvent('message', { data: t })); else fake.fire('batch', new MessageEvent('batch', { data: t })); }
  const dt = performance.now() - t0;
  ch.close();
  if (rec.n !== per * rounds) throw new Error('got ' + rec.n);
  return dt * 1e6 / (per * rounds);
};
window.runBare = async () => {
  const rec = listener();
  const frame = (f) => { if (f.event === 'message') rec.f(f.data); };
  const on = (e) => { const v = JSON.parse(e.data); if (Array.isArray(v)) for (let i = 0; i < v.length; i++) frame(v[i]); else frame(v); };
  const texts = batches(1);
  const t0 = performance.now();
  for (const t of texts) on(new MessageEvent('message', { data: t }));
  const dt = performance.now() - t0;
  return dt * 1e6 / (per * rounds);
};
window.ready = true;
</script>`;
const pkg = process.env.PKG || join(ROOT, 'pkg');
const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  if (path === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  if (path === '/index.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(join(pkg, 'index.js')));
  res.writeHead(404).end();
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage();
page.on('pageerror', (e) => console.error('page error', e.message));
await page.goto(`http://127.0.0.1:${server.address().port}/`);
await page.waitForFunction(() => window.ready);
const res = { websocket: [], eventsource: [], bare: [] };
for (let i = 0; i < Number(process.env.N || 9); i++) {
  for (const k of ['websocket', 'eventsource', 'bare']) res[k].push(k === 'bare' ? await page.evaluate(() => window.runBare()) : await page.evaluate((t) => window.runSdk(t), k));
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`browser time per event (${pkg}), median of ${res.bare.length} runs of 200 batches of 256 messages:`);
for (const k of Object.keys(res)) console.log(`  ${k === 'bare' ? 'bare JS, no SDK' : 'SDK, ' + k}: ${med(res[k]).toFixed(0)} ns (runs: ${res[k].map((x) => x.toFixed(0)).join(' ')})`);
await browser.close(); server.close();
