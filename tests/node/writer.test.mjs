// The cloud-function writer against a real sse-relay: order, batching, retries, every error code.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  relayUrl, loadSdk, createChannel, descriptorOf, subscribe, eventsOf, startProxy,
  rejectsWith, throwsWith, sleep, mintToken, until, startTcpProxy,
} from './helpers.mjs';

const { deserializeSSEChannel } = loadSdk();
const allow = { allowedRelays: [relayUrl] };
const fastRetry = (extra = {}) => ({ retry: { maxAttempts: 5, minDelayMs: 10, maxDelayMs: 50 }, ...extra });
const messagesOf = (events) => events.filter((e) => e.event === 'message').map((e) => e.data);
const bodyMessages = (entry) => JSON.parse(entry.body).messages;
const bodyOf = (entry) => { const b = JSON.parse(entry.body); return b.messages ?? [b.data]; };

const proxies = [];
async function proxy(plan) {
  const p = await startProxy(relayUrl, plan);
  proxies.push(p);
  return p;
}
after(() => Promise.all(proxies.map((p) => p.close())));

describe('order and batching', () => {
  test('200 unawaited writes arrive 1..200 in order, in fewer requests than writes', async () => {
    const ch = await createChannel();
    const p = await proxy();
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url] });
    const writes = [];
    for (let i = 1; i <= 200; i++) writes.push(w.write(i));
    const ended = w.end({ result: 'done' });
    await Promise.all([...writes, ended]);
    const events = await eventsOf(ch);
    assert.deepEqual(messagesOf(events), Array.from({ length: 200 }, (_, i) => i + 1));
    assert.deepEqual(events.map((e) => e.id), Array.from({ length: 201 }, (_, i) => i + 1));
    assert.deepEqual(events.at(-1), { id: 201, event: 'end', data: { result: 'done' } });
    const posts = p.requests('messages');
    assert.ok(posts.length < 200, `200 writes took ${posts.length} requests`);
    assert.equal(posts.length, 1, 'writes queued in one tick go out as one batch');
    assert.equal(p.requests('end').length, 1);
    assert.equal(w.ended, true);
    assert.equal(w.channelId, ch.channelId);
  });

  test('writes made while a request is in flight go out together as the next batch', async () => {
    const ch = await createChannel();
    const p = await proxy((_e, i) => (i === 0 ? { delayMs: 300 } : 'forward'));
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url] });
    const first = w.write('first');
    await sleep(50); // the first request is now in flight (held by the proxy)
    const rest = [];
    for (let i = 0; i < 50; i++) rest.push(w.write({ n: i }));
    await Promise.all([first, ...rest, w.end()]);
    const posts = p.requests('messages');
    assert.equal(posts.length, 2);
    assert.deepEqual(bodyMessages(posts[0]), ['first']);
    assert.deepEqual(bodyMessages(posts[1]), Array.from({ length: 50 }, (_, i) => ({ n: i })));
    const events = await eventsOf(ch);
    assert.deepEqual(messagesOf(events), ['first', ...Array.from({ length: 50 }, (_, i) => ({ n: i }))]);
    assert.deepEqual(events.at(-1), { id: 52, event: 'end', data: null });
  });

  test('each write resolves only once the relay has stored it', async () => {
    const ch = await createChannel();
    const w = deserializeSSEChannel(descriptorOf(ch), allow);
    await w.write('stored?');
    const sub = subscribe(ch);
    const seen = await Promise.race([
      (async () => { while (sub.events.length === 0) await sleep(5); return sub.events[0]; })(),
      sleep(5000).then(() => null),
    ]);
    sub.cancel();
    assert.deepEqual(seen, { id: 1, event: 'message', data: 'stored?' });
  });

  test('a batch is split at 1,000 messages and at the 1 MiB body limit, order kept', async () => {
    const ch = await createChannel();
    const sub = subscribe(ch);
    await sub.ready;
    const p = await proxy();
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url] });
    const big = 'x'.repeat(60000);
    const sent = [];
    for (let i = 0; i < 2500; i++) sent.push(i);
    for (let i = 0; i < 20; i++) sent.push({ i, big });
    const writes = sent.map((m) => w.write(m));
    await Promise.all([...writes, w.end('fin')]);
    const events = await sub.done;
    const got = messagesOf(events);
    assert.equal(got.length, sent.length);
    assert.deepEqual(got, sent);
    const posts = p.requests('messages');
    for (const e of posts) {
      assert.ok(bodyMessages(e).length <= 1000, 'at most 1,000 messages per batch');
      assert.ok(Buffer.byteLength(e.body) <= 1024 * 1024, 'at most 1 MiB per body');
    }
    // 1,000 + 1,000 small ones; then 500 small + 17 big (~1 MiB); then the last 3 big ones.
    assert.deepEqual(posts.map((e) => bodyMessages(e).length), [1000, 1000, 517, 3]);
  });

  test('maxBatchMessages and maxBodyBytes fit batches to a relay with lower limits', async () => {
    const ch = await createChannel();
    const p = await proxy();
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url], maxBatchMessages: 10, maxBodyBytes: 200, maxMessageBytes: 100 });
    const sent = Array.from({ length: 25 }, (_, i) => i);
    sent.push('a'.repeat(90), 'b'.repeat(90), 'c'.repeat(90));
    await Promise.all([...sent.map((m) => w.write(m)), w.end()]);
    const sizes = p.requests('messages').map((e) => bodyMessages(e).length);
    for (const e of p.requests('messages')) assert.ok(Buffer.byteLength(e.body) <= 200, e.body);
    // 10 + 10 ints; 5 ints + 'a…' (~143 bytes); 'b…' + 'c…' (exactly 200 bytes).
    assert.deepEqual(sizes, [10, 10, 6, 2], 'batches of at most 10 messages and 200 bytes');
    assert.deepEqual(messagesOf(await eventsOf(ch)), sent);
  });

  test('two writers on one channel: each keeps its own order, nothing is lost or doubled', async () => {
    const ch = await createChannel();
    const a = deserializeSSEChannel(descriptorOf(ch), allow);
    const b = deserializeSSEChannel(JSON.stringify(descriptorOf(ch)), allow);
    const writes = [];
    for (let i = 0; i < 300; i++) {
      writes.push(a.write(`a${i}`));
      writes.push(b.write(`b${i}`));
      if (i % 50 === 0) await new Promise((r) => setImmediate(r)); // let requests interleave
    }
    await Promise.all(writes);
    await a.end('a done');
    const got = messagesOf(await eventsOf(ch));
    assert.equal(got.length, 600);
    assert.deepEqual(got.filter((m) => m.startsWith('a')), Array.from({ length: 300 }, (_, i) => `a${i}`));
    assert.deepEqual(got.filter((m) => m.startsWith('b')), Array.from({ length: 300 }, (_, i) => `b${i}`));
    await rejectsWith(assert, b.write('late'), 'CHANNEL_ENDED');
  });

  test('a relay behind a path prefix (reverse proxy) is reached under that prefix', async () => {
    const ch = await createChannel();
    const p = await startProxy(relayUrl, () => 'forward', { stripPrefix: '/sse' });
    proxies.push(p);
    const w = deserializeSSEChannel(descriptorOf(ch, p.url + '/sse/'), { allowedRelays: [p.url] });
    await Promise.all([w.write('via prefix'), w.end()]);
    assert.deepEqual(p.log.map((e) => e.path), [`/sse/v1/channels/${ch.channelId}/messages`, `/sse/v1/channels/${ch.channelId}/end`]);
    assert.deepEqual(messagesOf(await eventsOf(ch)), ['via prefix']);
  });

  test('payloads are snapshotted at write(); undefined becomes null; strings with line breaks survive', async () => {
    const ch = await createChannel();
    const w = deserializeSSEChannel(JSON.stringify(descriptorOf(ch)), allow);
    const obj = { step: 1 };
    const a = w.write(obj);
    obj.step = 2;
    const b = w.write(undefined);
    const c = w.write('line 1\nline 2\r\n"quoted" 中文 🎉');
    await Promise.all([a, b, c, w.end()]);
    const events = await eventsOf(ch);
    assert.deepEqual(messagesOf(events), [{ step: 1 }, null, 'line 1\nline 2\r\n"quoted" 中文 🎉']);
    assert.deepEqual(events.at(-1), { id: 4, event: 'end', data: null });
  });
});

describe('retries never duplicate', () => {
  test('the first answer is lost after the relay stored it: the retry is answered from memory', async () => {
    const ch = await createChannel();
    const p = await proxy((_e, i) => (i === 0 ? 'drop-response' : 'forward'));
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), fastRetry({ allowedRelays: [p.url] }));
    const writes = ['a', 'b', 'c'].map((m) => w.write(m));
    await Promise.all(writes);
    await w.write('d');
    await w.end('e');
    const events = await eventsOf(ch);
    assert.deepEqual(messagesOf(events), ['a', 'b', 'c', 'd']);
    assert.deepEqual(events.map((e) => e.id), [1, 2, 3, 4, 5]);
    const [first, retry] = p.log;
    assert.equal(first.status, 200, 'the relay stored the first attempt');
    assert.ok(first.key && first.key === retry.key, 'the retry carries the same Idempotency-Key');
    assert.equal(retry.body, first.body);
    assert.equal(retry.replayed, true, 'the relay answered the retry from memory');
    const keys = p.log.map((e) => e.key);
    assert.equal(new Set(keys).size, keys.length - 1, 'every other request has its own key');
  });

  test('an answer cut off mid-body (status 200 already sent) is retried, not taken as stored-or-failed', async () => {
    const ch = await createChannel();
    const p = await proxy((e) => (e.path.endsWith('/end') && !p.log.some((x) => x.action === 'cut-response') ? 'cut-response' : 'forward'));
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), fastRetry({ allowedRelays: [p.url] }));
    await Promise.all([w.write('m'), w.end('fin')]);
    const events = await eventsOf(ch);
    assert.deepEqual(events.map((e) => [e.id, e.event, e.data]), [[1, 'message', 'm'], [2, 'end', 'fin']]);
    const ends = p.requests('end');
    assert.equal(ends.length, 2);
    assert.equal(ends[0].status, 200);
    assert.equal(ends[1].key, ends[0].key);
    assert.equal(ends[1].replayed, true, 'the retried end was answered from memory');
  });

  test('TCP: a connection cut in the middle of the request body is retried; nothing is stored twice', async () => {
    const ch = await createChannel();
    const t = await startTcpProxy(relayUrl, (n) => (n === 0 ? { cutRequestAfter: 300 } : null));
    try {
      const w = deserializeSSEChannel(descriptorOf(ch, t.url), fastRetry({ allowedRelays: [t.url] }));
      const sent = Array.from({ length: 50 }, (_, i) => ({ i, pad: 'p'.repeat(20) }));
      await Promise.all([...sent.map((m) => w.write(m)), w.end('fin')]);
      assert.equal(t.stats.faults, 1);
      const events = await eventsOf(ch);
      assert.deepEqual(messagesOf(events), sent);
      assert.deepEqual(events.at(-1), { id: 51, event: 'end', data: 'fin' });
    } finally {
      await t.close();
    }
  });

  test('TCP: the connection dies as the answer comes back (relay stored it): exactly once', async () => {
    const ch = await createChannel();
    const t = await startTcpProxy(relayUrl, (n) => (n === 0 ? 'drop-response' : null));
    try {
      const w = deserializeSSEChannel(descriptorOf(ch, t.url), fastRetry({ allowedRelays: [t.url] }));
      await Promise.all([w.write(1), w.write(2), w.write(3), w.end(4)]);
      assert.equal(t.stats.faults, 1);
      assert.match(t.stats.answers, /idempotent-replayed: true/i, 'the retry was answered from memory: the relay had stored it');
      const events = await eventsOf(ch);
      assert.deepEqual(events.map((e) => [e.id, e.event, e.data]), [[1, 'message', 1], [2, 'message', 2], [3, 'message', 3], [4, 'end', 4]]);
    } finally {
      await t.close();
    }
  });

  test('a connection killed before the relay saw the request is retried', async () => {
    const ch = await createChannel();
    const p = await proxy((_e, i) => (i < 2 ? 'reset' : 'forward'));
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), fastRetry({ allowedRelays: [p.url] }));
    await Promise.all([w.write(1), w.write(2), w.end(3)]);
    const events = await eventsOf(ch);
    assert.deepEqual(events.map((e) => [e.id, e.event, e.data]), [[1, 'message', 1], [2, 'message', 2], [3, 'end', 3]]);
    assert.equal(p.log[0].key, p.log[2].key);
  });

  test('503 and 429 answers are retried with backoff; every message is stored once', async () => {
    const ch = await createChannel();
    const p = await proxy((_e, i) => ([{ status: 503 }, { status: 429 }, { status: 500 }][i] ?? 'forward'));
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), fastRetry({ allowedRelays: [p.url] }));
    await Promise.all([w.write('x'), w.write('y'), w.end('z')]);
    const events = await eventsOf(ch);
    assert.deepEqual(events.map((e) => e.data), ['x', 'y', 'z']);
    assert.equal(new Set(p.log.slice(0, 4).map((e) => e.key)).size, 1);
  });

  test('an attempt slower than timeoutMs is aborted and retried without a duplicate', async () => {
    const ch = await createChannel();
    const p = await proxy((_e, i) => (i === 0 ? { delayMs: 1500 } : 'forward'));
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), fastRetry({ allowedRelays: [p.url], timeoutMs: 300 }));
    await w.write('once');
    await w.end();
    assert.equal(p.log[0].status, 200, 'the relay stored the slow attempt');
    await until(() => p.log[0].clientGone !== undefined);
    assert.equal(p.log[0].clientGone, true, 'the writer had given up on the slow attempt');
    assert.equal(p.log[1].key, p.log[0].key);
    const events = await eventsOf(ch);
    assert.deepEqual(messagesOf(events), ['once']);
    assert.equal(p.log[1].replayed, true);
  });

  test('RELAY_UNAVAILABLE after maxAttempts, with the same key each time; later writes go out after resume()', async () => {
    const ch = await createChannel();
    let failing = true;
    const p = await proxy(() => (failing ? { status: 503 } : 'forward'));
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), {
      allowedRelays: [p.url],
      retry: { maxAttempts: 3, minDelayMs: 5, maxDelayMs: 20 },
    });
    const err = await rejectsWith(assert, w.write('lost'), 'RELAY_UNAVAILABLE', /3 attempts.*HTTP 503/);
    assert.equal(err.name, 'SSEChannelError');
    assert.equal(p.log.length, 3);
    assert.equal(new Set(p.log.map((e) => e.key)).size, 1);
    failing = false;
    await rejectsWith(assert, w.write('halted'), 'RELAY_UNAVAILABLE', /3 attempts/);
    assert.equal(p.log.length, 3, 'a halted writer sends nothing');
    w.resume();
    await w.write('after');
    await w.end();
    assert.deepEqual(messagesOf(await eventsOf(ch)), ['after']);
  });

  test('RELAY_UNAVAILABLE when nothing listens on the allowed relay', async () => {
    const ch = await createChannel();
    const p = await startProxy();
    const deadUrl = p.url;
    await p.close(); // the port is now closed
    const w = deserializeSSEChannel(descriptorOf(ch, deadUrl), {
      allowedRelays: [deadUrl],
      retry: { maxAttempts: 2, minDelayMs: 5, maxDelayMs: 10 },
    });
    await rejectsWith(assert, w.write(1), 'RELAY_UNAVAILABLE', /network error/);
    await rejectsWith(assert, w.end(), 'RELAY_UNAVAILABLE');
  });
});

describe('error codes', () => {
  test('CHANNEL_ENDED: write and end after end(), without a request', async () => {
    const ch = await createChannel();
    const p = await proxy();
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url] });
    const ended = w.end('bye');
    assert.equal(w.ended, true);
    await rejectsWith(assert, w.write('late'), 'CHANNEL_ENDED', /after end/);
    await rejectsWith(assert, w.end('again'), 'CHANNEL_ENDED');
    await ended;
    assert.equal(p.log.length, 1);
  });

  test('CHANNEL_ENDED from the relay when another writer ended the channel; later calls fail fast', async () => {
    const ch = await createChannel();
    const p = await proxy();
    const first = deserializeSSEChannel(descriptorOf(ch), allow);
    await first.end('by first');
    const second = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url] });
    await rejectsWith(assert, second.write('late'), 'CHANNEL_ENDED');
    await rejectsWith(assert, second.write('later'), 'CHANNEL_ENDED');
    await rejectsWith(assert, second.end(), 'CHANNEL_ENDED');
    second.resume(); // a refused channel stays refused
    await rejectsWith(assert, second.write('after resume'), 'CHANNEL_ENDED');
    assert.equal(p.log.length, 1, 'after a final refusal no more requests are sent');
  });

  test('UNAUTHORIZED for a forged token; FORBIDDEN (the relay\'s more specific code) for a subscribe token', async () => {
    const ch = await createChannel();
    const forged = { ...ch, publishToken: ch.publishToken.slice(0, -4) + (ch.publishToken.endsWith('AAAA') ? 'BBBB' : 'AAAA') };
    const w = deserializeSSEChannel(descriptorOf(forged), allow);
    await rejectsWith(assert, w.write('x'), 'UNAUTHORIZED', /HTTP 401/);
    const other = await createChannel();
    const wrongChannel = deserializeSSEChannel(descriptorOf({ ...ch, publishToken: other.publishToken }), allow);
    await rejectsWith(assert, wrongChannel.write('x'), 'UNAUTHORIZED');
    const wrongScope = deserializeSSEChannel(descriptorOf({ ...ch, publishToken: ch.subscribeToken }), allow);
    await rejectsWith(assert, wrongScope.end('x'), 'FORBIDDEN', /HTTP 403/);
  });

  test('CHANNEL_EXPIRED locally once expiresAt is past, without a request', async () => {
    const ch = await createChannel();
    const p = await proxy();
    const stale = deserializeSSEChannel({ ...descriptorOf(ch, p.url), expiresAt: Date.now() - 1000 }, { allowedRelays: [p.url] });
    await rejectsWith(assert, stale.write('x'), 'CHANNEL_EXPIRED', /expiresAt/);
    await rejectsWith(assert, stale.end(), 'CHANNEL_EXPIRED');

    const short = await createChannel({ ttlSecs: 1 });
    const w = deserializeSSEChannel(descriptorOf(short, p.url), { allowedRelays: [p.url] });
    await w.write('in time');
    await sleep(Math.max(0, short.expiresAt - Date.now()) + 100);
    await rejectsWith(assert, w.write('too late'), 'CHANNEL_EXPIRED');
    assert.equal(p.log.length, 1, 'only the write in time was sent');
  });

  test('CHANNEL_EXPIRED from the relay (410) when the channel outlived its lifetime but not its token', async () => {
    const short = await createChannel({ ttlSecs: 1 });
    // A publish token valid for an hour (minted with the relay's secret) on a channel that lives 1 s.
    const token = mintToken({ sub: short.channelId, scope: 'publish', exp: Math.floor(Date.now() / 1000) + 3600 });
    const d = { ...descriptorOf(short), publishToken: token, expiresAt: Date.now() + 3_600_000 };
    const w = deserializeSSEChannel(d, allow);
    await w.write('in time');
    await sleep(Math.max(0, short.expiresAt - Date.now()) + 200);
    await rejectsWith(assert, w.write('too late'), 'CHANNEL_EXPIRED', /HTTP 410/);
    await rejectsWith(assert, w.end(), 'CHANNEL_EXPIRED');
  });

  test('an expired token on a descriptor that claims a later expiry is the relay\'s CHANNEL_EXPIRED (its tokens expire with it)', async () => {
    const short = await createChannel({ ttlSecs: 1 });
    const w = deserializeSSEChannel({ ...descriptorOf(short), expiresAt: Date.now() + 3_600_000 }, allow);
    await sleep(Math.max(0, short.expiresAt - Date.now()) + 1100); // the token's exp has second precision
    await rejectsWith(assert, w.write('x'), 'CHANNEL_EXPIRED', /HTTP 410/);
    await rejectsWith(assert, w.end(), 'CHANNEL_EXPIRED', /HTTP 410/);
  });

  test('MESSAGE_TOO_LARGE locally over maxMessageBytes (UTF-8 size), and from the relay (413)', async () => {
    const ch = await createChannel();
    const p = await proxy();
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url], maxMessageBytes: 100 });
    await rejectsWith(assert, w.write('x'.repeat(99)), 'MESSAGE_TOO_LARGE', /maxMessageBytes/); // 101 bytes of JSON
    await rejectsWith(assert, w.write('é'.repeat(50)), 'MESSAGE_TOO_LARGE'); // 50 units, 102 bytes
    await w.write('x'.repeat(98)); // exactly 100 bytes
    await rejectsWith(assert, w.end('€'.repeat(40)), 'MESSAGE_TOO_LARGE'); // 122 bytes
    assert.equal(w.ended, false, 'a refused end() does not end the writer');
    const dflt = deserializeSSEChannel(descriptorOf(ch), allow);
    await rejectsWith(assert, dflt.write('y'.repeat(64 * 1024)), 'MESSAGE_TOO_LARGE', /65536/);
    assert.equal(p.requests('messages').length, 1);

    // The writer allows more than the relay does: the relay's 413 maps to the same code.
    const loose = deserializeSSEChannel(descriptorOf(ch), { ...allow, maxMessageBytes: 200_000 });
    await rejectsWith(assert, loose.write('z'.repeat(100_000)), 'MESSAGE_TOO_LARGE', /HTTP 413/);
    await rejectsWith(assert, loose.write('halted'), 'MESSAGE_TOO_LARGE', /HTTP 413/);
    loose.resume();
    await loose.write('small still works');
    await loose.end();
    assert.deepEqual(messagesOf(await eventsOf(ch)), ['x'.repeat(98), 'small still works']);
  });

  test('relay answers map to codes by status, keeping the relay\'s code when it is more specific', async () => {
    const cases = [
      [{ status: 401, raw: '' }, 'UNAUTHORIZED'],
      [{ status: 403, raw: 'Forbidden' }, 'UNAUTHORIZED'],
      [{ status: 403, code: 'FORBIDDEN' }, 'FORBIDDEN'],
      [{ status: 403, code: 'NOT_A_CODE' }, 'UNAUTHORIZED'],
      [{ status: 404, code: 'CHANNEL_NOT_FOUND' }, 'CHANNEL_NOT_FOUND'],
      [{ status: 409, raw: '<html>' }, 'CHANNEL_ENDED'],
      [{ status: 410, code: 'CHANNEL_EXPIRED' }, 'CHANNEL_EXPIRED'],
      [{ status: 410, raw: '' }, 'CHANNEL_EXPIRED'],
      [{ status: 413, raw: 'too big' }, 'MESSAGE_TOO_LARGE'],
      [{ status: 400, code: 'BAD_REQUEST' }, 'BAD_REQUEST'],
      [{ status: 302, raw: '' }, 'RELAY_UNAVAILABLE'],
    ];
    for (const [answer, code] of cases) {
      const p = await proxy(() => answer);
      const w = deserializeSSEChannel(
        descriptorOf({ channelId: '0123456789abcdef0123456789abcdef', publishToken: 'a.b.c', expiresAt: Date.now() + 60000 }, p.url),
        { allowedRelays: [p.url] },
      );
      await rejectsWith(assert, w.write('x'), code);
      assert.equal(p.log.length, 1, `${answer.status} is not retried`);
    }
  });

  test('BAD_REQUEST for a payload JSON cannot represent', async () => {
    const ch = await createChannel();
    const w = deserializeSSEChannel(descriptorOf(ch), allow);
    await rejectsWith(assert, w.write(10n), 'BAD_REQUEST', /JSON/);
    const cyclic = {};
    cyclic.self = cyclic;
    await rejectsWith(assert, w.write(cyclic), 'BAD_REQUEST');
    await w.end('still fine');
  });

  test('INVALID_DESCRIPTOR names the field at fault', () => {
    const good = {
      type: 'SSEChannel', version: 1, relay: relayUrl,
      channelId: '0123456789abcdef0123456789abcdef', publishToken: 'a.b.c', expiresAt: Date.now() + 60000,
    };
    const cases = [
      [undefined, /descriptor/],
      [null, /descriptor/],
      [42, /descriptor/],
      [[good], /descriptor/],
      ['{not json', /JSON/],
      [{ ...good, type: 'Other' }, /`type`/],
      [{ ...good, type: undefined }, /`type`/],
      [{ ...good, version: 2 }, /`version`/],
      [{ ...good, version: '1' }, /`version`/],
      [{ ...good, relay: 42 }, /`relay`/],
      [{ ...good, relay: 'ftp://127.0.0.1' }, /`relay`/],
      [{ ...good, relay: relayUrl + '/?x=1' }, /`relay`/],
      [{ ...good, relay: relayUrl + '#f' }, /`relay`/],
      [{ ...good, channelId: '0123456789ABCDEF0123456789ABCDEF' }, /`channelId`/],
      [{ ...good, channelId: '../../admin' }, /`channelId`/],
      [{ ...good, publishToken: '' }, /`publishToken`/],
      [{ ...good, publishToken: 'a b\r\nX-Evil: 1' }, /`publishToken`/],
      [{ ...good, expiresAt: '2030' }, /`expiresAt`/],
      [{ ...good, expiresAt: 1.5 }, /`expiresAt`/],
      [{ ...good, expiresAt: -1 }, /`expiresAt`/],
    ];
    for (const [d, re] of cases) {
      throwsWith(assert, () => deserializeSSEChannel(d, allow), 'INVALID_DESCRIPTOR', re);
    }
    assert.ok(deserializeSSEChannel(good, allow));
    assert.ok(deserializeSSEChannel({ toJSON: () => good }, allow), 'an object with toJSON() is read like JSON.stringify would');
  });

  test('INVALID_OPTIONS for malformed options', () => {
    const d = { type: 'SSEChannel', version: 1, relay: relayUrl, channelId: '0123456789abcdef0123456789abcdef', publishToken: 't', expiresAt: Date.now() + 60000 };
    const cases = [
      ['nope', /object/],
      [{ allowedRelays: 42 }, /allowedRelays/],
      [{ allowedRelays: [42] }, /allowedRelays/],
      [{ allowedRelays: ['not a url'] }, /allowedRelays/],
      [{ allowedRelays: ['*'] }, /"\*" is not accepted/],
      [{ ...allow, maxMessageBytes: 0 }, /maxMessageBytes/],
      [{ ...allow, maxMessageBytes: 2 * 1024 * 1024 }, /maxMessageBytes/],
      [{ ...allow, maxBodyBytes: 1000 }, /maxBodyBytes/],
      [{ ...allow, maxBatchMessages: 1.5 }, /maxBatchMessages/],
      [{ ...allow, timeoutMs: -5 }, /timeoutMs/],
      [{ ...allow, maxQueued: 0 }, /maxQueued/],
      [{ ...allow, maxQueued: '10' }, /maxQueued/],
      [{ ...allow, retry: 3 }, /retry/],
      [{ ...allow, retry: { maxAttempts: 0 } }, /maxAttempts/],
      [{ ...allow, retry: { minDelayMs: 100, maxDelayMs: 10 } }, /maxDelayMs/],
    ];
    for (const [o, re] of cases) throwsWith(assert, () => deserializeSSEChannel(d, o), 'INVALID_OPTIONS', re);
  });
});

describe('a failed request halts the writer; bounds', () => {
  test('exact sequence: the failed batch, the calls queued behind it and every later call reject with one error until resume()', async () => {
    const ch = await createChannel();
    let failing = false;
    const p = await proxy(() => (failing ? { status: 503 } : 'forward'));
    // A long enough pause between the two attempts that calls can be queued behind the first batch.
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), {
      allowedRelays: [p.url],
      retry: { maxAttempts: 2, minDelayMs: 300, maxDelayMs: 300 },
    });
    await w.write('before');
    failing = true;
    const lost = w.write('lost');
    await until(() => p.log.length === 2, 10_000);
    const behind = w.write('behind');
    const endBehind = w.end('end behind');
    const first = await rejectsWith(assert, lost, 'RELAY_UNAVAILABLE', /2 attempts.*HTTP 503/);
    for (const call of [behind, endBehind]) {
      const e = await rejectsWith(assert, call, 'RELAY_UNAVAILABLE');
      assert.equal(e.message, first.message);
    }
    assert.equal(w.ended, false, 'the refused end() did not end the writer');
    assert.deepEqual(p.log.map(bodyOf), [['before'], ['lost'], ['lost']], 'nothing behind the failed batch was sent');

    // The relay works again, but the writer waits for the function's decision.
    failing = false;
    for (const call of [() => w.write('later'), () => w.end('later end')]) {
      const e = await rejectsWith(assert, call(), 'RELAY_UNAVAILABLE');
      assert.equal(e.message, first.message);
    }
    assert.equal(p.log.length, 3, 'a halted writer sends nothing');

    w.resume();
    await w.write('after');
    await w.end('done');
    const events = await eventsOf(ch);
    assert.deepEqual(messagesOf(events), ['before', 'after']);
    assert.deepEqual(events.map((e) => [e.id, e.event]), [[1, 'message'], [2, 'message'], [3, 'end']]);
    assert.equal(events[2].data, 'done');
  });

  test('a failed end() halts the writer too; after resume() end() may be called again', async () => {
    const ch = await createChannel();
    let failing = true;
    const p = await proxy(() => (failing ? { status: 503 } : 'forward'));
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url], retry: { maxAttempts: 1 } });
    await rejectsWith(assert, w.end('first try'), 'RELAY_UNAVAILABLE', /after 1 attempt; last: HTTP 503/);
    assert.equal(w.ended, false);
    failing = false;
    await rejectsWith(assert, w.end('halted'), 'RELAY_UNAVAILABLE');
    assert.equal(p.log.length, 1);
    w.resume();
    await w.end('second try');
    assert.equal(w.ended, true);
    const events = await eventsOf(ch);
    assert.deepEqual(events.map((e) => [e.event, e.data]), [['end', 'second try']]);
  });

  test('maxQueued: a write beyond it rejects QUEUE_FULL and halts the writer; what was queued still goes out', async () => {
    const ch = await createChannel();
    let release;
    const held = new Promise((resolve) => (release = resolve));
    const p = await proxy((entry, i) => (i === 0 ? { waitFor: held } : 'forward'));
    const w = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url], maxQueued: 3 });
    const first = w.write(1); // in flight, its answer held by the proxy
    await until(() => p.log.length === 1, 10_000);
    const queued = [w.write(2), w.write(3)]; // three waiting: the limit
    await rejectsWith(assert, w.write(4), 'QUEUE_FULL', /maxQueued \(3\)/);
    release();
    await Promise.all([first, ...queued]);
    // The relay caught up, but 4 is missing: 5 would arrive right after 3.
    await rejectsWith(assert, w.write(5), 'QUEUE_FULL');
    w.resume();
    await w.write(6);
    await w.end();
    assert.deepEqual(messagesOf(await eventsOf(ch)), [1, 2, 3, 6]);
  });

  test('writer ids come from a cryptographic generator: two writers made while Math.random repeats itself both get through', async () => {
    const ch = await createChannel();
    const p = await proxy();
    const random = Math.random;
    let a;
    let b;
    Math.random = () => 0.5;
    try {
      a = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url] });
      b = deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url] });
    } finally {
      Math.random = random;
    }
    await a.write('from a');
    await b.write('from b');
    await b.end();
    assert.deepEqual(messagesOf(await eventsOf(ch)), ['from a', 'from b'], 'neither request was taken for a replay');
    assert.notEqual(p.log[0].key, p.log[1].key);
    assert.match(p.log[0].key, /^[0-9a-f-]{36}-1$/);
  });

  test('relay answers are read up to 16 KiB: an endless error body still gives its code, at once', async () => {
    const p = await proxy(() => ({
      status: 400,
      stream: JSON.stringify({ error: { code: 'BAD_REQUEST', message: 'the head of an endless body' } }),
    }));
    const w = deserializeSSEChannel(
      descriptorOf({ channelId: '0123456789abcdef0123456789abcdef', publishToken: 'a.b.c', expiresAt: Date.now() + 60000 }, p.url),
      { allowedRelays: [p.url], timeoutMs: 30_000, retry: { maxAttempts: 1 } },
    );
    await rejectsWith(assert, w.write('x'), 'BAD_REQUEST', /HTTP 400.*the head of an endless body/);
    assert.ok(await until(() => p.log[0].clientClosed, 10_000), 'the writer closed the endless answer');
  });

  test('an endless 200 answer counts as stored once 16 KiB are read', async () => {
    const p = await proxy(() => ({ status: 200, stream: '{}' }));
    const w = deserializeSSEChannel(
      descriptorOf({ channelId: '0123456789abcdef0123456789abcdef', publishToken: 'a.b.c', expiresAt: Date.now() + 60000 }, p.url),
      { allowedRelays: [p.url], timeoutMs: 30_000, retry: { maxAttempts: 1 } },
    );
    await w.write('x');
    assert.equal(p.log.length, 1);
    assert.ok(await until(() => p.log[0].clientClosed, 10_000), 'the writer closed the endless answer');
  });
});

describe('relay allow-list', () => {
  const d = (relay) => ({
    type: 'SSEChannel', version: 1, relay,
    channelId: '0123456789abcdef0123456789abcdef', publishToken: 'a.b.c', expiresAt: Date.now() + 60000,
  });

  test('without an allow-list every relay is refused, naming both settings', () => {
    delete process.env.SSE_CHANNEL_ALLOWED_RELAYS;
    throwsWith(assert, () => deserializeSSEChannel(d(relayUrl)), 'RELAY_NOT_ALLOWED', /allowedRelays.*SSE_CHANNEL_ALLOWED_RELAYS/);
    throwsWith(assert, () => deserializeSSEChannel(d(relayUrl), {}), 'RELAY_NOT_ALLOWED', /allowedRelays/);
  });

  test('SSE_CHANNEL_ALLOWED_RELAYS (comma-separated) is the default; the option overrides it', async () => {
    const ch = await createChannel();
    process.env.SSE_CHANNEL_ALLOWED_RELAYS = ` https://other.example , ${relayUrl}/ `;
    try {
      const w = deserializeSSEChannel(descriptorOf(ch));
      await w.write('via env');
      await w.end();
      assert.deepEqual(messagesOf(await eventsOf(ch)), ['via env']);
      // The option replaces the variable, so the message names the option alone.
      throwsWith(assert, () => deserializeSSEChannel(descriptorOf(ch), { allowedRelays: ['https://other.example'] }), 'RELAY_NOT_ALLOWED', /not listed in option `allowedRelays`$/);
      process.env.SSE_CHANNEL_ALLOWED_RELAYS = '*';
      throwsWith(assert, () => deserializeSSEChannel(descriptorOf(ch)), 'INVALID_OPTIONS', /SSE_CHANNEL_ALLOWED_RELAYS/);
    } finally {
      delete process.env.SSE_CHANNEL_ALLOWED_RELAYS;
    }
  });

  test('other ports, schemes, hosts and URL tricks are refused before any request', async () => {
    const p = await proxy();
    const origin = new URL(p.url);
    const port = origin.port;
    const refused = {
      RELAY_NOT_ALLOWED: [
        `http://127.0.0.1:${Number(port) + 1}`,
        `https://127.0.0.1:${port}`,
        `http://localhost:${port}`,
        `http://127.0.0.2:${port}`,
        `http://127.0.0.1.nip.io:${port}`,
        `http://127.0.0.1`,
        `http://[::1]:${port}`,
        `http://2130706433:${port}`,
      ],
      INVALID_DESCRIPTOR: [
        `http://evil@127.0.0.1:${port}`,
        `http://127.0.0.1:${port}@evil.example`,
        `http://127.0.0.1:${port}\\@evil.example`,
        `http://127.0.0.1:${port}?@evil.example`,
        `http://127.0.0.1:${port}#@evil.example`,
        ` http://127.0.0.1:${port}`,
        `http://127.0.0.1:${port}%2F@evil.example`,
        `//127.0.0.1:${port}`,
        `file:///etc/passwd`,
        `javascript:alert(1)`,
        `http://127.0.0.1:0${port}0`,
        `http://127.0.0.1:99999`,
      ],
    };
    for (const [code, urls] of Object.entries(refused)) {
      for (const relay of urls) {
        throwsWith(assert, () => deserializeSSEChannel(d(relay), { allowedRelays: [p.url] }), code);
      }
    }
    assert.equal(p.log.length, 0, 'no refused descriptor produced a request');
  });

  test('the same origin in another spelling, or with a path prefix, is allowed', () => {
    const port = new URL(relayUrl).port;
    for (const relay of [`HTTP://127.0.0.1:${port}`, `http://127.0.0.1:${port}/`, `http://127.0.0.1:${port}/prefix/v`]) {
      assert.ok(deserializeSSEChannel(d(relay), { allowedRelays: [`http://127.0.0.1:${port}/`] }));
    }
    assert.ok(deserializeSSEChannel(d('https://relay.example.com:443/x'), { allowedRelays: ['https://RELAY.example.com'] }));
    assert.ok(deserializeSSEChannel(d('http://relay.example.com'), { allowedRelays: 'http://relay.example.com:80' }));
  });
});
