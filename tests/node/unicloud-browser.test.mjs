// Both halves of uniCloud's SSEChannel docs, unchanged, in headless Chromium and Node: the client example
// runs in a page on the package's web build after installUniCloud(uniCloud, { relay }); its callFunction
// reaches this process, which runs the docs' cloud-function example on the Node build, against a real relay.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { relayUrl, loadSdk } from './helpers.mjs';

const require = createRequire(import.meta.url);
const pkgDir = process.env.SSE_CHANNEL_PKG_DIR || dirname(process.env.SSE_CHANNEL_NODE_MODULE || '');
const webEntry = join(pkgDir, 'index.js');
const skip = existsSync(webEntry) ? false : `no web build at ${webEntry} (run through scripts/test-node.sh)`;

// The client example is TypeScript-flavoured (uni-app x). Erase exactly its type annotations, as tsc
// would; every erasure must match, so the fixture cannot drift from the docs unnoticed.
function eraseTypes(source) {
  const erasures = [
    [/\(message\?: any \| null\)/g, '(message)', 2],
    [/\(error: UniCloudError\)/g, '(error)', 1],
    [/\(message as string\)/g, '(message)', 1],
  ];
  let out = source;
  for (const [re, by, count] of erasures) {
    assert.equal((out.match(re) ?? []).length, count, `annotation ${re} in the client example`);
    out = out.replace(re, by);
  }
  return out;
}

const clientExample = eraseTypes(readFileSync(new URL('./fixtures/client/receiveMessage.uts', import.meta.url), 'utf8'));
const cloudFunction = new URL('./fixtures/cloudfunctions/sse/index.js', import.meta.url).pathname;

let server;
let pageUrl;
let browser;
const calls = [];

before(async () => {
  if (skip) return;
  // The cloud side: the docs' function, with uniCloud.deserializeSSEChannel from the Node build.
  globalThis.uniCloud = {};
  loadSdk().installUniCloud(globalThis.uniCloud, { allowedRelays: [relayUrl] });
  const functions = { sse: require(cloudFunction) };

  server = http.createServer(async (req, res) => {
    try {
      if (req.method === 'POST' && req.url === '/callFunction') {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        // uniCloud sends JSON.stringify({ functionTarget, functionArgs }); the function gets functionArgs.
        const { functionTarget, functionArgs } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        calls.push({ functionTarget, functionArgs });
        const result = await functions[functionTarget].main(functionArgs, {});
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ result }));
        return;
      }
      if (req.url === '/blank') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<!doctype html><meta charset="utf-8"><title>blank</title>');
        return;
      }
      if (req.url === '/' || req.url.startsWith('/?')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(page);
        return;
      }
      if (req.url.startsWith('/pkg/')) {
        const file = normalize(join(pkgDir, req.url.slice(5)));
        if (file.startsWith(pkgDir) && existsSync(file)) {
          const type = file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
          res.writeHead(200, { 'content-type': type });
          res.end(readFileSync(file));
          return;
        }
      }
      res.writeHead(404).end();
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e?.stack ?? e));
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  pageUrl = `http://127.0.0.1:${server.address().port}/`;
  const { chromium } = require('playwright-core');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
  delete globalThis.uniCloud;
});

const page = (() => {
  return `<!doctype html><meta charset="utf-8"><title>uniCloud example</title>
<script type="module">
import { installUniCloud } from '/pkg/index.js';
// A uniCloud stand-in whose callFunction reaches the test's Node process the way uniCloud's does.
window.uniCloud = {
  async callFunction({ name, data }) {
    const r = await fetch('/callFunction', { method: 'POST', body: JSON.stringify({ functionTarget: name, functionArgs: data }) });
    if (!r.ok) throw new Error('callFunction: HTTP ' + r.status + ' ' + await r.text());
    return r.json();
  },
};
const params = new URLSearchParams(location.search);
installUniCloud(uniCloud, { relay: ${JSON.stringify(relayUrl)}, transport: params.get('transport') });
// ---- the docs' client example (type annotations erased) ----
${clientExample}
// ----
receiveMessage().then(() => console.log('__done'), (e) => console.log('__failed ' + e.code + ' ' + e.message));
</script>`;
})();

for (const transport of ['websocket', 'eventsource']) {
  test(`the docs' client and cloud-function examples run unchanged (${transport})`, { skip, timeout: 60000 }, async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    const logs = [];
    let done;
    const finished = new Promise((resolve) => (done = resolve));
    // callFunction may return before or after the browser sees `end`: wait for both.
    const check = () => {
      if ((logs.includes('__done') && logs.includes('sseChannel close')) || logs.some((l) => /^(__failed|pageerror)/.test(l))) done();
    };
    tab.on('console', (m) => { logs.push(m.text()); check(); });
    tab.on('pageerror', (e) => { logs.push('pageerror ' + e.message); check(); });
    const before = calls.length;
    await tab.goto(`${pageUrl}?transport=${transport}`);
    let timer;
    await Promise.race([finished, new Promise((r) => (timer = setTimeout(r, 30000)))]);
    clearTimeout(timer);
    await context.close();

    const events = logs.filter((l) => /^(sseChannel |message: |end: |__failed|pageerror)/.test(l));
    assert.deepEqual(
      events,
      ['sseChannel open', 'message: message1', 'message: message2', 'end: null', 'sseChannel close'],
      `console of the page:\n${logs.join('\n')}`,
    );
    assert.ok(logs.includes('__done'), 'receiveMessage() resolved');
    // What the function received: the channel's descriptor, via toJSON(), with no subscribe token.
    const call = calls[before];
    assert.equal(call.functionTarget, 'sse');
    const d = call.functionArgs.sseChannel;
    assert.deepEqual(Object.keys(d).sort(), ['channelId', 'expiresAt', 'publishToken', 'relay', 'type', 'version']);
    assert.equal(d.type, 'SSEChannel');
    assert.equal(d.relay, relayUrl);
  });
}

// The browser build's installUniCloud and the listener aliases are the package's JavaScript
// (pkg-template/build/facade.js), not wasm exports: checked here on the built index.js and slim.js.
test('browser build: installUniCloud checks, codes and all-or-nothing; the listener aliases', { skip, timeout: 60000 }, async () => {
  const context = await browser.newContext();
  try {
    const tab = await context.newPage();
    await tab.goto(`${pageUrl}blank`);
    const r = await tab.evaluate(async (relay) => {
      const out = {};
      for (const entry of ['index.js', 'slim.js']) {
        const m = await import(`/pkg/${entry}`);
        if (entry === 'slim.js') await m.default({ module_or_path: '/pkg/sse_channel_bg.wasm' });
        const { installUniCloud, SSEChannel } = m;
        const thrown = (f) => {
          try {
            f();
            return null;
          } catch (e) {
            return { name: e.name, code: e.code, isError: e instanceof Error, message: e.message };
          }
        };
        const r = {};
        r.notObject = thrown(() => installUniCloud(undefined, {}));
        r.nullObject = thrown(() => installUniCloud(null));
        r.badOptions = thrown(() => installUniCloud({}, 'x'));
        const untouched = { marker: 1 };
        r.badRelay = thrown(() => installUniCloud(untouched, { relay: 'ftp://x' }));
        r.badTransport = thrown(() => installUniCloud(untouched, { relay, transport: 'carrier pigeon' }));
        r.untouchedKeys = Object.keys(untouched);
        r.frozen = thrown(() => installUniCloud(Object.freeze({ callFunction() {} }), { relay }));
        const readOnly = {};
        const old = () => 'theirs';
        Object.defineProperty(readOnly, 'SSEChannel', { value: old, writable: false });
        r.readOnly = thrown(() => installUniCloud(readOnly, { relay }));
        r.readOnlyKept = readOnly.SSEChannel === old;
        r.setterIgnores = thrown(() => installUniCloud({ set SSEChannel(_) {}, get SSEChannel() { return undefined; } }, { relay }));
        // The class is not configured by a failed install: a channel without a relay still refuses open().
        r.unconfigured = await new SSEChannel().open().then(() => 'resolved', (e) => e.code);
        const uni = { callFunction() {} };
        r.returnsIt = installUniCloud(uni, { relay, transport: 'eventsource' }) === uni;
        r.installedClass = uni.SSEChannel === SSEChannel;
        r.funcUniCloud = thrown(() => installUniCloud(function uniCloud() {}, { relay }));
        // Configured: the relay and transport became the defaults.
        const configured = new uni.SSEChannel();
        await configured.open();
        r.configured = { transport: configured.transport, state: configured.state };
        configured.close();

        // addListener / removeListener / removeAllListener: the same methods as on / off / removeAllListeners.
        const seen = [];
        const a = (s) => seen.push(`a:${s.from}>${s.to}`);
        const b = () => seen.push('b');
        const ch = new SSEChannel({ relay });
        ch.addListener('state', a);
        ch.addListener('close', b);
        ch.removeListener('close', b);
        ch.close();
        const ch2 = new SSEChannel({ relay });
        ch2.on('close', () => seen.push('c'));
        ch2.addListener('state', () => seen.push('d'));
        ch2.removeAllListener('state');
        ch2.close();
        r.seen = seen;
        r.sameMethods = [
          SSEChannel.prototype.addListener === SSEChannel.prototype.on,
          SSEChannel.prototype.removeListener === SSEChannel.prototype.off,
          SSEChannel.prototype.removeAllListener === SSEChannel.prototype.removeAllListeners,
        ];
        out[entry] = r;
      }
      return out;
    }, relayUrl);
    for (const entry of ['index.js', 'slim.js']) {
      const e = r[entry];
      const coded = (what, code, re) => {
        assert.ok(e[what], `${entry} ${what}: did not throw`);
        assert.deepEqual({ name: e[what].name, code: e[what].code, isError: e[what].isError }, { name: 'SSEChannelError', code, isError: true }, `${entry} ${what}`);
        assert.match(e[what].message, re, `${entry} ${what}`);
      };
      coded('notObject', 'INVALID_OPTIONS', /uniCloud must be the uniCloud object/);
      coded('nullObject', 'INVALID_OPTIONS', /uniCloud must be the uniCloud object/);
      coded('badOptions', 'INVALID_OPTIONS', /options must be an object/);
      coded('badRelay', 'INVALID_OPTIONS', /relay/);
      coded('badTransport', 'INVALID_OPTIONS', /transport/);
      assert.deepEqual(e.untouchedKeys, ['marker'], `${entry}: a refused install sets nothing`);
      coded('frozen', 'UNICLOUD_INSTALL_FAILED', /uniCloud\.SSEChannel could not be set/);
      coded('readOnly', 'UNICLOUD_INSTALL_FAILED', /read-only/);
      assert.equal(e.readOnlyKept, true);
      coded('setterIgnores', 'UNICLOUD_INSTALL_FAILED', /could not be set/);
      assert.equal(e.unconfigured, 'INVALID_OPTIONS', `${entry}: failed installs configured nothing`);
      assert.equal(e.returnsIt, true);
      assert.equal(e.installedClass, true);
      assert.equal(e.funcUniCloud, null, `${entry}: a function is accepted as uniCloud`);
      assert.deepEqual(e.configured, { transport: 'eventsource', state: 'open' }, `${entry}: the options became the defaults`);
      assert.deepEqual(e.seen, ['a:idle>closed', 'c'], `${entry}: the aliases add and remove`);
      assert.deepEqual(e.sameMethods, [true, true, true]);
    }
  } finally {
    await context.close();
  }
});
