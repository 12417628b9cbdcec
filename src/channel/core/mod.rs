//! The executor of the channel's decisions: it feeds what the page, the relay,
//! the network and the timers do into the [`Machine`] and carries out the
//! effects it returns (connect, arm a timer, emit, settle `open()`). No
//! decision is made here (see `src/machine/`).
//!
//! Everything lives in one `Inner` behind `Rc<RefCell<_>>`. JS listeners are
//! never called while it is borrowed: effects queue events, then [`flush`]
//! delivers the queue in order, so a listener may call back into the channel
//! (e.g. `close()` from `message`) and the order open → message* → end → close
//! still holds.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use js_sys::{Function, Promise, Reflect};
use sse_channel_protocol::api::{field, CreateChannelResponse};
use sse_channel_protocol::{ErrorCode, EventKind, LostRange};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::http::{cancel_channel, create_channel};
use super::options::Options;
use crate::js;
use crate::js_error::{js_error, js_error_with};
use crate::machine::{Effect, Failure, Input, Machine, Why};
use crate::state::State;
use crate::timer::Timeout;
use crate::transport::{self, Incoming, Kind, Transport};

mod fast;
mod run;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(a: &str, b: &JsValue);
}

// The page's `online` and `offline` listener, added and removed in one small JavaScript function
// (`sseNetwork` in src/browser.js) instead of a `globalThis` accessor, a lookup and two
// `EventTarget` calls per event name in wasm.
#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    #[wasm_bindgen(js_name = sseNetwork)]
    fn sse_network(f: &JsValue, add: bool);
}

/// Event names the channel emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ev {
    Open,
    Message,
    End,
    Close,
    Error,
    Reconnecting,
    State,
}

impl Ev {
    /// The event of this name, if the channel emits it.
    fn parse(name: &str) -> Option<Ev> {
        [
            Ev::Open,
            Ev::Message,
            Ev::End,
            Ev::Close,
            Ev::Error,
            Ev::Reconnecting,
            Ev::State,
        ]
        .into_iter()
        .find(|e| e.as_str() == name)
    }

    const fn as_str(self) -> &'static str {
        match self {
            Ev::Open => "open",
            Ev::Message => "message",
            Ev::End => "end",
            Ev::Close => "close",
            Ev::Error => "error",
            Ev::Reconnecting => "reconnecting",
            Ev::State => "state",
        }
    }
}

struct Listener {
    event: Ev,
    /// Shared, so that the snapshot `flush` takes before calling copies no JS reference.
    f: Rc<Function>,
    once: bool,
}

pub(crate) type Shared = Rc<RefCell<Inner>>;

/// All the state of one `SSEChannel`: the machine and the resources that carry
/// out its effects.
pub(crate) struct Inner {
    relay: Option<String>,
    ttl_secs: Option<u64>,
    abandon_after_ms: Option<u64>,
    /// Made by `SSEChannel.attach`: no publish token, `toJSON()` throws.
    attached: bool,
    m: Machine,
    listeners: Vec<Listener>,
    queue: VecDeque<(Ev, JsValue)>,
    flushing: bool,
    created: Option<CreateChannelResponse>,
    conn: Option<Transport>,
    /// One slot per [`Timer`].
    timers: [Option<Timeout>; 3],
    /// The promise of the `open()` call being handled, then of the pending one.
    opening: Option<(Function, Function)>,
    pending_open: Option<(Function, Function)>,
    /// Listener of the page's `online` and `offline` events.
    network: Option<Closure<dyn FnMut(JsValue)>>,
    /// The relay's message of the last failure it reported ([`Why::Relay`]).
    relay_message: String,
    /// `details` of the final `error` event ([`Input::Final`]).
    details: JsValue,
    /// The data of the frame being handled ([`Effect::Message`], [`Effect::End`]).
    data: JsValue,
    /// The effects buffer, reused.
    out: Vec<Effect>,
    /// What the per-event path in JS shares with the executor (`fast.rs`),
    /// from the first connection.
    fast: Option<fast::Fast>,
    /// The connection JS may deliver messages for (0: none), and the last id
    /// JS was told or delivered, as last known here.
    granted: u32,
    shared_l: f64,
    /// `close` was delivered: the listeners were released and later ones are
    /// not kept. A page's listener often closes over its channel (it is in
    /// scope); kept in wasm, it would hold the channel's JS object alive
    /// forever (a cycle through wasm that no garbage collector sees).
    done: bool,
    /// The channel itself, from `open()` until closed: a channel that is
    /// running stays alive when the page drops its last reference to the JS
    /// object (wasm-bindgen frees unreachable objects through a
    /// FinalizationRegistry), as a browser keeps an open WebSocket alive.
    keepalive: Option<Shared>,
}

impl Inner {
    /// A channel to create on `open()`; with `sub` (`SSEChannel.attach`), the
    /// existing channel `sub` names, subscribed from its `lastEventId`.
    pub(crate) fn new(opts: Options, sub: Option<(CreateChannelResponse, u64)>) -> Self {
        // The backoff jitter's seed: one draw per channel.
        let seed = (js_sys::Math::random() * 4_294_967_296.0) as u32;
        let attached = sub.is_some();
        let (created, m) = match sub {
            Some((c, last)) => (Some(c), Machine::attached(opts.cfg, seed, last)),
            None => (None, Machine::new(opts.cfg, seed)),
        };
        Self {
            relay: opts.relay,
            ttl_secs: opts.ttl_secs,
            abandon_after_ms: opts.abandon_after_ms,
            attached,
            m,
            listeners: Vec::new(),
            queue: VecDeque::new(),
            flushing: false,
            created,
            conn: None,
            timers: [None, None, None],
            opening: None,
            pending_open: None,
            network: None,
            relay_message: String::new(),
            details: JsValue::UNDEFINED,
            data: JsValue::UNDEFINED,
            out: Vec::new(),
            fast: None,
            granted: 0,
            shared_l: 0.0,
            done: false,
            keepalive: None,
        }
    }

    pub(crate) fn state(&self) -> State {
        self.m.state()
    }

    pub(crate) fn channel_id(&self) -> Option<&str> {
        self.created.as_ref().map(|c| c.channel_id.as_str())
    }

    pub(crate) fn transport(&self) -> Option<Kind> {
        self.m.transport()
    }

    /// Made by `SSEChannel.attach`.
    pub(crate) fn attached(&self) -> bool {
        self.attached
    }

    /// `toSubscription()`'s parts: the relay, the created channel and the last
    /// event id, once the channel exists.
    pub(crate) fn subscription(&self) -> Option<(&str, &CreateChannelResponse, u64)> {
        Some((
            self.relay.as_deref()?,
            self.created.as_ref()?,
            self.last_event_id(),
        ))
    }

    /// The descriptor's parts (the relay, without trailing slash, and the created
    /// channel), once `open()` resolved; `toJSON()` writes them out.
    pub(crate) fn descriptor(&self) -> Option<(&str, &CreateChannelResponse)> {
        if !self.m.opened() || self.attached {
            return None;
        }
        Some((self.relay.as_deref()?, self.created.as_ref()?))
    }

    // ---- listeners ----

    /// Adds `f` for `event`; a name the channel never emits (or a listener added
    /// after `close`) is not kept: nothing would call it.
    pub(crate) fn add_listener(&mut self, event: &str, f: Function, once: bool) {
        let Some(event) = Ev::parse(event) else {
            return;
        };
        if self.done {
            // `close` was delivered: nothing will call it (see `done`).
            return;
        }
        self.listeners.push(Listener {
            event,
            f: Rc::new(f),
            once,
        });
        if event == Ev::Message {
            self.publish_listeners();
        }
    }

    /// Removes the most recently added registration of `f` for `event`; a
    /// function that was never added removes nothing.
    pub(crate) fn remove_listener(&mut self, event: &str, f: &JsValue) {
        let Some(event) = Ev::parse(event) else {
            return;
        };
        if let Some(i) = self
            .listeners
            .iter()
            .rposition(|l| l.event == event && AsRef::<JsValue>::as_ref(&*l.f) == f)
        {
            self.listeners.remove(i);
            if event == Ev::Message {
                self.publish_listeners();
            }
        }
    }

    pub(crate) fn remove_all_listeners(&mut self, event: Option<&str>) {
        match event.map(Ev::parse) {
            Some(Some(e)) => self.listeners.retain(|l| l.event != e),
            Some(None) => {}
            None => self.listeners.clear(),
        }
        self.publish_listeners();
    }

    fn emit(&mut self, ev: Ev, arg: JsValue) {
        self.queue.push_back((ev, arg));
    }

    fn error(&self, code: ErrorCode, why: Why) -> JsValue {
        js_error(
            code,
            match why {
                Why::Relay => &self.relay_message,
                Why::Text(t) => t,
            },
        )
    }
}

/// Feeds `input` to the machine and carries out its effects (and the inputs
/// they cause at once). The caller flushes the events.
fn step(shared: &Shared, input: Input) {
    let mut i = shared.borrow_mut();
    let mut out = std::mem::take(&mut i.out);
    out.clear();
    i.pull(&mut out);
    let mut next = Some(input);
    while let Some(input) = next.take() {
        out.clear();
        i.m.handle(js_sys::Date::now(), input, &mut out);
        for &e in &out {
            if let Some(follow) = i.run(e, shared) {
                next = Some(follow);
            }
        }
    }
    out.clear();
    i.out = out;
    i.push();
}

/// Delivers queued events, in order, to a snapshot of the listeners of each.
/// Re-entrant calls (from a listener) return at once; the outer loop goes on.
pub(crate) fn flush(shared: &Shared) {
    {
        let mut i = shared.borrow_mut();
        if i.flushing {
            return;
        }
        i.flushing = true;
    }
    let call = |f: &Rc<Function>, arg: &JsValue| {
        if let Err(e) = f.call1(&JsValue::UNDEFINED, arg) {
            // A throwing listener is reported and does not stop the others.
            console_error("SSEChannel: an event listener threw:", &e);
        }
    };
    loop {
        // The snapshot: the first listener apart, so that the common case (one
        // listener per event, every message) allocates nothing.
        let (first, rest, arg) = {
            let mut i = shared.borrow_mut();
            let Some((ev, arg)) = i.queue.pop_front() else {
                i.flushing = false;
                return;
            };
            let mut first = None;
            let mut rest = Vec::new();
            let mut once = false;
            for l in i.listeners.iter().filter(|l| l.event == ev) {
                once |= l.once;
                match first {
                    None => first = Some(l.f.clone()),
                    Some(_) => rest.push(l.f.clone()),
                }
            }
            if once {
                i.listeners.retain(|l| !(l.once && l.event == ev));
            }
            if ev == Ev::Close {
                // The last event: release every listener (see `done`).
                i.done = true;
                i.listeners.clear();
            }
            if (once && ev == Ev::Message) || ev == Ev::Close {
                i.publish_listeners();
                i.push();
            }
            (first, rest, arg)
        };
        if let Some(f) = first {
            call(&f, &arg);
        }
        for f in &rest {
            call(f, &arg);
        }
    }
}

// A promise and its two settling functions from one small JavaScript function (`ssePromise` in
// src/browser.js): `Promise::new` with a Rust callback costs the bundle a closure type of its own.
#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    #[wasm_bindgen(js_name = ssePromise)]
    fn sse_promise() -> JsValue;
}

/// A new promise, its `resolve` and its `reject`.
fn deferred() -> (Promise, (Function, Function)) {
    let d = sse_promise();
    let f = |k| js::get(&d, k).unchecked_into::<Function>();
    (f("p").unchecked_into(), (f("r"), f("j")))
}

/// `open()`.
pub(crate) fn open(shared: &Shared) -> Promise {
    let (promise, settle) = deferred();
    shared.borrow_mut().opening = Some(settle);
    step(shared, Input::Open);
    flush(shared);
    promise
}

/// Runs `f` on the channel if it still exists, then delivers what it queued.
fn with(weak: &Weak<RefCell<Inner>>, f: impl FnOnce(&Shared)) {
    if let Some(s) = weak.upgrade() {
        f(&s);
        flush(&s);
    }
}

/// `close()`: idempotent; `close` is emitted exactly once per channel.
pub(crate) fn close(shared: &Shared) {
    step(shared, Input::Close);
    flush(shared);
}

/// `cancel(reason?)`: asks the relay to cancel the channel; the relay then
/// sends the stored `CHANNEL_CANCELLED` event, which closes it. Rejects with
/// `INVALID_STATE` before the channel exists, or with the relay's code.
pub(crate) fn cancel(shared: &Shared, reason: Option<String>) -> Promise {
    let (promise, (resolve, reject)) = deferred();
    let i = shared.borrow();
    let Some((relay, c, _)) = i.subscription() else {
        let _ = reject.call1(
            &JsValue::UNDEFINED,
            &js_error(
                ErrorCode::InvalidState,
                "cancel(): the channel does not exist yet",
            ),
        );
        return promise;
    };
    cancel_channel(relay, &c.channel_id, &c.subscribe_token, reason, move |r| {
        let _ = match r {
            Ok(()) => resolve.call0(&JsValue::UNDEFINED),
            Err((code, msg)) => reject.call1(&JsValue::UNDEFINED, &js_error(code, &msg)),
        };
    });
    promise
}
