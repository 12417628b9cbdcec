// A cloud function that streams N messages at a steady pace (10 un-awaited writes, then a 10 ms
// pause), then ends, through a load balancer in front of several relay nodes. Env: DESC, RELAY, N.
// Prints one JSON line.
const { deserializeSSEChannel } = require('open-sse-channel');

(async () => {
  const n = Number(process.env.N);
  const w = deserializeSSEChannel(process.env.DESC, { allowedRelays: [process.env.RELAY] });
  const t0 = Date.now();
  const pending = [];
  for (let i = 0; i < n; i++) {
    pending.push(w.write({ i }));
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(pending);
  await w.end({ done: true, n });
  console.log(JSON.stringify({ ok: true, ms: Date.now() - t0 }));
})().catch((err) => {
  console.log(JSON.stringify({ ok: false, code: err && err.code, message: String(err && err.message) }));
  process.exit(1);
});
