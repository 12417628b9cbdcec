// Cloud-function side, CommonJS under Node's resolution (the "node"/"require" conditions).
import sse = require('open-sse-channel');

export async function main(event: { sseChannel: string }): Promise<void> {
  const w = sse.deserializeSSEChannel(event.sseChannel, { allowedRelays: ['https://relay.example.com'], retry: { maxAttempts: 2 } });
  await w.write({ progress: 0.5 });
  await w.end('done');
  const ended: boolean = w.ended;
  void ended;
}
