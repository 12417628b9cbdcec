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
    const e = new Error('option `' + what);
    e.name = 'SSEChannelError';
    e.code = 'INVALID_OPTIONS';
    throw e;
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
