// Cloud-function side of the scenario as an ES module: `import` of 'open-sse-channel' in Node must also
// reach the node build (exports map "node" condition). Same env and output as writer.cjs.
import { deserializeSSEChannel } from 'open-sse-channel';
import messages from './messages.cjs';

const n = Number(process.env.N || 20);
try {
  const w = deserializeSSEChannel(JSON.parse(process.env.DESC), { allowedRelays: [process.env.RELAY] });
  const all = [];
  for (let i = 0; i < n; i++) all.push(w.write(messages.messageFor(i)));
  await Promise.all(all);
  await w.end({ done: true, n });
  console.log(JSON.stringify({ ok: true, side: 'import' }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, code: err && err.code, message: String(err && err.message) }));
  process.exit(1);
}
