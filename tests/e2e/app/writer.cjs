// Cloud-function side of the scenario, CommonJS: `require('open-sse-channel')` resolves the package's
// node build from the project this file is copied into. Env: DESC (the descriptor JSON),
// RELAY (the allowed relay origin), N (message count). Prints one JSON line.
const { deserializeSSEChannel } = require('open-sse-channel');
const { messageFor } = require('./messages.cjs');

(async () => {
  const n = Number(process.env.N || 20);
  const w = deserializeSSEChannel(process.env.DESC, { allowedRelays: [process.env.RELAY] });
  // The first half awaited one by one, the rest fired without await: order must hold either way.
  for (let i = 0; i < n / 2; i++) await w.write(messageFor(i));
  const pending = [];
  for (let i = Math.ceil(n / 2); i < n; i++) pending.push(w.write(messageFor(i)));
  await Promise.all(pending);
  await w.end({ done: true, n });
  console.log(JSON.stringify({ ok: true, side: 'require' }));
})().catch((err) => {
  console.log(JSON.stringify({ ok: false, code: err && err.code, message: String(err && err.message) }));
  process.exit(1);
});
