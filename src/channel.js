// The `SSEChannel` class (contract: src/channel/mod.rs and docs/sdk.md) over the channel's state
// machine, which runs in the wasm (src/machine/, behind the one export of src/channel/abi.rs). The
// class holds what the browser holds (listeners, the connection, timers, promises, the created
// channel); its executor (src/channel/executor.js) feeds the machine what happened and carries out
// the effects it returns; neither decides anything. In JavaScript because the same executor in
// Rust cost the browser bundle more in export shims, imports, closures and their glue than these
// lines (docs/sdk.md). Written for ES2019 (uni-app's default build target). Names the protocol
// defines are spelled as the protocol crate does (a native test checks them: tests/channel_js.rs).
import { sseError, sseOptions, ssePost, sseSetWasm, sseW, sseView, sseText, sseU64, sseStrOf, SSE_OP_DEFAULTS, SSE_OP_IS_RELAY, SSE_IN_OPEN, SSE_IN_CLOSE, SSE_OPT_MACHINE } from './browser.js';
import { SSE_NETWORK_ERROR, SSEExecutor, sseRefusal } from './channel/executor.js';

// The wasm's exports, handed over at instantiation (src/channel/abi.rs).
export function sseBind(exports) {
  sseSetWasm(exports);
}
function sseInvalid(message) {
  return sseError('INVALID_OPTIONS', message);
}
// The defaults of `new SSEChannel()` (SSEChannel.configure).
let sseDefaults = null;

// The options as `{ relay, n }`, `n` as src/browser.js's sseOptions reads them: transport,
// reconnect.minDelayMs, reconnect.maxDelayMs, reconnect.maxAttempts, openTimeoutMs,
// heartbeatTimeoutMs, ttlSecs, abandonAfterMs. The defaults are the wasm's (src/machine/config.rs).
function sseBase() {
  if (!sseDefaults) {
    sseW.sse(SSE_OP_DEFAULTS, 0, 0, 0, 0, 0);
    sseDefaults = { relay: undefined, n: [...sseView().subarray(0, SSE_OPT_MACHINE), NaN, NaN] };
  }
  return sseDefaults;
}
// `base` with every option present in `o` (an object, or undefined/null for none) replacing its value.
function sseMerged(base, o) {
  const m = { relay: base.relay, n: base.n.slice() };
  if (o === undefined || o === null) return m;
  if (typeof o !== 'object') throw sseInvalid('SSEChannel options must be an object');
  const r = o.relay;
  if (r !== undefined && r !== null) {
    if (typeof r !== 'string' || !sseText(SSE_OP_IS_RELAY, r)) {
      throw sseInvalid('option `relay` must be an http(s) URL without credentials, query or fragment');
    }
    m.relay = r.replace(/\/+$/, '');
  }
  sseOptions(o, m.n);
  return m;
}

const sseEvents = ['open', 'message', 'end', 'close', 'error', 'reconnecting', 'state'];

export class SSEChannel extends SSEExecutor {
  constructor(options) {
    super();
    this._o = sseMerged(sseBase(), options);
    this._att = false; // made by attach(): no publish token
    this._cr = null; // the created channel: { channelId, subscribeToken, publishToken, expiresAt }
    this._h = undefined; // the machine's handle, from the first input; 0 once freed (closed)
    this._st = 'idle';
    this._tr = undefined;
    this._op = false; // open() resolved
    this._l = 0; // the machine's last event id
    this._dv = 0; // the connection JS may deliver for, as the machine last said
    this._ls = []; // listeners { e: event, f, o: once }
    this._q = []; // events to deliver: [event, argument]
    this._fl = false; // delivering them
    this._done = false; // `close` was delivered: listeners released, later ones not kept
    this._c = null; // closes the open connection
    this._t = [0, 0, 0]; // setTimeout ids by timer (open, watchdog, retry)
    this._opening = null; // [resolve, reject] of the open() call being handled
    this._pending = null; // ... and of the accepted one
    this._net = null; // the page's online/offline listener
    this._msg = ''; // the relay's message of the last failure it reported
    this._det = undefined; // `details` of the final error event
    this._data = undefined; // the data of the frame being handled
    this._cause = null;
    this._d = null; // the dispatch shared with the connections (src/transport/reader.js)
    this._g = 0; // the connection JS may deliver for, as last told
    this._sl = 0; // the last id JS was told or delivered, as last known here
  }

  static configure(options) {
    sseDefaults = sseMerged(sseBase(), options);
  }

  static attach(subscription, options) {
    const bad = () => sseInvalid('attach(subscription): not a subscription from toSubscription()');
    const text = (k) => {
      const v = sseStrOf(subscription, k);
      if (v === undefined) throw bad();
      return v;
    };
    if (text('type') !== 'SSESubscription' || sseU64(subscription, 'version') !== 1) throw bad();
    const relay = text('relay');
    const o = sseMerged(sseMerged(sseBase(), options), { relay });
    const cr = { channelId: text('channelId'), subscribeToken: text('subscribeToken'), publishToken: '' };
    const num = (k) => {
      const v = sseU64(subscription, k);
      if (v === undefined) throw bad();
      return v;
    };
    cr.expiresAt = num('expiresAt');
    const last = num('lastEventId');
    const ch = new SSEChannel();
    ch._o = o;
    ch._att = true;
    ch._cr = cr;
    ch._l = last;
    return ch;
  }

  get state() {
    return this._st;
  }
  get channelId() {
    return this._cr ? this._cr.channelId : undefined;
  }
  get lastEventId() {
    const d = this._d;
    return d && this._g ? Math.max(this._l, d.l) : this._l;
  }
  get transport() {
    return this._tr;
  }
  free() {}

  open() {
    return new Promise((resolve, reject) => {
      this._opening = [resolve, reject];
      this._in(SSE_IN_OPEN);
      this._flush();
    });
  }
  close() {
    this._in(SSE_IN_CLOSE);
    this._flush();
  }

  on(event, listener) {
    this._add(event, listener, false);
  }
  once(event, listener) {
    this._add(event, listener, true);
  }
  _add(e, f, o) {
    if (typeof f !== 'function') throw sseInvalid('a listener must be a function');
    // A name the channel never emits, or a listener after `close`: nothing would call it.
    if (sseEvents.indexOf(e) < 0 || this._done) return;
    this._ls.push({ e, f, o });
    if (e === 'message') this._pub();
  }
  off(event, listener) {
    const ls = this._ls;
    for (let i = ls.length - 1; i >= 0; i--) {
      if (ls[i].e === event && ls[i].f === listener) {
        ls.splice(i, 1);
        if (event === 'message') this._pub();
        return;
      }
    }
  }
  removeAllListeners(event) {
    if (event === undefined || event === null) this._ls = [];
    else this._ls = this._ls.filter((l) => l.e !== event);
    this._pub();
  }

  toJSON() {
    if (this._att) {
      throw sseError('INVALID_STATE', 'toJSON(): an attached channel holds no publish token and cannot be passed to a function');
    }
    const c = this._cr;
    if (!this._op || this._o.relay === undefined || !c) {
      throw sseError('INVALID_STATE', 'toJSON(): the channel can be serialized only after open() resolved');
    }
    return { type: 'SSEChannel', version: 1, relay: this._o.relay, channelId: c.channelId, publishToken: c.publishToken, expiresAt: c.expiresAt };
  }
  toSubscription() {
    const c = this._cr;
    if (this._o.relay === undefined || !c) throw sseError('INVALID_STATE', 'toSubscription(): the channel does not exist yet');
    return {
      type: 'SSESubscription',
      version: 1,
      relay: this._o.relay,
      channelId: c.channelId,
      subscribeToken: c.subscribeToken,
      expiresAt: c.expiresAt,
      lastEventId: this.lastEventId,
    };
  }
  cancel(reason) {
    return new Promise((resolve, reject) => {
      const c = this._cr;
      if (this._o.relay === undefined || !c) throw sseError('INVALID_STATE', 'cancel(): the channel does not exist yet');
      const body = reason === undefined || reason === null ? {} : { reason: String(reason) };
      ssePost(this._o.relay + '/v1/channels/' + c.channelId + '/cancel', body, c.subscribeToken, (s, j) => {
        if (s === 1) resolve();
        else reject(s ? sseRefusal(j, 'the relay refused to cancel the channel', (code, m) => sseError(code, m)) : sseError('NETWORK_ERROR', SSE_NETWORK_ERROR));
      });
    });
  }
}
if (typeof Symbol === 'function' && Symbol.dispose) SSEChannel.prototype[Symbol.dispose] = SSEChannel.prototype.free;

