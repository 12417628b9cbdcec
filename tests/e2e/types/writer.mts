// Cloud-function side as an ES module under Node's resolution (the "node" condition).
import { deserializeSSEChannel, installUniCloud } from 'open-sse-channel';

const uniCloud: Record<string, unknown> = {};
installUniCloud(uniCloud, { allowedRelays: ['https://relay.example.com'] });
export async function main(event: { sseChannel: object }): Promise<void> {
  const w = deserializeSSEChannel(JSON.stringify(event.sseChannel));
  await w.write(1);
  // @ts-expect-error: end takes at most one argument
  await w.end(1, 2);
}
