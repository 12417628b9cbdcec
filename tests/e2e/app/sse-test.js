// Page side of the end-to-end scenario, shared by every test project (plain page, Vite, webpack,
// uni-app). The project imports `SSEChannel` from 'sse-channel' its own way and hands it here; the
// test drives `window.__sseTest` through Playwright. ES2019 on purpose (uni-app's default target).
// `defaultRelay`: construct without `relay` (the class was configured, e.g. by installUniCloud).
export function installTestHooks(SSEChannel, { defaultRelay = false } = {}) {
  let got = null;
  window.__sseTest = {
    SSEChannel,
    /** Creates and opens a channel; resolves with its descriptor (what callFunction would carry). */
    async start(relay, transport) {
      got = { events: [], messages: [], end: undefined, errors: [], openMs: null, constructedSync: false };
      const ch = new SSEChannel(defaultRelay ? { transport } : { relay, transport });
      got.constructedSync = ch instanceof SSEChannel;
      got.className = ch.constructor && ch.constructor.name;
      ch.on('open', () => got.events.push('open'));
      ch.on('message', (data) => {
        got.events.push('message');
        got.messages.push(data);
      });
      ch.on('end', (data) => {
        got.events.push('end');
        got.end = data;
      });
      ch.on('close', () => got.events.push('close'));
      ch.on('error', (err) => got.errors.push({ code: err && err.code, message: String(err && err.message) }));
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
  document.title = 'sse-channel e2e ready';
}
