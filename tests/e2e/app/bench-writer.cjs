// Benchmark writer: N messages {"i","t","p"} of ~64 B written un-awaited through the package, then
// end. Env: DESC, RELAY, N. Prints {"ok", "start"} with `start` the wall-clock ms of the first write.
const { deserializeSSEChannel } = require('open-sse-channel');
const { performance } = require('node:perf_hooks');

(async () => {
  const n = Number(process.env.N);
  const w = deserializeSSEChannel(process.env.DESC, { allowedRelays: [process.env.RELAY] });
  const wall = () => performance.timeOrigin + performance.now();
  const start = wall();
  const pending = [];
  for (let i = 0; i < n; i++) pending.push(w.write({ i, t: wall(), p: 'x'.repeat(16) }));
  await Promise.all(pending);
  await w.end(null);
  console.log(JSON.stringify({ ok: true, start }));
})().catch((err) => {
  console.log(JSON.stringify({ ok: false, code: err && err.code, message: String(err && err.message) }));
  process.exit(1);
});
