// Helpers of the SSEChannel class (src/channel.js and src/channel/executor.js import them; the
// package's assemble.mjs inlines all into each browser entry): coded errors, the two requests, the
// options, and the wasm's side. Written for ES2019 (uni-app's default build target).

// A coded error. Also the coded-error helper of the package's facade.js and loader.js, which
// index.js and slim.js append after the glue.
export function sseError(code, message) {
  const e = new Error(message);
  e.name = 'SSEChannelError';
  e.code = code;
  return e;
}

// `POST url` with `body` as JSON and `token` as the bearer token when not empty (channel creation
// and cancel). `done` is called exactly once, with `(s, j)`: `s` 0 when the relay could not be
// reached, 1 for a 2xx answer, 2 for another status; `j` the answer's JSON, undefined when the
// body is not JSON.
export function ssePost(url, body, token, done) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  fetch(url, { method: 'POST', headers, body: JSON.stringify(body) }).then(
    (r) => r.json().then((j) => done(r.ok ? 1 : 2, j), () => done(r.ok ? 1 : 2)),
    () => done(0),
  );
}

// The SSEChannel options after `relay` (src/channel.js checks that one, in wasm, and calls this).
// `out` holds the options being merged, as numbers in the slots SSE_OPT_* (below), and receives
// every option present in `o` (transport: its index in the list below; maxAttempts Infinity:
// unlimited; NaN: not set). An invalid option
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
    out[SSE_OPT_TRANSPORT] = k;
  }
  const r = o.reconnect;
  if (set(r)) {
    if (typeof r !== 'object') bad('reconnect` must be an object');
    // 0 would retry without any delay, forever: refused.
    num(SSE_OPT_MIN_DELAY_MS, r.minDelayMs, 1, ms, 'reconnect.minDelayMs` must be a whole number of milliseconds, at least 1');
    num(SSE_OPT_MAX_DELAY_MS, r.maxDelayMs, 0, ms, 'reconnect.maxDelayMs` must be a whole number of milliseconds');
    const a = r.maxAttempts;
    if (a === Infinity) out[SSE_OPT_MAX_ATTEMPTS] = a;
    else num(SSE_OPT_MAX_ATTEMPTS, a, 0, 4294967295, 'reconnect.maxAttempts` must be a whole number or Infinity');
    if (out[SSE_OPT_MAX_DELAY_MS] < out[SSE_OPT_MIN_DELAY_MS]) bad('reconnect.maxDelayMs` must not be below `minDelayMs`');
  }
  num(SSE_OPT_OPEN_TIMEOUT_MS, o.openTimeoutMs, 1, ms, 'openTimeoutMs` must be a positive whole number of milliseconds');
  num(SSE_OPT_HEARTBEAT_TIMEOUT_MS, o.heartbeatTimeoutMs, 0, ms, 'heartbeatTimeoutMs` must be a whole number of milliseconds (0 disables)');
  num(SSE_OPT_TTL_SECS, o.ttlSecs, 0, 86400, 'ttlSecs` must be a whole number of seconds, at most 86400');
  if (out[SSE_OPT_TTL_SECS] === 0) bad('ttlSecs` must be at least 1');
  num(SSE_OPT_ABANDON_AFTER_MS, o.abandonAfterMs, 1000, 3600000, 'abandonAfterMs` must be a whole number of milliseconds from 1000 to 3600000');
}

// ---- the wasm's side of the class: the state machines behind one export (src/channel/abi.rs) ----

// The slots of a channel's options array (src/machine/abi.rs, `opt`): the first SSE_OPT_MACHINE go
// to the wasm's machine, ttlSecs and abandonAfterMs into the channel's creation.
export const SSE_OPT_TRANSPORT = 0;
export const SSE_OPT_MIN_DELAY_MS = 1;
export const SSE_OPT_MAX_DELAY_MS = 2;
export const SSE_OPT_MAX_ATTEMPTS = 3;
export const SSE_OPT_OPEN_TIMEOUT_MS = 4;
export const SSE_OPT_HEARTBEAT_TIMEOUT_MS = 5;
export const SSE_OPT_TTL_SECS = 6;
export const SSE_OPT_ABANDON_AFTER_MS = 7;
export const SSE_OPT_MACHINE = 6;


// The numbers of the export `sse(op, h, now, a, b, c)`, named in Rust in src/machine/abi.rs (a
// native test checks that both sides agree: tests/channel_js.rs). Plain constants: the package's
// minifier writes their values in place. The ops:
export const SSE_OP_NEW = 0;
export const SSE_OP_FREE = 1;
export const SSE_OP_BUFFER = 2;
export const SSE_OP_TEXT = 3;
export const SSE_OP_IS_RELAY = 4;
export const SSE_OP_CODE_INDEX = 5;
export const SSE_OP_DEFAULTS = 6;
export const SSE_OP_INPUT = 16;
// The inputs (op SSE_OP_INPUT + input):
export const SSE_IN_OPEN = 0;
export const SSE_IN_CLOSE = 1;
export const SSE_IN_ONLINE = 2;
export const SSE_IN_OFFLINE = 3;
export const SSE_IN_CREATED = 4;
export const SSE_IN_CREATE_FAILED = 5;
export const SSE_IN_NO_RELAY = 6;
export const SSE_IN_READY = 7;
export const SSE_IN_MESSAGE = 8;
export const SSE_IN_DELIVERED = 9;
export const SSE_IN_END = 10;
export const SSE_IN_ALIVE = 11;
export const SSE_IN_LOST = 12;
export const SSE_IN_FINAL = 13;
export const SSE_IN_STREAM_ERROR = 14;
export const SSE_IN_DROPPED = 15;
export const SSE_IN_REFUSED = 16;
export const SSE_IN_TIMER = 17;
// The kinds of the effect records:
export const SSE_FX_REFUSE = 0;
export const SSE_FX_LISTEN = 1;
export const SSE_FX_CREATE = 2;
export const SSE_FX_CONNECT = 3;
export const SSE_FX_DISCONNECT = 4;
export const SSE_FX_ARM = 5;
export const SSE_FX_CANCEL = 6;
export const SSE_FX_STATE = 7;
export const SSE_FX_OPENED = 8;
export const SSE_FX_MESSAGE = 9;
export const SSE_FX_END = 10;
export const SSE_FX_LOST = 11;
export const SSE_FX_RECONNECTING = 12;
export const SSE_FX_FAIL = 13;
export const SSE_FX_CAUSE = 14;
export const SSE_FX_CLOSE = 15;


// The wasm's exports (`sse` and `memory`), handed over at instantiation (sseBind in src/channel.js).
export let sseW = null;
export function sseSetWasm(exports) {
  sseW = exports;
}
// The address of the buffer shared with the wasm: options in, effects out.
let sseBufAt = 0;
export function sseView() {
  if (!sseBufAt) sseBufAt = sseW.sse(SSE_OP_BUFFER, 0, 0, 0, 0, 0);
  return new Float64Array(sseW.memory.buffer, sseBufAt, 243);
}
// A static UTF-8 string of the wasm.
export function sseStr(p, n) {
  return new TextDecoder().decode(new Uint8Array(sseW.memory.buffer, p, n));
}
// Writes `s` into the wasm's text buffer and runs `op` on it (SSE_OP_IS_RELAY, SSE_OP_CODE_INDEX).
export function sseText(op, s) {
  const b = new TextEncoder().encode(s);
  const at = sseW.sse(SSE_OP_TEXT, b.length, 0, 0, 0, 0); // before reading `buffer`: it may grow the memory
  new Uint8Array(sseW.memory.buffer, at, b.length).set(b);
  return sseW.sse(op, 0, 0, 0, 0, 0);
}
// The index of a code in the protocol's list, -1 for an unknown code or a non-string.
export function sseCode(c) {
  return typeof c === 'string' ? sseText(SSE_OP_CODE_INDEX, c) : -1;
}
export function sseGet(o, k) {
  return o !== null && typeof o === 'object' ? o[k] : undefined;
}
// `o[k]` when it is a whole number in 0..=2^53, else undefined.
export function sseU64(o, k) {
  const v = sseGet(o, k);
  return typeof v === 'number' && v >= 0 && v % 1 === 0 && v <= 9007199254740992 ? v : undefined;
}
export function sseStrOf(o, k) {
  const v = sseGet(o, k);
  return typeof v === 'string' ? v : undefined;
}
