// The cloud function of tests/e2e/lifecycle.test.mjs, one behaviour per MODE (env: DESC, RELAY, MODE,
// N, SLOW_URL). Prints JSON lines: {"ready": …} when it starts waiting, then its outcome.
//   slow     writes one message, then awaits a fetch that never answers (SLOW_URL) with
//            `signal: writer.signal`: a cancel from the page must abort it.
//   abandon  writes a message every 200 ms until writer.signal aborts (nobody listens).
//   steps    writes N messages, 100 ms apart, then end({done: true, n}).
//   fail     writes N messages, then writer.fail({message, details}).
const { deserializeSSEChannel } = require('open-sse-channel');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (o) => console.log(JSON.stringify(o));

(async () => {
  const n = Number(process.env.N || 3);
  const w = deserializeSSEChannel(process.env.DESC, { allowedRelays: [process.env.RELAY] });
  switch (process.env.MODE) {
    case 'slow': {
      await w.write({ i: 0 });
      say({ ready: true });
      try {
        await fetch(process.env.SLOW_URL, { signal: w.signal });
        say({ ok: false, message: 'the slow fetch answered' });
      } catch (err) {
        say({ ok: true, aborted: w.signal.aborted, code: w.signal.reason?.code, reason: w.signal.reason?.message, at: Date.now(), cancelled: await w.cancelled });
      }
      break;
    }
    case 'abandon': {
      let i = 0;
      say({ ready: true });
      while (!w.signal.aborted) {
        await w.write({ i: i++ }).catch(() => {});
        await sleep(200);
      }
      say({ ok: true, code: w.signal.reason?.code, reason: w.signal.reason?.message, at: Date.now(), wrote: i });
      break;
    }
    case 'steps': {
      say({ ready: true });
      for (let i = 0; i < n; i++) {
        await w.write({ i });
        await sleep(100);
      }
      await w.end({ done: true, n });
      say({ ok: true });
      break;
    }
    case 'fail': {
      for (let i = 0; i < n; i++) await w.write({ i });
      say({ ready: true });
      if (process.env.WAIT_STDIN) await new Promise((r) => process.stdin.once('data', r));
      await w.fail({ message: 'step failed', details: { step: n } });
      say({ ok: true });
      break;
    }
    default:
      throw new Error(`unknown MODE ${process.env.MODE}`);
  }
  process.exit(0);
})().catch((err) => {
  say({ ok: false, code: err && err.code, message: String(err && err.message) });
  process.exit(1);
});
