// Cloud-function side, CommonJS under Node's resolution (the "node"/"require" conditions).
import sse = require('open-sse-channel');

export async function main(event: { sseChannel: string }): Promise<void> {
  const w = sse.deserializeSSEChannel(event.sseChannel, { allowedRelays: ['https://relay.example.com'], retry: { maxAttempts: 2 }, maxQueued: 100, timeoutMs: 20000 });
  try {
    await w.write({ progress: 0.5 });
  } catch (err) {
    if ((err as sse.SSEChannelError).code !== 'QUEUE_FULL') throw err;
    const nothing: void = w.resume();
    void nothing;
  }
  const signal: AbortSignal = w.signal;
  const listening: number | undefined = w.subscribers;
  const reason: Promise<string> = w.cancelled;
  void listening;
  void reason;
  if (signal.aborted) {
    await w.fail({ message: 'stopped', details: { step: 3 } });
    await w.fail(new Error('boom'));
    await w.fail('boom');
    return;
  }
  await w.end('done');
  const ended: boolean = w.ended;
  void ended;
}
