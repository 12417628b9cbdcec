// The executor of the SSEChannel class (src/channel.js): feeds the channel's state machine (in the
// wasm, src/machine/, behind src/channel/abi.rs) what happened, and carries out the effects it
// returns: connections (src/transport/reader.js), timers, requests, events, promises. It decides
// nothing. The base class of SSEChannel, so that the class users see lists only its API; its state
// is the channel's `_members` (listed in SSEChannel's constructor). Written for
// ES2019 (uni-app's default build target).
import { sseError, ssePost, sseW, sseView, sseStr, sseCode, sseGet, sseU64, sseStrOf, SSE_OP_NEW, SSE_OP_FREE, SSE_OP_INPUT, SSE_IN_ONLINE, SSE_IN_OFFLINE, SSE_IN_CREATED, SSE_IN_CREATE_FAILED, SSE_IN_NO_RELAY, SSE_IN_READY, SSE_IN_MESSAGE, SSE_IN_DELIVERED, SSE_IN_END, SSE_IN_ALIVE, SSE_IN_LOST, SSE_IN_FINAL, SSE_IN_STREAM_ERROR, SSE_IN_DROPPED, SSE_IN_REFUSED, SSE_IN_TIMER, SSE_FX_REFUSE, SSE_FX_LISTEN, SSE_FX_CREATE, SSE_FX_CONNECT, SSE_FX_DISCONNECT, SSE_FX_ARM, SSE_FX_CANCEL, SSE_FX_STATE, SSE_FX_OPENED, SSE_FX_MESSAGE, SSE_FX_END, SSE_FX_LOST, SSE_FX_RECONNECTING, SSE_FX_FAIL, SSE_FX_CAUSE, SSE_FX_CLOSE, SSE_OPT_MACHINE, SSE_OPT_TTL_SECS, SSE_OPT_ABANDON_AFTER_MS } from '../browser.js';
import { sseConnect, sseDispatch } from '../transport/reader.js';

export const SSE_NETWORK_ERROR = 'could not reach the relay to create the channel';

export class SSEExecutor {
  // Feeds input `k` (SSE_IN_*: src/machine/abi.rs) to the machine, carries out its effects and the
  // inputs they cause at once. The caller delivers the events (_flush).
  _in(k, a, b, c) {
    if (this._h === undefined) {
      const v = sseView();
      v.set(this._o.n.slice(0, SSE_OPT_MACHINE));
      this._h = sseW.sse(SSE_OP_NEW, 0, 0, Math.random() * 4294967296, this._att ? this._l : -1, 0);
    }
    // The messages JS delivered since the last input, into the machine first (they came before it).
    const d = this._d;
    if (this._h && d && this._g && d.l > this._sl) {
      this._sl = d.l;
      sseW.sse(SSE_OP_INPUT + SSE_IN_DELIVERED, this._h, d.t, this._g, d.l, 0);
    }
    let next = [k, a, b, c];
    while (next) {
      const h = this._h;
      sseW.sse(SSE_OP_INPUT + next[0], h, Date.now(), next[1] || 0, next[2] || 0, next[3] || 0);
      const v = sseView();
      const fx = v.slice(0, 3 + 6 * v[0]);
      if (h) {
        this._dv = fx[1];
        this._l = fx[2];
      }
      next = null;
      for (let i = 3; i < fx.length; i += 6) {
        const r = this._run(fx[i], fx[i + 1], fx[i + 2], fx[i + 3], fx[i + 4]);
        if (r) next = r;
      }
    }
    this._push();
  }

  // Carries out one effect (kinds SSE_FX_*: src/machine/abi.rs); returns an input it caused at once.
  _run(k, a, b, c, e) {
    const emit = (ev, arg) => this._q.push([ev, arg]);
    const err = (cp, cl, mp, ml) => sseError(sseStr(cp, cl), ml < 0 ? this._msg : sseStr(mp, ml));
    const settle = (i, v) => {
      const p = this._pending;
      this._pending = null;
      if (p) p[i](v);
    };
    switch (k) {
      case SSE_FX_REFUSE: {
        const p = this._opening;
        this._opening = null;
        if (p) p[1](sseError('INVALID_STATE', a ? 'open() after close()' : 'open() was already called'));
        break;
      }
      case SSE_FX_LISTEN:
        this._pending = this._opening;
        this._opening = null;
        this._net = (ev) => {
          this._in(ev.type === 'online' ? SSE_IN_ONLINE : SSE_IN_OFFLINE);
          this._flush();
        };
        sseNetwork(this._net, true);
        break;
      case SSE_FX_CREATE:
        return this._create();
      case SSE_FX_CONNECT: {
        const cr = this._cr;
        if (!cr) break;
        const ws = b === 1;
        this._tr = ws ? 'websocket' : 'eventsource';
        let url = this._o.relay || '';
        if (ws) {
          const s = url[4] === 's' || url[4] === 'S';
          url = (s ? 'wss' : 'ws') + url.slice(s ? 5 : 4);
        }
        url += '/v1/channels/' + cr.channelId + (ws ? '/ws' : '/events') + '?token=' + cr.subscribeToken + '&batch=1';
        if (c > 0) url += '&lastEventId=' + c;
        if (!this._d) {
          const d = (this._d = sseDispatch((v) => {
            this._frame(d.k, v);
            this._flush();
          }));
          this._pub();
        }
        try {
          this._c = sseConnect(this._d, a, ws, url);
        } catch (_) {
          return [SSE_IN_REFUSED, a];
        }
        break;
      }
      case SSE_FX_DISCONNECT: {
        const close = this._c;
        this._c = null;
        if (close) close();
        break;
      }
      case SSE_FX_ARM:
        clearTimeout(this._t[a]);
        this._t[a] = setTimeout(() => {
          this._in(SSE_IN_TIMER, a);
          this._flush();
        }, b);
        break;
      case SSE_FX_CANCEL:
        clearTimeout(this._t[a]);
        break;
      case SSE_FX_STATE: {
        const to = sseStr(c, e);
        emit('state', { from: sseStr(a, b), to });
        this._st = to;
        break;
      }
      case SSE_FX_OPENED:
        this._op = true;
        emit('open', undefined);
        settle(0);
        break;
      case SSE_FX_MESSAGE:
      case SSE_FX_END:
        // The frame's data is used once.
        emit(k === SSE_FX_MESSAGE ? 'message' : 'end', this._data);
        this._data = undefined;
        break;
      case SSE_FX_LOST: {
        const x = sseError('MESSAGES_LOST', this._msg);
        x.from = a;
        x.to = b;
        emit('error', x);
        break;
      }
      case SSE_FX_RECONNECTING:
        emit('reconnecting', { attempt: a, delayMs: b, code: sseStr(c, e) });
        break;
      case SSE_FX_CAUSE:
        this._cause = err(a, b, c, e);
        break;
      case SSE_FX_FAIL: {
        const x = err(a, b, c, e);
        const details = this._det;
        this._det = undefined;
        if (this._cause) x.cause = this._cause;
        else if (x.code === 'FUNCTION_FAILED' || x.code === 'CHANNEL_CANCELLED') x.details = details;
        this._cause = null;
        emit('error', x);
        settle(1, x);
        break;
      }
      case SSE_FX_CLOSE: {
        emit('close', undefined);
        if (this._net) sseNetwork(this._net, false);
        this._net = null;
        settle(1, sseError('INVALID_STATE', 'the channel was closed before open() completed'));
        for (const t of this._t) clearTimeout(t);
        this._data = undefined;
        // The machine has every id JS delivered (read before this input); a reader still running
        // (a listener closed the channel amid a batch) delivers and passes on nothing more.
        const d = this._d;
        if (d) {
          d.c = 0;
          d.f = null;
        }
        this._d = null;
        this._g = 0;
        sseW.sse(SSE_OP_FREE, this._h, 0, 0, 0, 0);
        this._h = 0;
        break;
      }
    }
  }

  // `POST /v1/channels`; its answer is the machine's next input.
  _create() {
    const relay = this._o.relay;
    if (relay === undefined) return [SSE_IN_NO_RELAY];
    const n = this._o.n;
    const body = {};
    if (n[SSE_OPT_TTL_SECS] === n[SSE_OPT_TTL_SECS]) body.ttlSecs = n[SSE_OPT_TTL_SECS];
    if (n[SSE_OPT_ABANDON_AFTER_MS] === n[SSE_OPT_ABANDON_AFTER_MS]) body.abandonAfterMs = n[SSE_OPT_ABANDON_AFTER_MS];
    ssePost(relay + '/v1/channels', body, '', (s, j) => {
      let input;
      const fail = (code, message) => {
        this._msg = message;
        input = [SSE_IN_CREATE_FAILED, code];
      };
      if (!s) fail(sseCode('NETWORK_ERROR'), SSE_NETWORK_ERROR);
      else if (s === 2) sseRefusal(j, 'the relay refused to create the channel', (code, m) => fail(sseCode(code), m));
      else {
        const cr = {
          channelId: sseStrOf(j, 'channelId'),
          subscribeToken: sseStrOf(j, 'subscribeToken'),
          publishToken: sseStrOf(j, 'publishToken'),
          expiresAt: sseU64(j, 'expiresAt'),
        };
        if (cr.channelId === undefined || cr.subscribeToken === undefined || cr.publishToken === undefined || cr.expiresAt === undefined) {
          fail(sseCode('INTERNAL'), 'the relay answered the channel creation with an unexpected body');
        } else {
          if (!this._cr && this._st !== 'closed') this._cr = cr;
          input = [SSE_IN_CREATED];
        }
      }
      this._in(...input);
      this._flush();
    });
  }

  // What a connection passed on (src/transport/reader.js): a parsed event object, or a boolean for
  // a lost connection (whether it had opened); anything else means the stream cannot be trusted.
  _frame(conn, v) {
    if (typeof v === 'boolean') return this._in(SSE_IN_DROPPED, conn, v ? 1 : 0);
    if (v === null || typeof v !== 'object') return this._in(SSE_IN_DROPPED, conn, 1);
    const kind = v.event;
    const n = +v.id;
    // Ids start at 1: 0 (or null) is no id, as are NaN and fractions.
    const id = n >= 1 && n % 1 === 0 ? n : 0;
    let data = v.data;
    let input;
    if (kind === 'ready') {
      const hb = sseU64(data, 'heartbeatMs');
      input = [SSE_IN_READY, conn, hb === undefined ? -1 : hb];
    } else if (kind === 'message') input = [SSE_IN_MESSAGE, conn, id];
    else if (kind === 'end') input = [SSE_IN_END, conn, id];
    else if (kind === 'error') {
      const code = sseStrOf(data, 'code');
      let c = sseCode(code);
      if (c < 0) c = sseCode('INTERNAL');
      const m = sseStrOf(data, 'message');
      this._msg = m === undefined ? 'the relay closed the stream with an error' : m;
      if (code === 'MESSAGES_LOST') {
        const from = sseU64(data, 'from');
        const to = sseU64(data, 'to');
        input = from === undefined || to === undefined ? [SSE_IN_ALIVE, conn] : [SSE_IN_LOST, conn, from, to];
      } else if (id) {
        // The stored final event (fail, cancel), if the id is new.
        this._det = sseGet(data, 'details');
        input = [SSE_IN_FINAL, conn, id, c];
      } else input = [SSE_IN_STREAM_ERROR, conn, c];
    } else if (kind === 'ping' || kind === 'pong') input = [SSE_IN_ALIVE, conn];
    else if (typeof kind === 'string') {
      // A kind this client does not know (from a newer relay): proof of life, like a heartbeat.
      data = null;
      input = [SSE_IN_ALIVE, conn];
    } else return this._in(SSE_IN_DROPPED, conn, 1);
    this._data = data;
    this._in(...input);
  }

  // Delivers queued events, in order, to a snapshot of the listeners of each. Re-entrant calls
  // (from a listener) return at once; the outer loop goes on.
  _flush() {
    if (this._fl) return;
    this._fl = true;
    for (let x; (x = this._q.shift()); ) {
      const ev = x[0];
      const fs = [];
      let once = false;
      for (const l of this._ls) {
        if (l.e === ev) {
          once = once || l.o;
          fs.push(l.f);
        }
      }
      if (once) this._ls = this._ls.filter((l) => !(l.o && l.e === ev));
      if (ev === 'close') {
        // The last event: release every listener.
        this._done = true;
        this._ls = [];
      }
      if ((once && ev === 'message') || ev === 'close') {
        this._pub();
        this._push();
      }
      for (const f of fs) {
        try {
          f(x[1]);
        } catch (e) {
          // A throwing listener is reported and does not stop the others.
          console.error('SSEChannel: an event listener threw:', e);
        }
      }
    }
    this._fl = false;
  }

  // Gives the connections the `message` listeners: a new array (a delivery in progress keeps its
  // snapshot), or null when one of them is `once` (then every message comes through the machine).
  _pub() {
    const d = this._d;
    if (!d) return;
    let once = this._done;
    const m = [];
    for (const l of this._ls) {
      if (l.e === 'message') {
        once = once || l.o;
        m.push(l.f);
      }
    }
    d.m = once ? null : m;
  }

  // After an input: the connection JS may deliver for (none once `close` was delivered) and the last id.
  _push() {
    const d = this._d;
    if (!d) return;
    const c = this._done ? 0 : this._dv;
    if (this._l !== this._sl) {
      d.l = this._l;
      this._sl = this._l;
    }
    if (c !== this._g) {
      d.c = c;
      this._g = c;
    }
  }
}

// A relay's coded refusal in an error answer `j`, as `make(code, message)`; `fallback` as INTERNAL.
export function sseRefusal(j, fallback, make) {
  const e = sseGet(j, 'error');
  const code = sseStrOf(e, 'code');
  if (sseCode(code) < 0) return make('INTERNAL', fallback);
  const m = sseStrOf(e, 'message');
  return make(code, m === undefined ? '' : m);
}

// The page's `online` and `offline` events: adds `f` as the listener of both (`add`), or removes it;
// nothing where the global object has no `addEventListener`.
function sseNetwork(f, add) {
  const g = globalThis;
  if (typeof g.addEventListener === 'function') {
    for (const t of ['online', 'offline']) (add ? g.addEventListener : g.removeEventListener).call(g, t, f);
  }
}
