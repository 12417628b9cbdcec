// The browser build's JavaScript helpers: small functions the wasm calls where the same work done
// in wasm, through fine-grained imports, costs the browser bundle more (each import is a glue
// function, each callback a closure type). One module, so the package's assemble.mjs inlines one
// snippet file into each browser entry and the test runner serves one file. Written for ES2019
// (uni-app's default build target). Bound in src/js_error.rs, src/channel/http.rs,
// src/channel/options.rs and src/channel/core/mod.rs.

// A coded error, in one call (src/js_error.rs). Also the coded-error helper of the package's
// facade.js and loader.js, which index.js and slim.js append after the glue.
export function sseError(code, message) {
  const e = new Error(message);
  e.name = 'SSEChannelError';
  e.code = code;
  return e;
}

// A promise and its two settling functions (`open()`, `cancel()`): `Promise::new` with a Rust
// callback costs the bundle a closure type of its own.
export function ssePromise() {
  const d = {};
  d.p = new Promise((resolve, reject) => {
    d.r = resolve;
    d.j = reject;
  });
  return d;
}

// The page's `online` and `offline` events: `add` true adds `f` as the listener of both on the
// global object, false removes it; nothing where the global object has no `addEventListener`.
export function sseNetwork(f, add) {
  const g = globalThis;
  if (typeof g.addEventListener === 'function') {
    for (const t of ['online', 'offline']) (add ? g.addEventListener : g.removeEventListener).call(g, t, f);
  }
}

// `POST url` with `body` as JSON and `token` as the bearer token when not empty (channel creation
// and cancel, src/channel/http.rs). `done` is called exactly once, with `{s, j}`: `s` 0 when the
// relay could not be reached, 1 for a 2xx answer, 2 for another status; `j` the answer's JSON,
// undefined when the body is not JSON.
export function ssePost(url, body, token, done) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  fetch(url, { method: 'POST', headers, body: JSON.stringify(body) }).then(
    (r) => r.json().then((j) => done({ s: r.ok ? 1 : 2, j }), () => done({ s: r.ok ? 1 : 2 })),
    () => done({ s: 0 }),
  );
}

// The SSEChannel options after `relay` (src/channel/options.rs checks that one and calls this):
// read and checked here, in JavaScript, because each getter call and error path in wasm costs the
// browser bundle more than these lines. `out` holds the options being merged, as numbers, and
// receives every option present in `o`: [transport (0 'auto', 1 'websocket', 2 'eventsource'),
// reconnect.minDelayMs, reconnect.maxDelayMs, reconnect.maxAttempts (Infinity: unlimited),
// openTimeoutMs, heartbeatTimeoutMs, ttlSecs, abandonAfterMs] (NaN: not set). An invalid option
// throws INVALID_OPTIONS (the caller then keeps nothing of `out`). The limits are those of
// crates/protocol/src/limits.rs and src/machine/config.rs (a native test checks them: src/lib.rs).
export function sseOptions(o, out) {
  const bad = (what) => {
    throw sseError('INVALID_OPTIONS', 'option `' + what);
  };
  const set = (v) => v !== undefined && v !== null;
  const ms = 2147483647;
  // A whole number of min..=max, when present.
  const num = (i, v, min, max, what) => {
    if (set(v)) {
      if (typeof v !== 'number' || !(v >= min && v <= max) || v % 1) bad(what);
      out[i] = v;
    }
  };
  const t = o.transport;
  if (set(t)) {
    const k = ['auto', 'websocket', 'eventsource'].indexOf(t);
    if (k < 0) bad("transport` must be 'auto', 'websocket' or 'eventsource'");
    out[0] = k;
  }
  const r = o.reconnect;
  if (set(r)) {
    if (typeof r !== 'object') bad('reconnect` must be an object');
    // 0 would retry without any delay, forever: refused.
    num(1, r.minDelayMs, 1, ms, 'reconnect.minDelayMs` must be a whole number of milliseconds, at least 1');
    num(2, r.maxDelayMs, 0, ms, 'reconnect.maxDelayMs` must be a whole number of milliseconds');
    const a = r.maxAttempts;
    if (a === Infinity) out[3] = a;
    else num(3, a, 0, 4294967295, 'reconnect.maxAttempts` must be a whole number or Infinity');
    if (out[2] < out[1]) bad('reconnect.maxDelayMs` must not be below `minDelayMs`');
  }
  num(4, o.openTimeoutMs, 1, ms, 'openTimeoutMs` must be a positive whole number of milliseconds');
  num(5, o.heartbeatTimeoutMs, 0, ms, 'heartbeatTimeoutMs` must be a whole number of milliseconds (0 disables)');
  num(6, o.ttlSecs, 0, 86400, 'ttlSecs` must be a whole number of seconds, at most 86400');
  if (out[6] === 0) bad('ttlSecs` must be at least 1');
  num(7, o.abandonAfterMs, 1000, 3600000, 'abandonAfterMs` must be a whole number of milliseconds from 1000 to 3600000');
}
