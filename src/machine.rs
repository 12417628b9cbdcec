//! Every decision of the browser client, as a sans-IO state machine: inputs
//! (what the page, the relay, the network and the timers did) go in, effects
//! (connect, arm a timer, emit an event, settle `open()`) come out. No browser
//! API is touched here, and payloads never enter: a message's data stays a JS
//! value in the executor (`src/channel/core.rs`), which only carries effects
//! out. So the whole policy is tested natively, including property tests over
//! arbitrary input sequences.
//!
//! ```
//! use sse_channel::machine::{Config, Effect, Input, Machine, Timer};
//! let mut m = Machine::new(Config::default(), 1);
//! let mut out = Vec::new();
//! m.handle(0.0, Input::Open, &mut out);
//! assert!(out.contains(&Effect::Create));
//! assert!(out.contains(&Effect::Arm(Timer::Open, 10_000)));
//! out.clear();
//! m.handle(5.0, Input::Created, &mut out);
//! let Some(Effect::Connect { conn, .. }) = out.iter().find(|e| matches!(e, Effect::Connect { .. })).copied() else { panic!() };
//! out.clear();
//! m.handle(9.0, Input::Ready { conn, heartbeat_ms: Some(15_000) }, &mut out);
//! assert!(out.contains(&Effect::Opened));
//! ```
//!
//! # Policy
//!
//! - **Creation** (`POST /v1/channels`) failing with a retryable code
//!   (`NETWORK_ERROR`, `RATE_LIMITED`, `SHUTTING_DOWN`, …: [`ErrorCode::should_reconnect`])
//!   is retried with the reconnection backoff until `openTimeoutMs` has passed
//!   since `open()`; then `open()` rejects with the last failure's code
//!   (`OPEN_TIMEOUT` when nothing failed, e.g. a relay that never answers).
//! - **Streams** lost for a retryable reason are replaced after a backoff delay,
//!   resuming after the last id seen; ids already delivered are dropped.
//!   Final codes and a spent `reconnect.maxAttempts` end the channel.
//! - **The failure count** restarts only once a connection proved it works:
//!   a frame after its `ready` (a message, a heartbeat). A path that answers
//!   `ready` and drops at once therefore still spends `maxAttempts`, and its
//!   delays still grow.
//! - **`auto`** starts with WebSocket and falls back to EventSource, for good,
//!   when a WebSocket fails before any WebSocket of this channel delivered
//!   `ready`: refused, dropped, or silent (an upgrade that hangs, or a proxy
//!   that buffers the frames) for half of `openTimeoutMs` ([`Config::ws_trial_ms`]).
//! - **Heartbeats**: every frame proves the connection alive; silence for the
//!   heartbeat timeout replaces it (`HEARTBEAT_TIMEOUT`, a retryable failure).
//!   One watchdog timer per connection, re-armed for the remaining time when it
//!   fires early, rather than a timer per frame.
//! - **Network**: `online` skips the rest of a backoff delay, and replaces a
//!   live connection at once when `offline` came since it was live (unless
//!   `maxAttempts` is 0: nothing reconnects then).
//! - **The final `error` event** (an `error` frame with an id: `FUNCTION_FAILED`
//!   from `writer.fail`, `CHANNEL_CANCELLED` from `cancel()` or `abandonAfterMs`)
//!   is stored and replayed by the relay like `end`: it ends the channel with
//!   `error` then `close`, never a reconnect, also when it arrives on a resumed stream.
//! - **Attached** channels ([`Machine::attached`]) skip creation and resume
//!   after the `lastEventId` of the subscription they were given.
//! - **`close()`**, `end`, and final failures close the channel: the state
//!   becomes `closed`, then `error` (if any), then `close`, exactly once;
//!   nothing is emitted after.

use sse_channel_protocol::{ErrorCode, EventId, LostRange};

use crate::backoff::{self, DEFAULT_MAX_DELAY_MS, DEFAULT_MIN_DELAY_MS};
use crate::state::{after_failure, Cursor, Decision, State, Transition};

/// Default `openTimeoutMs`: 10 s from `open()` to a live subscription.
pub const DEFAULT_OPEN_TIMEOUT_MS: u32 = 10_000;
/// Heartbeat timeout when the relay's `ready` frame gives no interval: 45 s.
pub const FALLBACK_HEARTBEAT_TIMEOUT_MS: u32 = 45_000;
/// The largest delay `setTimeout` takes, in ms; every option in ms is capped here.
pub const MS_MAX: u32 = i32::MAX as u32;

/// The two ways to subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET …/ws`: one JSON text frame per event.
    WebSocket,
    /// `GET …/events`: Server-Sent Events.
    EventSource,
}

impl Kind {
    /// The spelling of the `transport` option and getter.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::WebSocket => "websocket",
            Kind::EventSource => "eventsource",
        }
    }
}

/// Which transport to use (`transport` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportChoice {
    /// `'auto'` (default): WebSocket, falling back to EventSource (see the module docs).
    Auto,
    /// Only this transport.
    Only(Kind),
}

/// The options the decisions depend on (the rest, `relay` and `ttlSecs`, only
/// travel to the relay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// `transport`: default [`TransportChoice::Auto`].
    pub transport: TransportChoice,
    /// `reconnect.minDelayMs`: smallest backoff delay, at least 1. Default 500 ms.
    pub min_delay_ms: u32,
    /// `reconnect.maxDelayMs`: largest backoff delay. Default 10,000 ms.
    pub max_delay_ms: u32,
    /// `reconnect.maxAttempts`: failed attempts in a row before giving up with
    /// `RECONNECT_EXHAUSTED`. Default `None` (unlimited); `Some(0)` never retries.
    pub max_attempts: Option<u32>,
    /// `openTimeoutMs`: from `open()` to a live subscription; also the deadline
    /// of each later connection attempt. Default 10,000 ms.
    pub open_timeout_ms: u32,
    /// `heartbeatTimeoutMs`: silence after which a live connection is replaced.
    /// Default `None`: 2.5 × the relay's announced heartbeat, or 45 s. `Some(0)` disables.
    pub heartbeat_timeout_ms: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            transport: TransportChoice::Auto,
            min_delay_ms: DEFAULT_MIN_DELAY_MS,
            max_delay_ms: DEFAULT_MAX_DELAY_MS,
            max_attempts: None,
            open_timeout_ms: DEFAULT_OPEN_TIMEOUT_MS,
            heartbeat_timeout_ms: None,
        }
    }
}

impl Config {
    /// The heartbeat timeout for a stream whose `ready` announced
    /// `heartbeat_ms`; `None` when the check is disabled.
    ///
    /// ```
    /// use sse_channel::machine::Config;
    /// let c = Config::default();
    /// assert_eq!(c.heartbeat_timeout(Some(1_000)), Some(2_500));
    /// assert_eq!(c.heartbeat_timeout(None), Some(45_000));
    /// let off = Config { heartbeat_timeout_ms: Some(0), ..c };
    /// assert_eq!(off.heartbeat_timeout(Some(1_000)), None);
    /// ```
    pub fn heartbeat_timeout(&self, heartbeat_ms: Option<u64>) -> Option<u32> {
        let ms = match self.heartbeat_timeout_ms {
            Some(ms) => ms,
            None => heartbeat_ms
                .map(|h| (h.saturating_mul(5) / 2).min(u64::from(MS_MAX)) as u32)
                .unwrap_or(FALLBACK_HEARTBEAT_TIMEOUT_MS),
        };
        (ms > 0).then_some(ms)
    }

    /// How long `auto` gives a WebSocket to deliver `ready` before it falls back
    /// to EventSource: half of `openTimeoutMs`, so that EventSource still has
    /// the other half (at least 1 ms).
    pub fn ws_trial_ms(&self) -> u32 {
        (self.open_timeout_ms / 2).max(1)
    }
}

/// The timers a channel may have armed, at most one of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// From `open()` until the first `ready`: `openTimeoutMs`.
    Open,
    /// The current connection's deadline: its open deadline until `ready`, then
    /// the heartbeat timeout.
    Watchdog,
    /// The backoff delay before the next attempt.
    Retry,
}

const TIMERS: [Timer; 3] = [Timer::Open, Timer::Watchdog, Timer::Retry];

impl Timer {
    const fn index(self) -> usize {
        match self {
            Timer::Open => 0,
            Timer::Watchdog => 1,
            Timer::Retry => 2,
        }
    }
}

/// Where the text of a failure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The relay's own message, which the executor kept from the input that
    /// reported the failure ([`Input::CreateFailed`], [`Input::StreamError`]).
    Relay,
    /// A message of the client.
    Text(&'static str),
}

/// A failure to report: `code`, its message, and for `RECONNECT_EXHAUSTED` the
/// failure that spent the last attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The `code` of the `error` event and of the rejection.
    pub code: ErrorCode,
    /// Its message.
    pub why: Why,
    /// The last failure, when `code` is `RECONNECT_EXHAUSTED`.
    pub cause: Option<(ErrorCode, Why)>,
}

impl Failure {
    /// A failure without a cause.
    pub const fn new(code: ErrorCode, why: Why) -> Self {
        Self {
            code,
            why,
            cause: None,
        }
    }
}

const LOST: Why = Why::Text("the stream connection was lost");
const REFUSED: Why = Why::Text("the browser refused the stream URL");
const NOT_LIVE: Why = Why::Text("the stream did not become live within openTimeoutMs");
const SILENT: Why = Why::Text("no event or heartbeat within heartbeatTimeoutMs");
const NO_OPEN: Why = Why::Text("no live subscription within openTimeoutMs");
const EXHAUSTED: Why = Why::Text("reconnection attempts exhausted");

/// What happened. Inputs from a connection carry its id (from
/// [`Effect::Connect`]); inputs of a connection that was given up are ignored,
/// as are timers that are not armed and anything after `closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `open()` was called.
    Open,
    /// The executor found a problem that ends the channel (e.g. no relay).
    Fatal(Failure),
    /// `POST /v1/channels` succeeded.
    Created,
    /// `POST /v1/channels` failed with this code (the executor keeps the message: [`Why::Relay`]).
    CreateFailed(ErrorCode),
    /// The relay's `ready` frame.
    Ready {
        /// The connection.
        conn: u32,
        /// The relay's heartbeat interval, if announced.
        heartbeat_ms: Option<u64>,
    },
    /// A `message` frame; the executor delivers its data on [`Effect::Message`].
    Message {
        /// The connection.
        conn: u32,
        /// Its id (a frame without one is never delivered).
        id: Option<EventId>,
    },
    /// The `end` frame; the executor emits its data on [`Effect::End`].
    End {
        /// The connection.
        conn: u32,
        /// Its id.
        id: Option<EventId>,
    },
    /// A frame with nothing to deliver (heartbeat, pong, a kind this client does not know).
    Alive {
        /// The connection.
        conn: u32,
    },
    /// `MESSAGES_LOST`: the range is gone; the stream goes on.
    Lost {
        /// The connection.
        conn: u32,
        /// The missing ids.
        range: LostRange,
    },
    /// An `error` frame with an id (other than `MESSAGES_LOST`). A new id is the
    /// channel's stored, final `error` event (`FUNCTION_FAILED`,
    /// `CHANNEL_CANCELLED`): it closes the channel without reconnecting; the
    /// executor keeps its message and details. An id already seen is an
    /// in-band error frame ([`Input::StreamError`]): EventSource gives frames
    /// without an `id:` line the last id it saw.
    Final {
        /// The connection.
        conn: u32,
        /// Its id.
        id: EventId,
        /// Its code.
        code: ErrorCode,
    },
    /// An in-band error frame (other than `MESSAGES_LOST`); the stream is over.
    StreamError {
        /// The connection.
        conn: u32,
        /// Its code.
        code: ErrorCode,
    },
    /// The connection failed or closed without a reason; `opened` when its
    /// handshake had completed.
    Dropped {
        /// The connection.
        conn: u32,
        /// The handshake had completed.
        opened: bool,
    },
    /// The browser refused to start the connection (a URL it rejects).
    Refused {
        /// The connection.
        conn: u32,
    },
    /// An armed timer fired.
    Timer(Timer),
    /// The page's `online` event.
    Online,
    /// The page's `offline` event.
    Offline,
    /// `close()` was called.
    Close,
}

/// What the executor must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `open()` is refused: reject it with `INVALID_STATE` (`closed`: after
    /// close, else called twice). Nothing else changes.
    Refuse {
        /// The channel is closed.
        closed: bool,
    },
    /// `open()` is accepted (its promise settles with [`Effect::Opened`],
    /// [`Effect::Fail`] or [`Effect::Close`]): start listening to the page's
    /// `online`/`offline` events (stopped on [`Effect::Close`]).
    Listen,
    /// Send `POST /v1/channels`.
    Create,
    /// Open connection `conn` of `kind`, resuming after `last_event_id`. Never
    /// while another connection is open.
    Connect {
        /// Its id, carried by its inputs.
        conn: u32,
        /// The transport.
        kind: Kind,
        /// The resume point (0: from the start).
        last_event_id: EventId,
    },
    /// Close the open connection and detach its callbacks.
    Disconnect,
    /// (Re)arm a timer to fire in this many ms.
    Arm(Timer, u32),
    /// Cancel a timer.
    Cancel(Timer),
    /// The state changed: emit `state` `{from, to}`.
    State(Transition),
    /// Emit `open` and resolve `open()`.
    Opened,
    /// Emit `message` with the current frame's data.
    Message,
    /// Emit `end` with the current frame's data.
    End,
    /// Emit `error` `MESSAGES_LOST` (with the relay's message) with `from`/`to`.
    Lost(LostRange),
    /// Emit `reconnecting` `{attempt, delayMs, code}`.
    Reconnecting {
        /// 1 for the first retry.
        attempt: u32,
        /// The delay before it.
        delay_ms: u32,
        /// Why.
        code: ErrorCode,
    },
    /// Emit `error` and reject a pending `open()` with it.
    Fail(Failure),
    /// Emit `close`; reject a pending `open()` (`INVALID_STATE`); stop
    /// listening to network events. The last effect of a channel.
    Close,
}

/// The state of one channel's decisions.
#[derive(Debug, Clone)]
pub struct Machine {
    cfg: Config,
    state: State,
    cursor: Cursor,
    /// `POST /v1/channels` succeeded.
    created: bool,
    /// The first `ready` arrived (`open()` resolved).
    opened: bool,
    /// The transport in use, or to use for the next attempt.
    kind: Option<Kind>,
    /// A WebSocket of this channel delivered `ready`: `auto` keeps WebSocket.
    ws_proven: bool,
    /// Id of the last connection started; `connected` when it is open.
    conn: u32,
    connected: bool,
    /// The open connection delivered `ready`.
    live: bool,
    /// The open connection delivered a frame after `ready`: the failure count restarts.
    proven: bool,
    heartbeat_ms: Option<u64>,
    /// `now` of the last frame of the open connection.
    last_frame_at: f64,
    armed: [bool; 3],
    /// Failed attempts since a connection last proved itself.
    failed: u32,
    /// The last failure, reported when the open deadline passes.
    last_failure: Option<(ErrorCode, Why)>,
    /// An `offline` event came while the stream was live.
    went_offline: bool,
    /// xorshift32 state for the backoff jitter.
    seed: u32,
}

impl Machine {
    /// A machine for a channel with these options; `seed` feeds the backoff
    /// jitter (any value; 0 is replaced).
    pub fn new(cfg: Config, seed: u32) -> Self {
        Self {
            cfg,
            state: State::Idle,
            cursor: Cursor::default(),
            created: false,
            opened: false,
            kind: None,
            ws_proven: false,
            conn: 0,
            connected: false,
            live: false,
            proven: false,
            heartbeat_ms: None,
            last_frame_at: 0.0,
            armed: [false; 3],
            failed: 0,
            last_failure: None,
            went_offline: false,
            seed: if seed == 0 { 0x9e37_79b9 } else { seed },
        }
    }

    /// A machine for a channel that already exists (`SSEChannel.attach`):
    /// `open()` subscribes at once, without `POST /v1/channels`, resuming after
    /// `last_event_id` (events up to it were delivered before and are dropped).
    ///
    /// ```
    /// use sse_channel::machine::{Config, Effect, Input, Kind, Machine};
    /// let mut m = Machine::attached(Config::default(), 1, 7);
    /// let mut out = Vec::new();
    /// m.handle(0.0, Input::Open, &mut out);
    /// assert!(!out.contains(&Effect::Create));
    /// assert!(out.contains(&Effect::Connect { conn: 1, kind: Kind::WebSocket, last_event_id: 7 }));
    /// ```
    pub fn attached(cfg: Config, seed: u32, last_event_id: EventId) -> Self {
        let mut m = Self::new(cfg, seed);
        m.created = true;
        m.cursor.accept(last_event_id);
        m
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The last event id delivered or skipped (0 before any).
    pub fn last_event_id(&self) -> EventId {
        self.cursor.last()
    }

    /// The transport in use, `None` before the first attempt.
    pub fn transport(&self) -> Option<Kind> {
        self.kind
    }

    /// `open()` has resolved: the first `ready` arrived (and the channel may since have closed).
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// Feeds one input at time `now` (ms, any monotonic origin) and appends the
    /// effects to `out`, in the order they must be carried out.
    pub fn handle(&mut self, now: f64, input: Input, out: &mut Vec<Effect>) {
        if self.state.is_closed() {
            if input == Input::Open {
                out.push(Effect::Refuse { closed: true });
            }
            return;
        }
        match input {
            Input::Open => {
                if self.state != State::Idle {
                    out.push(Effect::Refuse { closed: false });
                    return;
                }
                self.set_state(State::Connecting, out);
                self.arm(Timer::Open, self.cfg.open_timeout_ms, out);
                out.push(Effect::Listen);
                if self.created {
                    self.connect(now, out);
                } else {
                    out.push(Effect::Create);
                }
            }
            Input::Fatal(f) => self.finish(Some(f), out),
            Input::Created => {
                if self.created || self.state != State::Connecting || self.armed(Timer::Retry) {
                    return;
                }
                self.created = true;
                self.connect(now, out);
            }
            Input::CreateFailed(code) => {
                if self.created || self.state != State::Connecting || self.armed(Timer::Retry) {
                    return;
                }
                self.failure(code, Why::Relay, out);
            }
            Input::Ready { conn, heartbeat_ms } => {
                if !self.current(conn) || self.live {
                    return;
                }
                self.live = true;
                self.heartbeat_ms = heartbeat_ms;
                self.last_frame_at = now;
                if self.kind == Some(Kind::WebSocket) {
                    self.ws_proven = true;
                }
                self.disarm(Timer::Watchdog, out);
                if let Some(ms) = self.cfg.heartbeat_timeout(heartbeat_ms) {
                    self.arm(Timer::Watchdog, ms, out);
                }
                let first = self.state == State::Connecting;
                self.set_state(State::Open, out);
                if first {
                    self.opened = true;
                    self.disarm(Timer::Open, out);
                    out.push(Effect::Opened);
                }
            }
            Input::Message { conn, id } => {
                if !self.frame(now, conn) {
                    return;
                }
                // Ids already seen (a replay overlapping what arrived before
                // the cut) are dropped: every message is delivered once.
                if id.is_some_and(|id| self.cursor.accept(id)) {
                    out.push(Effect::Message);
                }
            }
            Input::Alive { conn } => {
                self.frame(now, conn);
            }
            Input::Lost { conn, range } => {
                if self.frame(now, conn) {
                    self.cursor.skip(range);
                    out.push(Effect::Lost(range));
                }
            }
            Input::End { conn, id } => {
                if !self.frame(now, conn) {
                    return;
                }
                if let Some(id) = id {
                    self.cursor.accept(id);
                }
                self.disconnect(out);
                out.push(Effect::End);
                self.finish(None, out);
            }
            Input::Final { conn, id, code } => {
                if !self.current(conn) {
                    return;
                }
                if self.live && self.cursor.accept(id) {
                    // Like `end`: nothing follows it, so the channel is over.
                    self.frame(now, conn);
                    self.finish(Some(Failure::new(code, Why::Relay)), out);
                } else {
                    // Before `ready`, or an id already seen (EventSource repeats
                    // the last id on frames without one): an in-band error frame.
                    self.failure(code, Why::Relay, out);
                }
            }
            Input::StreamError { conn, code } => {
                if self.current(conn) {
                    self.failure(code, Why::Relay, out);
                }
            }
            Input::Dropped { conn, opened: _ } => {
                if !self.current(conn) {
                    return;
                }
                if self.should_fall_back() {
                    self.fall_back(now, out);
                } else {
                    self.failure(ErrorCode::NetworkError, LOST, out);
                }
            }
            Input::Refused { conn } => {
                if !self.current(conn) {
                    return;
                }
                if self.should_fall_back() {
                    self.fall_back(now, out);
                } else {
                    self.failure(ErrorCode::NetworkError, REFUSED, out);
                }
            }
            Input::Timer(t) => {
                if !self.armed(t) {
                    return;
                }
                self.armed[t.index()] = false;
                match t {
                    Timer::Open => {
                        let f = match self.last_failure {
                            Some((code, why)) => Failure::new(code, why),
                            None => Failure::new(ErrorCode::OpenTimeout, NO_OPEN),
                        };
                        self.finish(Some(f), out);
                    }
                    Timer::Watchdog => self.watchdog(now, out),
                    Timer::Retry => {
                        if self.created {
                            self.connect(now, out);
                        } else {
                            out.push(Effect::Create);
                        }
                    }
                }
            }
            Input::Offline => self.went_offline = self.live,
            Input::Online => {
                // With `maxAttempts: 0` nothing reconnects, not even this: a
                // dead connection is then found by the heartbeat watchdog.
                let replace = std::mem::take(&mut self.went_offline)
                    && self.live
                    && self.cfg.max_attempts != Some(0);
                if replace {
                    // After a network change the old connection is often dead
                    // without a word; the resume makes the replacement lossless.
                    self.disconnect(out);
                    self.set_state(State::Reconnecting, out);
                    out.push(Effect::Reconnecting {
                        attempt: 1,
                        delay_ms: 0,
                        code: ErrorCode::NetworkError,
                    });
                    self.connect(now, out);
                } else if self.armed(Timer::Retry) {
                    self.disarm(Timer::Retry, out);
                    if self.created {
                        self.connect(now, out);
                    } else {
                        out.push(Effect::Create);
                    }
                }
            }
            Input::Close => self.finish(None, out),
        }
    }

    fn armed(&self, t: Timer) -> bool {
        self.armed[t.index()]
    }

    fn arm(&mut self, t: Timer, ms: u32, out: &mut Vec<Effect>) {
        self.armed[t.index()] = true;
        out.push(Effect::Arm(t, ms));
    }

    fn disarm(&mut self, t: Timer, out: &mut Vec<Effect>) {
        if std::mem::take(&mut self.armed[t.index()]) {
            out.push(Effect::Cancel(t));
        }
    }

    fn set_state(&mut self, to: State, out: &mut Vec<Effect>) {
        if let Some(t) = self.state.transition(to) {
            self.state = to;
            out.push(Effect::State(t));
        }
    }

    /// An input of the open connection (not of one given up).
    fn current(&self, conn: u32) -> bool {
        self.connected && conn == self.conn
    }

    /// A frame after `ready` on the open connection: it is alive, and proven.
    fn frame(&mut self, now: f64, conn: u32) -> bool {
        if !self.current(conn) || !self.live {
            return false;
        }
        self.last_frame_at = now;
        if !self.proven {
            self.proven = true;
            self.failed = 0;
            self.last_failure = None;
        }
        true
    }

    fn should_fall_back(&self) -> bool {
        self.cfg.transport == TransportChoice::Auto
            && self.kind == Some(Kind::WebSocket)
            && !self.ws_proven
            && !self.live
    }

    /// `auto`: this WebSocket never became live and none ever did → EventSource, at once and for good.
    fn fall_back(&mut self, now: f64, out: &mut Vec<Effect>) {
        self.disconnect(out);
        self.kind = Some(Kind::EventSource);
        self.connect(now, out);
    }

    fn disconnect(&mut self, out: &mut Vec<Effect>) {
        if std::mem::take(&mut self.connected) {
            out.push(Effect::Disconnect);
        }
        self.live = false;
        self.proven = false;
        self.disarm(Timer::Watchdog, out);
    }

    /// A new connection with the current transport and resume point.
    fn connect(&mut self, now: f64, out: &mut Vec<Effect>) {
        self.disconnect(out);
        self.disarm(Timer::Retry, out);
        let kind = *self.kind.get_or_insert(match self.cfg.transport {
            TransportChoice::Auto => Kind::WebSocket,
            TransportChoice::Only(k) => k,
        });
        self.conn = self.conn.wrapping_add(1);
        self.connected = true;
        self.last_frame_at = now;
        out.push(Effect::Connect {
            conn: self.conn,
            kind,
            last_event_id: self.cursor.last(),
        });
        let ms = if self.should_fall_back() {
            self.cfg.ws_trial_ms()
        } else {
            self.cfg.open_timeout_ms
        };
        self.arm(Timer::Watchdog, ms, out);
    }

    fn watchdog(&mut self, now: f64, out: &mut Vec<Effect>) {
        if !self.connected {
            return;
        }
        if !self.live {
            if self.should_fall_back() {
                self.fall_back(now, out);
            } else {
                self.failure(ErrorCode::OpenTimeout, NOT_LIVE, out);
            }
            return;
        }
        let Some(timeout) = self.cfg.heartbeat_timeout(self.heartbeat_ms) else {
            return;
        };
        let remaining = f64::from(timeout) - (now - self.last_frame_at);
        if remaining >= 1.0 {
            // A frame came since this deadline was set: wait for the rest.
            self.arm(Timer::Watchdog, remaining as u32, out);
        } else {
            self.failure(ErrorCode::HeartbeatTimeout, SILENT, out);
        }
    }

    /// Every failure ends here: retry with backoff, or give up.
    fn failure(&mut self, code: ErrorCode, why: Why, out: &mut Vec<Effect>) {
        self.disconnect(out);
        match after_failure(code, self.failed, self.cfg.max_attempts) {
            Decision::Fail(c) => {
                let f = if c == code {
                    Failure::new(code, why)
                } else {
                    Failure {
                        code: c,
                        why: EXHAUSTED,
                        cause: Some((code, why)),
                    }
                };
                self.finish(Some(f), out);
            }
            Decision::Retry { attempt } => {
                self.last_failure = Some((code, why));
                if self.state == State::Open {
                    self.set_state(State::Reconnecting, out);
                }
                let delay_ms = backoff::delay(
                    attempt,
                    self.cfg.min_delay_ms,
                    self.cfg.max_delay_ms,
                    self.random01(),
                );
                self.failed = self.failed.saturating_add(1);
                out.push(Effect::Reconnecting {
                    attempt: attempt.saturating_add(1),
                    delay_ms,
                    code,
                });
                self.arm(Timer::Retry, delay_ms, out);
            }
        }
    }

    /// The final teardown: `closed`, then `error` (if any), then `close`.
    fn finish(&mut self, failure: Option<Failure>, out: &mut Vec<Effect>) {
        self.disconnect(out);
        for t in TIMERS {
            self.disarm(t, out);
        }
        self.set_state(State::Closed, out);
        if let Some(f) = failure {
            out.push(Effect::Fail(f));
        }
        out.push(Effect::Close);
    }

    /// A uniform draw from `[0, 1)` (xorshift32): enough to spread clients' retries.
    fn random01(&mut self) -> f64 {
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        f64::from(x) / 4_294_967_296.0
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
