// A cloud function that writes faster than the page reads: N messages of ~1 KiB, none awaited
// (an AI completion streamed chunk by chunk), then end. Env: DESC, RELAY, N. Prints one JSON line.
const { deserializeSSEChannel } = require('open-sse-channel');

(async () => {
  const n = Number(process.env.N);
  const pad = 'x'.repeat(1000);
  const w = deserializeSSEChannel(process.env.DESC, { allowedRelays: [process.env.RELAY] });
  const t0 = Date.now();
  const pending = [];
  for (let i = 0; i < n; i++) pending.push(w.write({ i, pad }));
  await Promise.all(pending);
  await w.end({ done: true, n });
  console.log(JSON.stringify({ ok: true, ms: Date.now() - t0 }));
})().catch((err) => {
  console.log(JSON.stringify({ ok: false, code: err && err.code, message: String(err && err.message) }));
  process.exit(1);
});
