//! The options of a machine ([`Config`]), the transports, the timers and the
//! reasons of a failure ([`Failure`], [`Why`]).

use super::*;

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
        Self::DEFAULT
    }
}

impl Config {
    /// The defaults (what [`Config::default`] returns), as a constant.
    pub const DEFAULT: Config = Config {
        transport: TransportChoice::Auto,
        min_delay_ms: DEFAULT_MIN_DELAY_MS,
        max_delay_ms: DEFAULT_MAX_DELAY_MS,
        max_attempts: None,
        open_timeout_ms: DEFAULT_OPEN_TIMEOUT_MS,
        heartbeat_timeout_ms: None,
    };

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

pub(super) const TIMERS: [Timer; 3] = [Timer::Open, Timer::Watchdog, Timer::Retry];

impl Timer {
    pub(super) const fn index(self) -> usize {
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

pub(super) const LOST: Why = Why::Text("the stream connection was lost");
pub(super) const REFUSED: Why = Why::Text("the browser refused the stream URL");
pub(super) const NOT_LIVE: Why = Why::Text("the stream did not become live within openTimeoutMs");
pub(super) const SILENT: Why = Why::Text("no event or heartbeat within heartbeatTimeoutMs");
pub(super) const NO_OPEN: Why = Why::Text("no live subscription within openTimeoutMs");
pub(super) const EXHAUSTED: Why = Why::Text("reconnection attempts exhausted");
