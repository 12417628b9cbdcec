//! Every decision of the browser client, as a sans-IO state machine: inputs
//! (what the page, the relay, the network and the timers did) go in, effects
//! (connect, arm a timer, emit an event, settle `open()`) come out. No browser
//! API is touched here, and payloads never enter: a message's data stays a JS
//! value in the executor (the `SSEChannel` class, `src/channel.js`), which only carries effects
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

pub mod abi;
mod config;
mod io;

pub use config::*;
pub use io::*;

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

    /// The connection whose `message` frames with a new id end in
    /// [`Effect::Message`] and nothing else (the open connection, after its
    /// `ready`): the executor may deliver them itself and report them with
    /// [`Input::Delivered`]. `None` otherwise.
    ///
    /// ```
    /// use sse_channel::machine::{Config, Input, Machine};
    /// let mut m = Machine::attached(Config::default(), 1, 0);
    /// let mut out = Vec::new();
    /// m.handle(0.0, Input::Open, &mut out);
    /// assert_eq!(m.delivering(), None, "not before ready");
    /// m.handle(1.0, Input::Ready { conn: 1, heartbeat_ms: None }, &mut out);
    /// assert_eq!(m.delivering(), Some(1));
    /// m.handle(2.0, Input::Delivered { conn: 1, id: 9 }, &mut out);
    /// assert_eq!(m.last_event_id(), 9);
    /// ```
    pub fn delivering(&self) -> Option<u32> {
        (self.connected && self.live && !self.state.is_closed()).then_some(self.conn)
    }

    /// `open()` has resolved: the first `ready` arrived (and the channel may since have closed).
    pub fn opened(&self) -> bool {
        self.opened
    }
}

mod handle;
mod steps;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
