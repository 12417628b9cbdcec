//! The channel's core: state, listeners, connection lifecycle.
//!
//! Everything lives in one `Inner` behind `Rc<RefCell<_>>`. JS listeners are
//! never called while it is borrowed: operations change the state and queue
//! events, then [`flush`] delivers the queue in order, so a listener may call
//! back into the channel (e.g. `close()` from `message`) and the order
//! open → message* → end → close still holds.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use js_sys::{Function, Object, Promise, Reflect};
use sse_channel_protocol::api::{field, CreateChannelResponse};
use sse_channel_protocol::{Descriptor, ErrorCode, EventKind, LostRange};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::http::create_channel;
use super::options::{Options, TransportChoice};
use crate::backoff;
use crate::js;
use crate::js_error::{js_error, js_error_with};
use crate::state::{after_failure, Cursor, Decision, State};
use crate::timer::Timeout;
use crate::transport::{self, Incoming, Kind, Transport};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(a: &str, b: &JsValue);
}

/// The page's network events, `online` first.
const NETWORK_EVENTS: [&str; 2] = ["online", "offline"];

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
    event: String,
    f: Function,
    once: bool,
}

pub(crate) type Shared = Rc<RefCell<Inner>>;

/// All the state of one `SSEChannel`.
pub(crate) struct Inner {
    opts: Options,
    state: State,
    /// Bumped on every connection attempt and every teardown; callbacks carry
    /// the generation they were made for and return early when it is stale.
    gen: u32,
    cursor: Cursor,
    listeners: Vec<Listener>,
    queue: VecDeque<(Ev, JsValue)>,
    flushing: bool,
    relay: Option<String>,
    created: Option<CreateChannelResponse>,
    /// `open()` has resolved (the first `ready` arrived).
    opened: bool,
    /// The transport in use, or to use for the next attempt.
    kind: Option<Kind>,
    /// A WebSocket reached `ready` once: `auto` no longer falls back.
    ws_proven: bool,
    conn: Option<Box<dyn Transport>>,
    /// The current connection delivered its `ready` frame.
    live: bool,
    heartbeat_ms: Option<u64>,
    /// Per-connection deadline: `openTimeoutMs` until `ready`, then the
    /// heartbeat timeout after the last frame (`last_frame_at`).
    watchdog: Option<Timeout>,
    /// `Date.now()` when the current connection last delivered a frame.
    last_frame_at: f64,
    retry: Option<Timeout>,
    open_timer: Option<Timeout>,
    /// Failed attempts since the stream was last live.
    failed: u32,
    pending_open: Option<(Function, Function)>,
    /// Listener of the page's `online` and `offline` events.
    network: Option<Closure<dyn FnMut(web_sys::Event)>>,
    /// An `offline` event came while the stream was live: the connection it
    /// rode on may be gone without a word, so `online` replaces it at once.
    went_offline: bool,
    /// The channel itself, from `open()` until closed: a channel that is
    /// running stays alive when the page drops its last reference to the JS
    /// object (wasm-bindgen frees unreachable objects through a
    /// FinalizationRegistry), as a browser keeps an open WebSocket alive.
    keepalive: Option<Shared>,
}

impl Inner {
    pub(crate) fn new(opts: Options) -> Self {
        Self {
            opts,
            state: State::Idle,
            gen: 0,
            cursor: Cursor::default(),
            listeners: Vec::new(),
            queue: VecDeque::new(),
            flushing: false,
            relay: None,
            created: None,
            opened: false,
            kind: None,
            ws_proven: false,
            conn: None,
            live: false,
            heartbeat_ms: None,
            watchdog: None,
            last_frame_at: 0.0,
            retry: None,
            open_timer: None,
            failed: 0,
            pending_open: None,
            network: None,
            went_offline: false,
            keepalive: None,
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    pub(crate) fn channel_id(&self) -> Option<&str> {
        self.created.as_ref().map(|c| c.channel_id.as_str())
    }

    pub(crate) fn last_event_id(&self) -> u64 {
        self.cursor.last()
    }

    pub(crate) fn transport(&self) -> Option<Kind> {
        self.kind
    }

    /// The descriptor, once `open()` resolved.
    pub(crate) fn descriptor(&self) -> Option<Descriptor> {
        if !self.opened {
            return None;
        }
        let c = self.created.as_ref()?;
        Some(Descriptor::new(
            self.relay.as_deref()?,
            &c.channel_id,
            &c.publish_token,
            c.expires_at,
        ))
    }

    // ---- listeners ----

    pub(crate) fn add_listener(&mut self, event: &str, f: Function, once: bool) {
        self.listeners.push(Listener {
            event: event.to_owned(),
            f,
            once,
        });
    }

    /// Removes the most recently added registration of `f` for `event`; a
    /// function that was never added removes nothing.
    pub(crate) fn remove_listener(&mut self, event: &str, f: &JsValue) {
        if let Some(i) = self
            .listeners
            .iter()
            .rposition(|l| l.event == event && JsValue::from(&l.f) == *f)
        {
            self.listeners.remove(i);
        }
    }

    pub(crate) fn remove_all_listeners(&mut self, event: Option<&str>) {
        match event {
            Some(e) => self.listeners.retain(|l| l.event != e),
            None => self.listeners.clear(),
        }
    }

    fn emit(&mut self, ev: Ev, arg: JsValue) {
        self.queue.push_back((ev, arg));
    }

    /// The one function that changes the state; it queues the `state` event.
    fn set_state(&mut self, to: State) -> bool {
        let Some(t) = self.state.transition(to) else {
            return false;
        };
        self.state = to;
        let o = Object::new();
        let _ = Reflect::set(&o, &"from".into(), &t.from.as_str().into());
        let _ = Reflect::set(&o, &"to".into(), &t.to.as_str().into());
        self.emit(Ev::State, o.into());
        true
    }

    /// Drops the connection and every timer of it, so its callbacks go stale.
    fn drop_connection(&mut self) {
        self.gen = self.gen.wrapping_add(1);
        if let Some(mut c) = self.conn.take() {
            c.close();
        }
        self.live = false;
        self.watchdog = None;
        self.retry = None;
    }

    /// The final teardown: `closed`, then `error` (if any), then `close`.
    fn finish(&mut self, error: Option<JsValue>) {
        if self.state.is_closed() {
            return;
        }
        self.drop_connection();
        self.open_timer = None;
        if let (Some(cb), Some(t)) = (self.network.take(), global_target()) {
            for name in NETWORK_EVENTS {
                let _ = t.remove_event_listener_with_callback(name, cb.as_ref().unchecked_ref());
            }
        }
        self.set_state(State::Closed);
        if let Some(err) = &error {
            self.emit(Ev::Error, err.clone());
        }
        self.emit(Ev::Close, JsValue::UNDEFINED);
        // Never the last reference: every caller holds one (see `with`).
        self.keepalive = None;
        if let Some((_, reject)) = self.pending_open.take() {
            let err = error.unwrap_or_else(|| {
                js_error(
                    ErrorCode::InvalidState,
                    "the channel was closed before open() completed",
                )
            });
            let _ = reject.call1(&JsValue::UNDEFINED, &err);
        }
    }
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
    loop {
        let (fns, arg) = {
            let mut i = shared.borrow_mut();
            let Some((ev, arg)) = i.queue.pop_front() else {
                i.flushing = false;
                return;
            };
            let name = ev.as_str();
            let fns: Vec<Function> = i
                .listeners
                .iter()
                .filter(|l| l.event == name)
                .map(|l| l.f.clone())
                .collect();
            i.listeners.retain(|l| !(l.once && l.event == name));
            (fns, arg)
        };
        for f in fns {
            if let Err(e) = f.call1(&JsValue::UNDEFINED, &arg) {
                // A throwing listener is reported and does not stop the others.
                console_error("SSEChannel: an event listener threw:", &e);
            }
        }
    }
}

fn global_target() -> Option<web_sys::EventTarget> {
    let g = js_sys::global();
    Reflect::has(&g, &"addEventListener".into())
        .unwrap_or(false)
        .then(|| g.unchecked_into())
}

/// `open()`.
pub(crate) fn open(shared: &Shared) -> Promise {
    let mut settle = None;
    let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
    let (resolve, reject) = settle.expect("the Promise executor runs synchronously");
    {
        let mut i = shared.borrow_mut();
        if i.state != State::Idle {
            let msg = if i.state.is_closed() {
                "open() after close()"
            } else {
                "open() was already called"
            };
            let _ = reject.call1(&JsValue::UNDEFINED, &js_error(ErrorCode::InvalidState, msg));
            return promise;
        }
        i.pending_open = Some((resolve, reject));
        i.keepalive = Some(shared.clone());
        i.set_state(State::Connecting);
        let Some(relay) = i.opts.relay.clone() else {
            i.finish(Some(js_error(
                ErrorCode::InvalidOptions,
                "no relay: pass { relay: 'https://…' } or call SSEChannel.configure({ relay }) first",
            )));
            drop(i);
            flush(shared);
            return promise;
        };
        i.relay = Some(relay.clone());
        let weak = Rc::downgrade(shared);
        i.open_timer = Some(Timeout::new(i.opts.open_timeout_ms, move || {
            with(&weak, |s| {
                let mut i = s.borrow_mut();
                if !i.opened {
                    i.finish(Some(js_error(
                        ErrorCode::OpenTimeout,
                        "no live subscription within openTimeoutMs",
                    )));
                }
            })
        }));
        if let Some(target) = global_target() {
            let weak = Rc::downgrade(shared);
            let cb = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                let online = e.type_() == NETWORK_EVENTS[0];
                with(&weak, |s| on_network(s, online))
            });
            for name in NETWORK_EVENTS {
                let _ = target.add_event_listener_with_callback(name, cb.as_ref().unchecked_ref());
            }
            i.network = Some(cb);
        }
        let ttl = i.opts.ttl_secs;
        let gen = i.gen;
        let weak = Rc::downgrade(shared);
        wasm_bindgen_futures::spawn_local(async move {
            let result = create_channel(&relay, ttl).await;
            let Some(s) = weak.upgrade() else { return };
            {
                let mut i = s.borrow_mut();
                if i.gen != gen || i.state != State::Connecting {
                    return;
                }
                match result {
                    Ok(created) => i.created = Some(created),
                    Err((code, msg)) => {
                        // Creation is not retried: its errors are the relay's answer
                        // (or no relay at all) and open() reports them as they are.
                        i.finish(Some(js_error(code, &msg)));
                        drop(i);
                        flush(&s);
                        return;
                    }
                }
            }
            connect(&s);
        });
    }
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
    shared.borrow_mut().finish(None);
    flush(shared);
}

/// A new connection attempt with the current transport and resume point.
fn connect(shared: &Shared) {
    let failed = {
        let mut i = shared.borrow_mut();
        if i.state.is_closed() {
            return;
        }
        i.drop_connection();
        let gen = i.gen;
        let kind = i.kind.unwrap_or(match i.opts.transport {
            TransportChoice::Auto => Kind::WebSocket,
            TransportChoice::Only(k) => k,
        });
        i.kind = Some(kind);
        let (Some(relay), Some(c)) = (i.relay.as_deref(), i.created.as_ref()) else {
            return;
        };
        let url = transport::stream_url(
            kind,
            relay,
            &c.channel_id,
            &c.subscribe_token,
            i.cursor.last(),
        );
        let weak = Rc::downgrade(shared);
        let sink: transport::Sink = Rc::new(move |inc| with(&weak, |s| on_incoming(s, gen, inc)));
        match transport::connect(kind, &url, sink) {
            Ok(conn) => {
                i.conn = Some(conn);
                let ms = i.opts.open_timeout_ms;
                arm_watchdog(&mut i, shared, ms);
                false
            }
            Err(_) => true,
        }
    };
    if failed {
        on_failure(
            shared,
            ErrorCode::NetworkError,
            "the browser refused the stream URL",
        );
    }
}

fn arm_watchdog(i: &mut Inner, shared: &Shared, ms: u32) {
    let gen = i.gen;
    let weak = Rc::downgrade(shared);
    i.watchdog = Some(Timeout::new(ms, move || {
        with(&weak, |s| {
            let live = {
                let mut i = s.borrow_mut();
                if i.gen != gen {
                    return;
                }
                if i.live {
                    let timeout = i.opts.heartbeat_timeout(i.heartbeat_ms).unwrap_or(0);
                    let remaining = f64::from(timeout) - (js_sys::Date::now() - i.last_frame_at);
                    if remaining >= 1.0 {
                        // A frame came since this deadline was set: wait for the rest.
                        arm_watchdog(&mut i, s, remaining as u32);
                        return;
                    }
                }
                i.live
            };
            if live {
                on_failure(
                    s,
                    ErrorCode::HeartbeatTimeout,
                    "no event or heartbeat within heartbeatTimeoutMs",
                );
            } else {
                on_failure(
                    s,
                    ErrorCode::OpenTimeout,
                    "the stream did not become live within openTimeoutMs",
                );
            }
        })
    }));
}

/// Every frame proves the connection alive. Rather than re-arming a timer per
/// frame (a `setTimeout` and a closure per message), note the time; the
/// watchdog, when it fires, waits again for whatever remains.
fn touch(i: &mut Inner, shared: &Shared) {
    i.last_frame_at = js_sys::Date::now();
    if i.watchdog.is_none() {
        if let Some(ms) = i.opts.heartbeat_timeout(i.heartbeat_ms) {
            arm_watchdog(i, shared, ms);
        }
    }
}

fn on_incoming(shared: &Shared, gen: u32, inc: Incoming) {
    let mut i = shared.borrow_mut();
    if i.gen != gen || i.state.is_closed() {
        return;
    }
    let (kind, id, data) = match inc {
        Incoming::Frame { kind, id, data } => (kind, id, data),
        Incoming::Lost { opened } => {
            let fall_back = !opened
                && !i.live
                && !i.ws_proven
                && i.kind == Some(Kind::WebSocket)
                && i.opts.transport == TransportChoice::Auto;
            drop(i);
            if fall_back {
                // `auto`: a WebSocket that cannot even open (a proxy without
                // upgrade support, a blocked port) → EventSource, at once and for good.
                shared.borrow_mut().kind = Some(Kind::EventSource);
                connect(shared);
            } else {
                on_failure(
                    shared,
                    ErrorCode::NetworkError,
                    "the stream connection was lost",
                );
            }
            return;
        }
    };
    match kind {
        EventKind::Ready => {
            i.heartbeat_ms = js::get_u64(&data, field::HEARTBEAT_MS);
            i.live = true;
            i.failed = 0;
            i.open_timer = None;
            if i.kind == Some(Kind::WebSocket) {
                i.ws_proven = true;
            }
            // From now on the heartbeat deadline, not the open deadline.
            i.watchdog = None;
            touch(&mut i, shared);
            i.set_state(State::Open);
            if !i.opened {
                i.opened = true;
                i.emit(Ev::Open, JsValue::UNDEFINED);
                if let Some((resolve, _)) = i.pending_open.take() {
                    let _ = resolve.call0(&JsValue::UNDEFINED);
                }
            }
        }
        EventKind::Message => {
            touch(&mut i, shared);
            // Ids already seen (a replay overlapping what arrived before the cut)
            // are dropped: every message is delivered once.
            if id.is_some_and(|id| i.cursor.accept(id)) {
                i.emit(Ev::Message, data);
            }
        }
        EventKind::End => {
            if let Some(id) = id {
                i.cursor.accept(id);
            }
            i.drop_connection();
            i.emit(Ev::End, data);
            i.finish(None);
        }
        EventKind::Error => {
            let code = js::get_string(&data, field::CODE)
                .and_then(|c| ErrorCode::parse(&c))
                .unwrap_or(ErrorCode::Internal);
            let message = js::get_string(&data, field::MESSAGE)
                .unwrap_or_else(|| "the relay closed the stream with an error".to_owned());
            if code == ErrorCode::MessagesLost {
                touch(&mut i, shared);
                let from = js::get_u64(&data, field::FROM);
                let to = js::get_u64(&data, field::TO);
                if let (Some(from), Some(to)) = (from, to) {
                    i.cursor.skip(LostRange { from, to });
                    let err = js_error_with(
                        code,
                        &message,
                        &[
                            (field::FROM, (from as f64).into()),
                            (field::TO, (to as f64).into()),
                        ],
                    );
                    i.emit(Ev::Error, err);
                }
                return;
            }
            drop(i);
            on_failure(shared, code, &message);
        }
        _ => touch(&mut i, shared),
    }
}

/// The payload of `reconnecting`: `{attempt, delayMs, code}`.
fn reconnecting_info(attempt: u32, delay_ms: u32, code: ErrorCode) -> JsValue {
    js::object(&[
        ("attempt", f64::from(attempt).into()),
        ("delayMs", f64::from(delay_ms).into()),
        ("code", code.as_str().into()),
    ])
}

/// Every failure of a stream ends here: retry with backoff, or give up.
fn on_failure(shared: &Shared, code: ErrorCode, message: &str) {
    let mut i = shared.borrow_mut();
    if i.state.is_closed() {
        return;
    }
    i.drop_connection();
    match after_failure(code, i.failed, i.opts.max_attempts) {
        Decision::Fail(c) => {
            let err = if c == code {
                js_error(c, message)
            } else {
                js_error_with(
                    c,
                    "reconnection attempts exhausted",
                    &[("cause", js_error(code, message))],
                )
            };
            i.finish(Some(err));
        }
        Decision::Retry { attempt } => {
            if i.state == State::Open {
                i.set_state(State::Reconnecting);
            }
            let delay = backoff::delay(
                attempt,
                i.opts.min_delay_ms,
                i.opts.max_delay_ms,
                js_sys::Math::random(),
            );
            i.failed = i.failed.saturating_add(1);
            i.emit(
                Ev::Reconnecting,
                reconnecting_info(attempt + 1, delay, code),
            );
            let weak = Rc::downgrade(shared);
            let gen = i.gen;
            i.retry = Some(Timeout::new(delay, move || {
                with(&weak, |s| {
                    if s.borrow().gen == gen {
                        connect(s);
                    }
                })
            }));
        }
    }
}

/// The page's network events: `online` skips the rest of a pending backoff
/// delay, and replaces a live connection at once when `offline` came since
/// (after a network change the old connection is often dead without a word;
/// the resume makes the replacement lossless). `offline` alone changes nothing:
/// the network may come back before the connection notices.
fn on_network(shared: &Shared, online: bool) {
    let reconnect_now = {
        let mut i = shared.borrow_mut();
        if i.state.is_closed() {
            return;
        }
        if !online {
            i.went_offline = i.live;
            return;
        }
        let replace = std::mem::take(&mut i.went_offline) && i.live;
        if replace {
            i.set_state(State::Reconnecting);
            i.emit(
                Ev::Reconnecting,
                reconnecting_info(1, 0, ErrorCode::NetworkError),
            );
        }
        replace || i.retry.is_some()
    };
    if reconnect_now {
        connect(shared);
    }
}
