'use strict';
// Demo cloud function: thousands of intermediate results, each written the moment it is ready and
// none awaited (as a function streaming what it finds). The writer queues them and sends them in
// batches; when the page reads slower than the function writes, the relay holds its answer to a
// batch until the page has caught up, so the function slows down and the page still gets every
// result once, in order.
//
// event: { sseChannel, chunks = 2000 (1..20000) }
// Each result writes { i, of, text } with about 1 KiB of text; end() carries
// { ok, chunks, chars, elapsedMs }. A cancel from the page (ch.cancel()) makes the queued writes
// reject with CHANNEL_CANCELLED.

const WORDS = (
  'A long-running cloud function can tell the page that called it how far it has come, result by ' +
  'result, while it works. The page reads the results from a relay that stores each one with a ' +
  'sequence id, so a connection that drops resumes where it stopped, and a page that reads slower ' +
  'than the function writes slows the function down instead of losing what it could not read yet.'
).split(' ');

function boundedInt(value, min, max, fallback) {
  const n = Number(value);
  return Number.isInteger(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

/** About 1 KiB of text for result `i`: the words from a place that moves with `i`. */
function passage(i) {
  const words = [];
  let length = 0;
  for (let w = i; length < 1000; w++) {
    const word = WORDS[w % WORDS.length];
    words.push(word);
    length += word.length + 1;
  }
  return words.join(' ');
}

exports.main = async (event) => {
  const chunks = boundedInt(event.chunks, 1, 20000, 2000);
  const channel = uniCloud.deserializeSSEChannel(event.sseChannel);
  const started = Date.now();
  const writes = [];
  let chars = 0;
  for (let i = 1; i <= chunks; i++) {
    const text = passage(i);
    chars += text.length;
    writes.push(channel.write({ i, of: chunks, text })); // not awaited: queued, in order
  }
  try {
    await Promise.all(writes);
  } catch (err) {
    if (err?.code !== 'CHANNEL_CANCELLED') throw err;
    return { ok: false, cancelled: err.message };
  }
  const result = { ok: true, chunks, chars, elapsedMs: Date.now() - started };
  await channel.end(result);
  return result;
};
