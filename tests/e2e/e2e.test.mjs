// End-to-end tests of the packed npm package (issues 4 and 5). Run through tests/e2e/run.sh
// (`make test-e2e`), which builds and packs pkg/, starts a real relay and sets SSE_CHANNEL_TARBALL and
// RELAY_URL. Each project is installed fresh from the tarball, with no configuration of its own:
//   plain <script type="module"> page · Vite 7 and 8 (build and dev server) · webpack 5 (defaults) ·
//   uni-app Vue 3 H5 (`uni build -p h5` and `uni -p h5`, tests/uniapp/)
// and in each the page receives every message the package's Node writer sends, over both transports
// (the plain page in Firefox too, through geckodriver: tests/e2e/lib/webdriver.mjs).
// Also: the typings type-check under a bundler's and under Node's resolution (tests/e2e/types), and
// each entry exports the other side's name as a stub that throws UNSUPPORTED_ENVIRONMENT (Node ESM
// import from the tarball, a Vite SSR build run in Node, the browser entries in Chromium).
// E2E_ONLY=plain,vite,vite8,webpack,uniapp,types limits the projects.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import {
  OUT,
  ROOT,
  TRANSPORTS,
  freePort,
  freshProject,
  enabled,
  launchBrowser,
  log,
  run,
  scenario,
  serveStatic,
  simulateOldChromium,
  startDevServer,
  runWriter,
  N_MESSAGES,
} from './lib/harness.mjs';
import { launchFirefox } from './lib/webdriver.mjs';
import { createRequire } from 'node:module';

const { messageFor } = createRequire(import.meta.url)(join(ROOT, 'tests/e2e/app/messages.cjs'));

const results = {};
let browser;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  writeFileSync(join(OUT, 'results.json'), JSON.stringify(results, null, 2) + '\n');
});

/** Total and gzip -9 bytes of the .js/.wasm files under `dir` (what a browser downloads). */
function assetBytes(dir) {
  let raw = 0;
  let gz = 0;
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(m?js|wasm)$/.test(name)) {
        const b = readFileSync(p);
        raw += b.length;
        gz += gzipSync(b, { level: 9 }).length;
      }
    }
  };
  walk(dir);
  return { raw, gzip: gz };
}

/** The scenario over both transports (the CommonJS writer on one, the ESM writer on the other). */
function bothTransports(name, urlOf, projectOf, extra = {}) {
  for (const [i, transport] of TRANSPORTS.entries()) {
    const writer = i === 0 ? 'cjs' : 'esm';
    test(`${name}: ${transport}, ${writer} writer`, { timeout: 90_000 }, async () => {
      const r = await scenario(browser, {
        url: urlOf(),
        project: projectOf(),
        transport,
        writer,
        label: `${name}-${transport}`,
        ...extra,
      });
      results[`${name} ${transport}`] = r;
    });
  }
}

/**
 * The scenario of `scenario()` in headless Firefox (firefox-esr through geckodriver, WebDriver):
 * every message once, in order, then end and close, no error event.
 */
async function firefoxScenario({ url, project, transport, writer }) {
  const relay = process.env.RELAY_URL;
  const ff = await launchFirefox();
  try {
    await ff.open(url);
    await ff.waitFor(() => !!window.__sseTest, 60_000, 'the test hooks');
    const descriptor = await ff.eval((r, t) => window.__sseTest.start(r, t), relay, transport);
    const wrote = await runWriter(project, writer, descriptor, relay);
    assert.equal(wrote.ok, true);
    await ff.waitFor(() => window.__sseTest.got().events.includes('close'), 20_000, 'close');
    const got = await ff.eval(() => window.__sseTest.got());
    assert.deepEqual(got.errors, [], 'error events');
    const expected = Array.from({ length: N_MESSAGES }, (_, i) => messageFor(i));
    assert.deepEqual(got.messages, expected, 'every message, in order, once');
    assert.deepEqual(got.end, { done: true, n: N_MESSAGES });
    assert.deepEqual(got.events, ['open', ...expected.map(() => 'message'), 'end', 'close']);
    assert.equal(got.className, 'SSEChannel');
    log(`[plain-firefox-${transport}] ok in Firefox ${ff.version}: ${got.messages.length} messages + end, open() ${got.openMs.toFixed(1)} ms`);
    return { openMs: got.openMs, firefox: ff.version };
  } finally {
    await ff.close();
  }
}

describe('plain <script type="module"> page', { skip: !enabled('plain') }, () => {
  let dir;
  let server;
  before(async () => {
    dir = freshProject('plain', join(ROOT, 'tests/e2e/plain'));
    server = await serveStatic(dir);
  });
  after(() => server?.close());
  bothTransports('plain', () => `${server.url}/index.html`, () => dir, { expectClass: 'SSEChannel' });
  for (const [i, transport] of TRANSPORTS.entries()) {
    const writer = i === 0 ? 'cjs' : 'esm';
    test(`plain in Firefox: ${transport}, ${writer} writer`, { timeout: 120_000 }, async () => {
      results[`plain firefox ${transport}`] = await firefoxScenario({ url: `${server.url}/index.html`, project: dir, transport, writer });
    });
  }
  test('plain: older Chromium (sync compile > 4 KB refused): falls back to async, still works', { timeout: 90_000 }, async () => {
    results['plain old-chromium websocket'] = await scenario(browser, {
      url: `${server.url}/index.html`,
      project: dir,
      transport: 'websocket',
      label: 'plain-old-chromium',
      oldChromium: true,
      expectClass: 'Pending', // the stand-in that queues calls until the async compile is done
    });
  });
  test('plain: slim entry (`await init()`, the .wasm by URL)', { timeout: 90_000 }, async () => {
    results['plain slim websocket'] = await scenario(browser, {
      url: `${server.url}/slim.html`,
      project: dir,
      transport: 'websocket',
      label: 'plain-slim',
    });
  });
  for (const oldChromium of [false, true]) {
    test(`plain: installUniCloud, then \`new uniCloud.SSEChannel()\` with the configured relay${oldChromium ? ' (older Chromium)' : ''}`, { timeout: 90_000 }, async () => {
      await scenario(browser, {
        url: `${server.url}/unicloud.html?relay=${encodeURIComponent(process.env.RELAY_URL)}`,
        project: dir,
        transport: 'eventsource',
        writer: 'esm',
        label: `plain-unicloud${oldChromium ? '-old-chromium' : ''}`,
        oldChromium,
      });
    });
  }
  for (const oldChromium of [false, true]) {
    test(`plain: toJSON() before open() throws INVALID_STATE${oldChromium ? ' (older Chromium: the stand-in)' : ''}`, async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        if (oldChromium) await page.addInitScript(simulateOldChromium);
        await page.goto(`${server.url}/index.html`);
        await page.waitForFunction(() => window.__sseTest);
        const r = await page.evaluate((relay) => {
          const ch = new window.__sseTest.SSEChannel({ relay });
          try {
            JSON.stringify(ch);
            return { className: ch.constructor.name, code: null };
          } catch (e) {
            return { className: ch.constructor.name, code: e.code };
          }
        }, process.env.RELAY_URL);
        assert.deepEqual(r, { className: oldChromium ? 'Pending' : 'SSEChannel', code: 'INVALID_STATE' });
      } finally {
        await context.close();
      }
    });
  }
  test('plain: the browser entries export deserializeSSEChannel, which throws UNSUPPORTED_ENVIRONMENT', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/index.html`);
      await page.waitForFunction(() => window.__sseTest);
      const r = await page.evaluate(async () => {
        const out = {};
        for (const entry of ['index.js', 'slim.js']) {
          const m = await import(`./node_modules/open-sse-channel/${entry}`);
          try {
            m.deserializeSSEChannel({ type: 'SSEChannel' }, { allowedRelays: ['https://relay.example.com'] });
            out[entry] = 'returned';
          } catch (e) {
            out[entry] = { name: e.name, code: e.code, isError: e instanceof Error, message: e.message };
          }
        }
        return out;
      });
      for (const entry of ['index.js', 'slim.js']) {
        const e = r[entry];
        assert.equal(typeof e, 'object', `${entry}: ${JSON.stringify(e)}`);
        assert.deepEqual({ name: e.name, code: e.code, isError: e.isError }, { name: 'SSEChannelError', code: 'UNSUPPORTED_ENVIRONMENT', isError: true });
        assert.match(e.message, /deserializeSSEChannel runs in Node\.js.*provides SSEChannel/);
      }
    } finally {
      await context.close();
    }
  });
  test('plain: server-side rendering: Node imports SSEChannel from the node entry; using it throws UNSUPPORTED_ENVIRONMENT', () => {
    // What Nuxt / Vite SSR / uni-app SSR do with a component that imports SSEChannel and constructs it
    // on the client only: Node resolves `open-sse-channel` (the `node` condition) and evaluates the import.
    const out = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { SSEChannel, deserializeSSEChannel, installUniCloud } from 'open-sse-channel';" +
          "import { createRequire } from 'node:module';" +
          "const cjs = createRequire(process.cwd() + '/x.js')('open-sse-channel');" +
          'const thrown = (f) => { try { f(); return null; } catch (e) { return { name: e.name, code: e.code, message: e.message }; } };' +
          'console.log(JSON.stringify({' +
          "  construct: thrown(() => new SSEChannel({ relay: 'https://relay.example.com' }))," +
          '  configure: thrown(() => SSEChannel.configure({})),' +
          '  name: SSEChannel.name, sameAsRequire: cjs.SSEChannel === SSEChannel,' +
          '  writer: typeof deserializeSSEChannel, install: typeof installUniCloud,' +
          '}))',
      ],
      { cwd: dir },
    );
    const r = JSON.parse(out);
    for (const what of ['construct', 'configure']) {
      assert.ok(r[what], `${what} did not throw`);
      assert.equal(r[what].name, 'SSEChannelError', what);
      assert.equal(r[what].code, 'UNSUPPORTED_ENVIRONMENT', what);
      assert.match(r[what].message, /SSEChannel runs in browsers.*provides deserializeSSEChannel/, what);
    }
    assert.deepEqual(
      { name: r.name, sameAsRequire: r.sameAsRequire, writer: r.writer, install: r.install },
      { name: 'SSEChannel', sameAsRequire: true, writer: 'function', install: 'function' },
    );
  });
  test('plain: Node resolves both require and import to the node build', () => {
    const out = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { createRequire } from 'node:module'; const r = createRequire(process.cwd() + '/x.js');" +
          "const cjs = r.resolve('open-sse-channel'); const esm = import.meta.resolve('open-sse-channel');" +
          "const m = await import('open-sse-channel'); console.log(JSON.stringify({ cjs, esm, keys: Object.keys(m) }))",
      ],
      { cwd: dir },
    );
    const r = JSON.parse(out);
    assert.match(r.cjs, /node\.cjs$/);
    assert.match(r.esm, /node\.cjs$/);
    assert.ok(r.keys.includes('deserializeSSEChannel'), `exports: ${r.keys}`);
  });
});

for (const [vite, version] of [
  ['vite', '7.3.8'],
  ['vite8', '8.3.8'],
]) {
  describe(`Vite ${version} app at defaults`, { skip: !enabled(vite) }, () => {
    let dir;
    let server;
    let dev;
    before(async () => {
      // One template (tests/e2e/vite), the Vite version pinned per project.
      dir = freshProject(vite, join(ROOT, 'tests/e2e/vite'), {
        packageJson: (pkg) => ({ ...pkg, name: `open-sse-channel-e2e-${vite}`, devDependencies: { vite: version } }),
      });
      run(join(dir, 'node_modules/.bin/vite'), ['build'], { cwd: dir, timeout: 180_000 });
      results[`${vite} build assets`] = assetBytes(join(dir, 'dist'));
      server = await serveStatic(join(dir, 'dist'));
      const port = await freePort();
      dev = await startDevServer(`${vite}-dev`, join(dir, 'node_modules/.bin/vite'), ['--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
        cwd: dir,
        ready: /Local:\s+(http:\/\/127\.0\.0\.1:\d+\/)/,
      });
    });
    after(async () => {
      await server?.close();
      await dev?.stop();
    });
    bothTransports(`${vite}-build`, () => `${server.url}/`, () => dir);
    bothTransports(`${vite}-dev`, () => dev.match[1], () => dir);
    test(`${vite}: SSR build of a component importing SSEChannel loads in Node; using it throws UNSUPPORTED_ENVIRONMENT`, () => {
      run(join(dir, 'node_modules/.bin/vite'), ['build', '--ssr', 'ssr.js', '--outDir', 'dist-ssr'], { cwd: dir, timeout: 180_000 });
      const bundle = readFileSync(join(dir, 'dist-ssr/ssr.js'), 'utf8');
      assert.match(bundle, /from ["']open-sse-channel["']/, 'open-sse-channel stays external in the SSR bundle');
      const out = run(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          "const m = await import('./dist-ssr/ssr.js'); let e = null;" +
            "try { m.mounted('https://relay.example.com'); } catch (x) { e = { name: x.name, code: x.code }; }" +
            'console.log(JSON.stringify({ html: m.render(), e, writer: typeof m.deserializeSSEChannel }))',
        ],
        { cwd: dir },
      );
      assert.deepEqual(JSON.parse(out), {
        html: '<div class="progress">waiting</div>',
        e: { name: 'SSEChannelError', code: 'UNSUPPORTED_ENVIRONMENT' },
        writer: 'function',
      });
    });
  });
}

describe('webpack 5 at defaults', { skip: !enabled('webpack') }, () => {
  let dir;
  let server;
  before(async () => {
    dir = freshProject('webpack', join(ROOT, 'tests/e2e/webpack'), { appDir: 'src' });
    run(join(dir, 'node_modules/.bin/webpack'), [], { cwd: dir, timeout: 180_000 });
    results['webpack build assets'] = assetBytes(join(dir, 'dist'));
    server = await serveStatic(dir);
  });
  after(() => server?.close());
  bothTransports('webpack', () => `${server.url}/index.html`, () => dir);
});

describe('uni-app Vue 3 H5 at defaults (tests/uniapp)', { skip: !enabled('uniapp') }, () => {
  let dir;
  let server;
  let dev;
  before(async () => {
    dir = freshProject('uniapp', join(ROOT, 'tests/uniapp'), { appDir: 'src' });
    run(join(dir, 'node_modules/.bin/uni'), ['build', '-p', 'h5'], { cwd: dir, timeout: 300_000 });
    results['uniapp build assets'] = assetBytes(join(dir, 'dist/build/h5'));
    server = await serveStatic(join(dir, 'dist/build/h5'));
    const port = await freePort();
    dev = await startDevServer('uniapp-dev', join(dir, 'node_modules/.bin/uni'), ['-p', 'h5', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
      cwd: dir,
      ready: /Local:\s+(http:\/\/127\.0\.0\.1:\d+\/)/,
    });
  });
  after(async () => {
    await server?.close();
    await dev?.stop();
  });
  bothTransports('uniapp-build', () => `${server.url}/index.html`, () => dir);
  bothTransports('uniapp-dev', () => dev.match[1], () => dir);
  // The real uniCloud client object (@dcloudio/uni-cloud, installed with the uni-app project; its
  // CommonJS build needs a `uni` global, stubbed here): installUniCloud from the package's Node entry
  // installs deserializeSSEChannel on it, and a frozen copy of it is refused with a code.
  test('uniapp: installUniCloud on the real @dcloudio/uni-cloud client object', () => {
    const script = [
      "globalThis.uni = new Proxy({}, { get: (t, k) => (k in t ? t[k] : () => {}) });",
      "const { uniCloud } = require('@dcloudio/uni-cloud');",
      "const pkg = require('open-sse-channel');",
      "const version = require('@dcloudio/uni-cloud/package.json').version;",
      "const keys = Object.keys(uniCloud).length;",
      "const same = pkg.installUniCloud(uniCloud, { relay: 'https://relay.example.com' }) === uniCloud;",
      "let badCode = null;",
      "try { uniCloud.deserializeSSEChannel('{\"type\":\"nope\"}'); } catch (e) { badCode = e.code; }",
      "const frozen = Object.freeze({ ...uniCloud, deserializeSSEChannel: undefined });",
      "let frozenCode = null;",
      "try { pkg.installUniCloud(frozen); } catch (e) { frozenCode = e.code; }",
      "console.log(JSON.stringify({ version, same, type: typeof uniCloud.deserializeSSEChannel,",
      "  added: Object.keys(uniCloud).length - keys, callFunction: typeof uniCloud.callFunction,",
      "  badCode, frozenCode, frozenUntouched: frozen.deserializeSSEChannel === undefined }));",
    ].join('\n');
    const out = run(process.execPath, ['-e', script], { cwd: dir, timeout: 60_000 });
    const r = JSON.parse(out.trim().split('\n').pop());
    log('real uniCloud client', r);
    assert.equal(r.same, true);
    assert.equal(r.type, 'function');
    assert.equal(r.added, 1);
    assert.equal(r.callFunction, 'function');
    assert.equal(r.badCode, 'INVALID_DESCRIPTOR');
    assert.equal(r.frozenCode, 'UNICLOUD_INSTALL_FAILED');
    assert.equal(r.frozenUntouched, true);
  });
  // Old Android WebViews are where uni-app H5 pages meet Chromium < 114.
  test('uniapp-build: older Chromium (sync compile > 4 KB refused)', { timeout: 90_000 }, async () => {
    results['uniapp-build old-chromium websocket'] = await scenario(browser, {
      url: `${server.url}/index.html`,
      project: dir,
      transport: 'websocket',
      label: 'uniapp-build-old-chromium',
      oldChromium: true,
    });
  });
});

describe('TypeScript typings (typescript 5.9, strict, skipLibCheck off)', { skip: !enabled('types') }, () => {
  let dir;
  before(() => {
    dir = freshProject('types', join(ROOT, 'tests/e2e/types'), { appDir: '.' });
  });
  test('browser side: moduleResolution bundler (open-sse-channel and open-sse-channel/slim)', () => {
    run(join(dir, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.browser.json'], { cwd: dir, timeout: 120_000 });
  });
  test('cloud-function side: moduleResolution node16, from CommonJS and from ESM', () => {
    run(join(dir, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.node.json'], { cwd: dir, timeout: 120_000 });
  });
});

process.on('exit', () => log('results', results));
