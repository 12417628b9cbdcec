// Issue 12 on the writer's side, against a real relay: fail(), subscribers, cancel (writer.signal,
// writer.cancelled, CHANNEL_CANCELLED rejections) and abandonAfterMs. Latencies are printed, not asserted.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import {
  loadSdk, relayUrl, createChannel, descriptorOf, subscribe, eventsOf, rejectsWith, until, sleep,
} from './helpers.mjs';

const { deserializeSSEChannel } = loadSdk();
const allow = { allowedRelays: [relayUrl] };

/** POST /cancel as the browser does: the subscribe token, optional reason. */
async function cancelFromBrowser(ch, reason) {
  const res = await fetch(`${relayUrl}/v1/channels/${ch.channelId}/cancel`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ch.subscribeToken}`, 'content-type': 'application/json' },
    body: reason === undefined ? '' : JSON.stringify({ reason }),
  });
  return { status: res.status, body: await res.json() };
}

/** An HTTP server that never answers (a slow upstream the function is waiting for). */
const slow = http.createServer(() => {});
await new Promise((resolve) => slow.listen(0, '127.0.0.1', resolve));
const slowUrl = `http://127.0.0.1:${slow.address().port}/slow`;
after(() => { slow.closeAllConnections(); slow.close(); });

describe('fail()', () => {
  test('readers get message, then a stored FUNCTION_FAILED error event (message, details), also after a reconnect', async () => {
    const ch = await createChannel();
    const reader = subscribe(ch);
    await reader.ready;
    const w = deserializeSSEChannel(descriptorOf(ch), allow);
    assert.equal(w.subscribers, undefined);
    await w.write('step 1');
    assert.equal(w.subscribers, 1, 'the live reader is counted');
    const err = Object.assign(new Error('quota exceeded'), { details: { step: 2 } });
    await w.fail(err);
    assert.equal(w.ended, true);
    const want = { id: 2, event: 'error', data: { code: 'FUNCTION_FAILED', message: 'quota exceeded', details: { step: 2 } } };
    assert.deepEqual(await reader.done, [{ id: 1, event: 'message', data: 'step 1' }, want]);
    assert.deepEqual(await subscribe(ch, { lastEventId: 1 }).done, [want]);
    await rejectsWith(assert, w.write('late'), 'CHANNEL_ENDED');
    await rejectsWith(assert, w.fail('again'), 'CHANNEL_ENDED');
  });

  test('a string, or {message, details}; an over-long message is cut to 1,024 characters', async () => {
    const a = await createChannel();
    await deserializeSSEChannel(descriptorOf(a), allow).fail('plain words');
    assert.deepEqual((await eventsOf(a)).at(-1).data, { code: 'FUNCTION_FAILED', message: 'plain words' });
    const b = await createChannel();
    await deserializeSSEChannel(descriptorOf(b), allow).fail({ message: 'x'.repeat(2000), details: [1, null] });
    const last = (await eventsOf(b)).at(-1).data;
    assert.equal(last.message.length, 1024);
    assert.deepEqual(last.details, [1, null]);
  });

  test('fail() goes out after the writes queued before it', async () => {
    const ch = await createChannel();
    const w = deserializeSSEChannel(descriptorOf(ch), allow);
    for (let i = 1; i <= 50; i++) w.write(i);
    await w.fail('stopped');
    const events = await eventsOf(ch);
    assert.deepEqual(events.slice(0, 50).map((e) => e.data), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(events[50].event, 'error');
    assert.equal(events[50].id, 51);
  });
});

describe('cancel', () => {
  test('a cancel from the browser aborts a fetch awaiting a slow server through writer.signal', async () => {
    const ch = await createChannel();
    const w = deserializeSSEChannel(descriptorOf(ch), allow);
    await w.write('working');
    const waiting = fetch(slowUrl, { signal: w.signal });
    waiting.catch(() => {});
    await sleep(200); // the long-poll is up
    const sent = performance.now();
    const c = await cancelFromBrowser(ch, 'user pressed stop');
    assert.deepEqual(c, { status: 200, body: { id: 2 } });
    await assert.rejects(waiting, (e) => e.code === 'CHANNEL_CANCELLED' || e.name === 'AbortError');
    console.log(`# cancel -> slow fetch aborted: ${(performance.now() - sent).toFixed(0)} ms`);
    assert.equal(w.signal.aborted, true);
    assert.equal(w.signal.reason.code, 'CHANNEL_CANCELLED');
    assert.equal(w.signal.reason.message, 'user pressed stop');
    assert.equal(await w.cancelled, 'user pressed stop');
    await rejectsWith(assert, w.write('late'), 'CHANNEL_CANCELLED', /^user pressed stop$/);
    await rejectsWith(assert, w.end('late'), 'CHANNEL_CANCELLED', /^user pressed stop$/);
    assert.deepEqual((await eventsOf(ch)).at(-1), {
      id: 2, event: 'error', data: { code: 'CHANNEL_CANCELLED', message: 'user pressed stop' },
    });
  });

  test('without signal or cancelled read, the next write learns of the cancel; signal is then aborted at once', async () => {
    const ch = await createChannel();
    const w = deserializeSSEChannel(descriptorOf(ch), allow);
    await w.write(1);
    assert.equal((await cancelFromBrowser(ch)).status, 200);
    await rejectsWith(assert, w.write(2), 'CHANNEL_CANCELLED', /cancelled by the reader/);
    await until(() => w.signal.aborted);
    assert.equal(w.signal.reason.code, 'CHANNEL_CANCELLED');
    assert.equal(await w.cancelled, 'cancelled by the reader');
    await rejectsWith(assert, w.fail('too late'), 'CHANNEL_CANCELLED');
  });

  test('abandonAfterMs 2000: once the last reader is gone the signal aborts with ABANDONED', async () => {
    const ch = await createChannel({ abandonAfterMs: 2000 });
    const reader = subscribe(ch);
    await reader.ready;
    const w = deserializeSSEChannel(descriptorOf(ch), allow);
    const signal = w.signal;
    await w.write('a');
    assert.equal(w.subscribers, 1);
    await sleep(2500);
    assert.equal(signal.aborted, false, 'a connected reader keeps the channel');
    const gone = performance.now();
    reader.cancel();
    assert.equal(await w.cancelled, 'ABANDONED');
    console.log(`# last reader gone -> signal aborted (abandonAfterMs 2000): ${(performance.now() - gone).toFixed(0)} ms`);
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason.message, 'ABANDONED');
    await rejectsWith(assert, w.write('b'), 'CHANNEL_CANCELLED', /ABANDONED/);
  });

  test('the long-poll does not keep Node.js running after end() or fail()', async () => {
    for (const finish of ['end', 'fail']) {
      const ch = await createChannel();
      const script = `
        const { deserializeSSEChannel } = require(${JSON.stringify(process.env.SSE_CHANNEL_NODE_MODULE)});
        const w = deserializeSSEChannel(${JSON.stringify(descriptorOf(ch))}, { allowedRelays: [${JSON.stringify(relayUrl)}] });
        w.signal; w.cancelled.then(() => {});
        (async () => { await w.write(1); await w.${finish}('done'); })();
      `;
      const started = performance.now();
      const child = spawn(process.execPath, ['-e', script], { stdio: 'inherit' });
      // The long-poll's own timeout is 25 s: a process that waits for it would outlive this bound.
      const code = await new Promise((resolve) => {
        const kill = setTimeout(() => { child.kill('SIGKILL'); resolve('killed'); }, 15000);
        child.on('exit', (c) => { clearTimeout(kill); resolve(c); });
      });
      assert.equal(code, 0, `${finish}: the process exits by itself`);
      console.log(`# ${finish}(): process exited after ${(performance.now() - started).toFixed(0)} ms`);
      assert.equal((await eventsOf(ch)).length, 2);
    }
  });
});
