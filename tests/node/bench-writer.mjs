// Writer benchmark against a real relay (prints numbers; asserts nothing about time).
//   bash scripts/test-node.sh bench      (release relay, package's Node build)
import { performance } from 'node:perf_hooks';
import { relayUrl, loadSdk, createChannel, descriptorOf, startProxy, eventsOf } from './helpers.mjs';

const { deserializeSSEChannel } = loadSdk();
const payload = (i) => ({ i, text: 'x'.repeat(48) }); // ~64 bytes of JSON
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
const ms = (x) => x.toFixed(2);

async function unawaited(n) {
  const ch = await createChannel();
  const proxy = await startProxy();
  const w = deserializeSSEChannel(descriptorOf(ch, proxy.url), { allowedRelays: [proxy.url] });
  const t0 = performance.now();
  const all = [];
  for (let i = 0; i < n; i++) all.push(w.write(payload(i)));
  await Promise.all(all);
  const dt = performance.now() - t0;
  await w.end();
  await proxy.close();
  return { n, ms: dt, perSec: (n / dt) * 1000, requests: proxy.requests('messages').length };
}

async function awaited(n) {
  const ch = await createChannel();
  const w = deserializeSSEChannel(descriptorOf(ch), { allowedRelays: [relayUrl] });
  const lat = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await w.write(payload(i));
    lat.push(performance.now() - s);
  }
  const dt = performance.now() - t0;
  await w.end();
  lat.sort((a, b) => a - b);
  return { n, perSec: (n / dt) * 1000, p50: pct(lat, 50), p99: pct(lat, 99) };
}

async function plainFetch(n) {
  const ch = await createChannel();
  const url = `${relayUrl}/v1/channels/${ch.channelId}/messages`;
  const headers = { authorization: `Bearer ${ch.publishToken}`, 'content-type': 'application/json' };
  const lat = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ data: payload(i) }) });
    await r.text();
    lat.push(performance.now() - s);
  }
  const dt = performance.now() - t0;
  lat.sort((a, b) => a - b);
  return { n, perSec: (n / dt) * 1000, p50: pct(lat, 50), p99: pct(lat, 99) };
}

// Warm up (JIT, connection pool), then three runs each; print the median run.
await awaited(200);
await plainFetch(200);
const median = async (f) => {
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await f());
  runs.sort((a, b) => a.perSec - b.perSec);
  return runs[1];
};
const a = await median(() => unawaited(5000));
const b = await median(() => awaited(1000));
const c = await median(() => plainFetch(1000));
console.log(`unawaited writes: ${a.n} x 64 B in ${ms(a.ms)} ms = ${Math.round(a.perSec)} msg/s, ${a.requests} requests (through the counting proxy)`);
console.log(`awaited writes:   ${Math.round(b.perSec)} msg/s, latency p50 ${ms(b.p50)} ms, p99 ${ms(b.p99)} ms (one request each)`);
console.log(`plain fetch POST: ${Math.round(c.perSec)} msg/s, latency p50 ${ms(c.p50)} ms, p99 ${ms(c.p99)} ms (baseline, no writer)`);
// Sanity: what the subscriber would see for one more unawaited run, to be sure nothing was dropped.
const ch = await createChannel();
const w = deserializeSSEChannel(descriptorOf(ch), { allowedRelays: [relayUrl] });
for (let i = 0; i < 500; i++) w.write(i);
await w.end('done');
const got = (await eventsOf(ch)).filter((e) => e.event === 'message').length;
console.log(`check: ${got}/500 messages stored`);
