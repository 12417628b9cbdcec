'use strict';
// Demo cloud function: a long task that reports each step through the caller's channel.
//
// event: { sseChannel, steps = 10 (1..100), delayMs = 400 (0..5000) }
// Each step writes { step, total, label }; the last call, end(), carries the task's result.
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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

exports.main = async (event, context) => {
  const steps = boundedInt(event.steps, 1, 100, 10);
  const delayMs = boundedInt(event.delayMs, 0, 5000, 400);
  const channel = uniCloud.deserializeSSEChannel(event.sseChannel);
  const started = Date.now();

  for (let step = 1; step <= steps; step++) {
    await sleep(delayMs); // the "work" of this step
    // Resolves once the relay has stored the message: the browser gets it even if it is
    // reconnecting right now.
    await channel.write({ step, total: steps, label: LABELS[(step - 1) % LABELS.length] });
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
