'use strict';
// Demo cloud function: a long task that reports each step through the caller's channel.
//
// event: { sseChannel, steps = 10 (1..100), delayMs = 400 (0..5000), failAt = 0 (0..100; 0: never) }
// Each step writes { step, total, label }; the last call, end(), carries the task's result.
// With failAt = N the task fails at step N: writer.fail() ends the channel with FUNCTION_FAILED.
// A cancel from the page (ch.cancel()) aborts channel.signal: the "work" stops at once.
// `uniCloud.deserializeSSEChannel` is provided by the platform (here: the demo's local runner, which
// gets it from the open-sse-channel package's Node build).

const LABELS = [
  'Reading the input',
  'Splitting into chunks',
  'Tokenizing',
  'Scoring candidates',
  'Ranking results',
  'Drafting the answer',
  'Checking facts',
  'Formatting',
  'Compressing',
  'Saving',
];

function boundedInt(value, min, max, fallback) {
  const n = Number(value);
  return Number.isInteger(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

/** Waits `ms`, or less when `signal` aborts (then rejects with its reason). */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

exports.main = async (event, context) => {
  const steps = boundedInt(event.steps, 1, 100, 10);
  const delayMs = boundedInt(event.delayMs, 0, 5000, 400);
  const failAt = boundedInt(event.failAt, 0, 100, 0);
  const channel = uniCloud.deserializeSSEChannel(event.sseChannel);
  const started = Date.now();

  let phase = 'work';
  try {
    for (let step = 1; step <= steps; step++) {
      phase = 'work';
      await sleep(delayMs, channel.signal); // the "work" of this step; stops on a cancel
      phase = 'write';
      if (step === failAt) {
        await channel.fail({ message: `step ${step} failed (failAt)`, details: { step } });
        return { ok: false, failedAt: step };
      }
      // Resolves once the relay has stored the message: the browser gets it even if it is
      // reconnecting right now.
      await channel.write({ step, total: steps, label: LABELS[(step - 1) % LABELS.length] });
    }
  } catch (err) {
    if (err?.code !== 'CHANNEL_CANCELLED') throw err;
    // The page cancelled: stop the work, nothing more to send.
    // `stoppedDuring: 'work'`: writer.signal interrupted the step's work itself.
    return { ok: false, cancelled: err.message, stoppedDuring: phase, elapsedMs: Date.now() - started };
  }

  const result = {
    ok: true,
    steps,
    elapsedMs: Date.now() - started,
    requestId: context.requestId,
    summary: `Processed ${steps} step${steps === 1 ? '' : 's'}`,
  };
  await channel.end(result);
  return result;
};
