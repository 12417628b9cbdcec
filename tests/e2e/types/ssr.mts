// Code shared by server-side rendering and the browser (a component that constructs the channel on
// the client only), type-checked under Node's resolution: the Node entry's typings declare
// `SSEChannel` with the browser's signature (it throws UNSUPPORTED_ENVIRONMENT there if constructed).
import { SSEChannel, deserializeSSEChannel } from 'open-sse-channel';
import type { SSEChannelOptions, SSEChannelState, SSEChannelWriter } from 'open-sse-channel';

export async function onMounted(relay: string): Promise<SSEChannelState> {
  const options: SSEChannelOptions = { relay, transport: 'eventsource' };
  SSEChannel.configure(options);
  const ch = new SSEChannel(options);
  ch.on('message', (data: unknown) => console.log(data));
  ch.on('error', (err) => console.log(err.code));
  await ch.open();
  return ch.state;
}

export function serverSide(descriptor: string): SSEChannelWriter {
  return deserializeSSEChannel(descriptor, { allowedRelays: ['https://relay.example.com'] });
}
