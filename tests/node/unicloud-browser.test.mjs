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
