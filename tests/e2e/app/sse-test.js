// Page side of the end-to-end scenario, shared by every test project (plain page, Vite, webpack,
// uni-app). The project imports `SSEChannel` from 'open-sse-channel' its own way and hands it here; the
// test drives `window.__sseTest` through Playwright. ES2019 on purpose (uni-app's default target).
// `defaultRelay`: construct without `relay` (the class was configured, e.g. by installUniCloud).
export function installTestHooks(SSEChannel, { defaultRelay = false } = {}) {
  let got = null;
  // What the page received, shown for the screenshots under tests/out/e2e/.
  const pre = document.createElement('pre');
  pre.id = 'sse-test-log';
  pre.style.cssText =
    'position:fixed;left:0;right:0;bottom:0;z-index:99999;margin:0;padding:8px;background:#eef;font:12px monospace;white-space:pre-wrap';
  document.body.appendChild(pre);
  const show = () => {
    const counts = {};
    for (const e of got.events) counts[e] = (counts[e] || 0) + 1;
    pre.textContent = `${JSON.stringify(counts)}\nlast message: ${String(JSON.stringify(got.messages[got.messages.length - 1])).slice(0, 120)}\nend: ${JSON.stringify(got.end)}\nerrors: ${JSON.stringify(got.errors)}`;
  };
  window.__sseTest = {
    SSEChannel,
    /** Creates and opens a channel; resolves with its descriptor (what callFunction would carry). */
    async start(relay, transport) {
      got = { events: [], messages: [], end: undefined, errors: [], openMs: null, constructedSync: false };
      const ch = new SSEChannel(defaultRelay ? { transport } : { relay, transport });
      got.constructedSync = ch instanceof SSEChannel;
      got.className = ch.constructor && ch.constructor.name;
      ch.on('open', () => {
        got.events.push('open');
        show();
      });
      ch.on('message', (data) => {
        got.events.push('message');
        got.messages.push(data);
        show();
      });
      ch.on('end', (data) => {
        got.events.push('end');
        got.end = data;
        show();
      });
      ch.on('close', () => {
        got.events.push('close');
        show();
      });
      ch.on('error', (err) => {
        got.errors.push({ code: err && err.code, message: String(err && err.message) });
        show();
      });
      const t0 = performance.now();
      await ch.open();
      got.openMs = performance.now() - t0;
      window.__sseChannel = ch;
      return JSON.stringify(ch);
    },
    /** What the page received so far. */
    got() {
      return got;
    },
  };
  document.title = 'open-sse-channel e2e ready';
}
