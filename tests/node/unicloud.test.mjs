// installUniCloud: the cloud-function example of uniCloud's SSEChannel docs runs unchanged against a real relay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { relayUrl, loadSdk, createChannel, descriptorOf, eventsOf, startProxy, throwsWith } from './helpers.mjs';

const sdk = loadSdk();
const require = createRequire(import.meta.url);
const examplePath = new URL('./fixtures/cloudfunctions/sse/index.js', import.meta.url).pathname;

test('the uniCloud docs\' cloud-function example runs verbatim', async () => {
  // The example is the docs' code, character for character (it refers to the global `uniCloud`).
  assert.match(readFileSync(examplePath, 'utf8'), /uniCloud\.deserializeSSEChannel\(sseChannelObj\)/);
  globalThis.uniCloud = { callFunction() { throw new Error('not used here'); } };
  try {
    const returned = sdk.installUniCloud(globalThis.uniCloud, { allowedRelays: [relayUrl] });
    assert.equal(returned, globalThis.uniCloud);
    assert.equal(typeof uniCloud.deserializeSSEChannel, 'function');
    // SSEChannel is the browser build's (its installUniCloud sets it): the Node build has the writer only.
    // Its SSEChannel export is a stub (importable for server-side rendering) that throws when used.
    assert.equal(uniCloud.SSEChannel, undefined);
    assert.equal(typeof sdk.SSEChannel, 'function');
    const e = throwsWith(assert, () => new sdk.SSEChannel(), 'UNSUPPORTED_ENVIRONMENT', /SSEChannel runs in browsers.*deserializeSSEChannel/);
    assert.equal(e.name, 'SSEChannelError');
    assert.ok(e instanceof Error);
    throwsWith(assert, () => sdk.SSEChannel.configure({ relay: relayUrl }), 'UNSUPPORTED_ENVIRONMENT');

    const ch = await createChannel();
    // What callFunction delivers: the JSON round trip of the browser's sseChannel.toJSON().
    const event = JSON.parse(JSON.stringify({ sseChannel: descriptorOf(ch) }));
    const { main } = require(examplePath);
    const result = await main(event, {});
    assert.deepEqual(result, { errCode: 0 });
    const events = await eventsOf(ch);
    assert.deepEqual(events, [
      { id: 1, event: 'message', data: 'message1' },
      { id: 2, event: 'message', data: 'message2' },
      { id: 3, event: 'end', data: null },
    ]);
  } finally {
    delete globalThis.uniCloud;
  }
});

test('installUniCloud allows the origin of `relay` by default; per-call options override', async () => {
  const uniCloud = {};
  sdk.installUniCloud(uniCloud, { relay: relayUrl + '/' });
  const ch = await createChannel();
  const w = uniCloud.deserializeSSEChannel(JSON.stringify(descriptorOf(ch)));
  await w.write({ step: 1 });
  await w.end({ done: true });
  assert.deepEqual((await eventsOf(ch)).map((e) => e.data), [{ step: 1 }, { done: true }]);

  const p = await startProxy();
  try {
    throwsWith(assert, () => uniCloud.deserializeSSEChannel(descriptorOf(ch, p.url)), 'RELAY_NOT_ALLOWED', /not listed in installUniCloud's `allowedRelays` \(or the origin of its `relay`\)$/);
    const w2 = uniCloud.deserializeSSEChannel(descriptorOf(ch, p.url), { allowedRelays: [p.url] });
    assert.equal(w2.channelId, ch.channelId);
  } finally {
    await p.close();
  }
});

test('an explicit allowedRelays wins over `relay`; without either the env variable applies', () => {
  const d = descriptorOf({ channelId: '0123456789abcdef0123456789abcdef', publishToken: 'a.b.c', expiresAt: Date.now() + 60000 });
  const a = {};
  sdk.installUniCloud(a, { relay: relayUrl, allowedRelays: ['https://relay.example.com'] });
  throwsWith(assert, () => a.deserializeSSEChannel(d), 'RELAY_NOT_ALLOWED', /not listed in option `allowedRelays`$/);

  const b = {};
  sdk.installUniCloud(b);
  throwsWith(assert, () => b.deserializeSSEChannel(d), 'RELAY_NOT_ALLOWED', /SSE_CHANNEL_ALLOWED_RELAYS/);
  process.env.SSE_CHANNEL_ALLOWED_RELAYS = relayUrl;
  try {
    assert.ok(b.deserializeSSEChannel(d), 'the variable is read when a descriptor arrives');
    throwsWith(assert, () => b.deserializeSSEChannel(d, 'x'), 'INVALID_OPTIONS');
  } finally {
    delete process.env.SSE_CHANNEL_ALLOWED_RELAYS;
  }
});

test('installUniCloud snapshots its options and leaves uniCloud untouched when they are bad', () => {
  const d = descriptorOf({ channelId: '0123456789abcdef0123456789abcdef', publishToken: 'a.b.c', expiresAt: Date.now() + 60000 });
  const opts = { allowedRelays: [relayUrl] };
  const u = {};
  sdk.installUniCloud(u, opts);
  opts.allowedRelays = ['https://elsewhere.example'];
  assert.ok(u.deserializeSSEChannel(d));
  const untouched = { marker: 1 };
  throwsWith(assert, () => sdk.installUniCloud(untouched, { allowedRelays: ['*'] }), 'INVALID_OPTIONS');
  throwsWith(assert, () => sdk.installUniCloud(untouched, { maxMessageBytes: 0 }), 'INVALID_OPTIONS', /maxMessageBytes/);
  assert.deepEqual(Object.keys(untouched), ['marker']);
});

test('installUniCloud refuses what is not a uniCloud object or valid options', () => {
  throwsWith(assert, () => sdk.installUniCloud(undefined, {}), 'INVALID_OPTIONS', /uniCloud/);
  throwsWith(assert, () => sdk.installUniCloud({}, 'x'), 'INVALID_OPTIONS', /options/);
  throwsWith(assert, () => sdk.installUniCloud({}, { relay: 'ftp://x' }), 'INVALID_OPTIONS', /relay/);
  throwsWith(assert, () => sdk.installUniCloud({}, { allowedRelays: ['*'] }), 'INVALID_OPTIONS', /\*/);
});

test('installUniCloud fails loudly, installing nothing, when uniCloud does not take the property', () => {
  const opts = { allowedRelays: [relayUrl] };
  const frozen = Object.freeze({ callFunction() {} });
  throwsWith(assert, () => sdk.installUniCloud(frozen, opts), 'UNICLOUD_INSTALL_FAILED', /deserializeSSEChannel/);
  const readOnly = {};
  const old = () => 'theirs';
  Object.defineProperty(readOnly, 'deserializeSSEChannel', { value: old, writable: false, enumerable: true });
  throwsWith(assert, () => sdk.installUniCloud(readOnly, opts), 'UNICLOUD_INSTALL_FAILED', /read-only/);
  assert.equal(readOnly.deserializeSSEChannel, old);
  const setterIgnores = { set deserializeSSEChannel(_) {}, get deserializeSSEChannel() { return undefined; } };
  throwsWith(assert, () => sdk.installUniCloud(setterIgnores, opts), 'UNICLOUD_INSTALL_FAILED');
});
