// Browser side, resolved like a bundler does (moduleResolution "bundler": the "import" condition).
import { SSEChannel, installUniCloud } from 'open-sse-channel';
import type { SSEChannelDescriptor, SSEChannelError, SSESubscription } from 'open-sse-channel';

export async function run(relay: string): Promise<string> {
  SSEChannel.configure({ relay });
  const ch = new SSEChannel({ relay, transport: 'websocket', reconnect: { maxAttempts: 3 } });
  ch.on('message', (data: unknown) => console.log(data));
  ch.on('error', (err: SSEChannelError) => console.log(err.code, err.from));
  ch.on('state', ({ from, to }) => console.log(from, to));
  await ch.open();
  const desc: SSEChannelDescriptor = ch.toJSON();
  const state: 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed' = ch.state;
  installUniCloud({}, { relay });
  return `${desc.channelId} ${state} ${ch.lastEventId}`;
}

// Cancel, the final error's details, abandonAfterMs, re-attach.
export async function reattach(relay: string, saved: string | null): Promise<void> {
  const ch = saved
    ? SSEChannel.attach(JSON.parse(saved) as SSESubscription, { transport: 'eventsource' })
    : new SSEChannel({ relay, abandonAfterMs: 30000 });
  ch.on('error', (err: SSEChannelError) => console.log(err.code, err.details));
  await ch.open();
  const sub: SSESubscription = ch.toSubscription();
  const last: number = sub.lastEventId;
  // @ts-expect-error: a subscription carries no publish token
  void sub.publishToken;
  await ch.cancel('stopped');
  await ch.cancel();
  console.log(last);
}

// Shared code that also runs in Node (server-side rendering) may name the writer: it type-checks
// here with the Node signature, and throws UNSUPPORTED_ENVIRONMENT if called in a browser.
import { deserializeSSEChannel, SSEChannelWriter } from 'open-sse-channel';
import type { SSEChannelWriterOptions } from 'open-sse-channel';
export function cloudSide(d: SSEChannelDescriptor, options: SSEChannelWriterOptions): Promise<void> {
  const w: SSEChannelWriter = deserializeSSEChannel(d, options);
  return w.end({ done: true });
}
// @ts-expect-error: SSEChannelWriter is a type here, not a value (no writer class in the browser build)
void SSEChannelWriter;

// @ts-expect-error: the browser entry has no init function (the wasm loads by itself)
import { initSync } from 'open-sse-channel';
void initSync;
