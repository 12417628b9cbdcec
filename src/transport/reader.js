// The browser SDK's connections and per-event path, in plain JS (used by the class, src/channel.js;
// the package's assembly writes both into each entry). A `message` with a new id goes from the
// parsed frame straight to the page's listeners, without an input to the machine per event;
// everything else (control frames, an id the machine must judge, a malformed frame, a lost
// connection) goes to the class through `d.f`. Names used here are the protocol's
// (tests/reader_js.rs checks them).
//
// `d` (sseDispatch) is shared by a channel (src/channel.js) and its connections:
//   c  the connection whose messages may be delivered here (0: none), set by the channel
//   l  the last id delivered: set by the channel, advanced here, read back by the channel
//   t  Date.now() of the last frame read here
//   m  the `message` listeners (a new array on every change), or null: the channel delivers
//   f  the channel's reader: a parsed event object, or a boolean for a lost connection (whether it
//      had opened); k the connection it comes from
export function sseDispatch(f) {
  return { c: 0, l: 0, t: 0, m: null, k: 0, f };
}

// Opens connection `conn` (a WebSocket when `ws`, else an EventSource) to `url`; returns the
// function that closes it, after which nothing reaches `d` from it. Throws when the browser
// refuses the URL.
export function sseConnect(d, conn, ws, url) {
  let live = true;
  let opened = false;
  const pass = (v) => {
    if (live && d.f) {
      d.k = conn;
      d.f(v);
    }
  };
  const one = (v) => {
    const m = d.m;
    let id;
    if (live && m && d.c === conn && v && v.event === 'message' && (id = v.id) > d.l && Number.isInteger(id)) {
      d.l = id;
      const data = v.data;
      for (let i = 0; i < m.length; i++) {
        const f = m[i]; // called as a plain function, as the channel calls listeners
        try {
          f(data);
        } catch (e) {
          console.error('SSEChannel: an event listener threw:', e);
        }
      }
    } else pass(v);
  };
  // A frame or a batch (`batch=1`: an array of event objects in id order); not one: lost.
  const frames = (e) => {
    let v = null;
    try {
      v = JSON.parse(e.data);
    } catch (_) {}
    d.t = Date.now();
    if (!Array.isArray(v)) one(v);
    else if (!v.length) pass(true);
    else for (let i = 0; i < v.length; i++) one(v[i]);
  };
  const s = ws ? new WebSocket(url) : new EventSource(url);
  s.onopen = () => {
    opened = true;
  };
  if (ws) {
    s.onmessage = frames;
    // `error` is always followed by `close`, so `close` alone reports failures.
    s.onclose = () => pass(opened);
  } else {
    s.addEventListener('batch', frames);
    for (const event of ['ready', 'message', 'end', 'error', 'ping']) {
      s.addEventListener(event, (e) => {
        // A plain `error` Event (no data) is the connection failing or dropping. Closed at once
        // so that the browser does not reconnect on its own: the SDK's backoff is the only retry
        // policy.
        if (typeof e.data !== 'string') {
          s.close();
          return pass(opened);
        }
        let data;
        try {
          data = JSON.parse(e.data);
        } catch (_) {
          s.close();
          return pass(true);
        }
        d.t = Date.now();
        // The id of `message`, `end` and the final `error`; a frame without an `id:` line repeats
        // the last one, which the channel tells apart.
        one({ event, id: +e.lastEventId, data });
      });
    }
  }
  return () => {
    live = false;
    s.close();
  };
}
