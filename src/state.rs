//! The browser client's state machine and its other pure decisions (when to
//! retry, which event ids to deliver), kept apart from the browser so they are
//! tested natively.
//!
//! ```text
//!   idle ──open()──▶ connecting ──ready──▶ open ◀──ready── reconnecting
//!    │                  │                   │ └──stream lost──▶ │
//!    └──────────────────┴──── close(), end, final error ────────┴──▶ closed
//! ```
//!
//! ```
//! use sse_channel::state::State;
//! let t = State::Idle.transition(State::Connecting).unwrap();
//! assert_eq!((t.from.as_str(), t.to.as_str()), ("idle", "connecting"));
//! assert!(State::Closed.transition(State::Open).is_none());
//! ```

use sse_channel_protocol::{ErrorCode, EventId, LostRange};

/// The state of a channel, as the `state` getter and the `state` event spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Constructed; `open()` not called yet.
    Idle,
    /// `open()` called: creating the channel and waiting for the first `ready` frame.
    Connecting,
    /// The subscription is live.
    Open,
    /// The stream was lost after it was live; waiting for, or making, another attempt.
    Reconnecting,
    /// Final: after `close()`, `end`, a final error, or a failed `open()`.
    Closed,
}

/// A change of state: the payload of the `state` event, `{from, to}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: [State; 5] = [
        State::Idle,
        State::Connecting,
        State::Open,
        State::Reconnecting,
        State::Closed,
    ];

    /// The JS spelling: `"idle"`, `"connecting"`, `"open"`, `"reconnecting"`, `"closed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connecting => "connecting",
            State::Open => "open",
            State::Reconnecting => "reconnecting",
            State::Closed => "closed",
        }
    }

    /// The transition to `to`, or `None` when it is not allowed from here (or is
    /// no change at all). The only function deciding which changes exist:
    ///
    /// - `idle → connecting` (`open()`), `idle → closed` (`close()` before `open()`);
    /// - `connecting → open` (first `ready`), `connecting → closed` (failure, timeout, `close()`);
    /// - `open → reconnecting` (stream lost), `open → closed` (`end`, final error, `close()`);
    /// - `reconnecting → open` (`ready` again), `reconnecting → closed`;
    /// - nothing leaves `closed`.
    pub fn transition(self, to: State) -> Option<Transition> {
        use State::*;
        let ok = matches!(
            (self, to),
            (Idle, Connecting | Closed)
                | (Connecting, Open | Closed)
                | (Open, Reconnecting | Closed)
                | (Reconnecting, Open | Closed)
        );
        ok.then_some(Transition { from: self, to })
    }

    /// True once nothing more can happen.
    pub const fn is_closed(self) -> bool {
        matches!(self, State::Closed)
    }
}

/// What to do after a stream failed with `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after a backoff delay; `attempt` counts from 0 since the last
    /// live subscription (feed it to [`crate::backoff::delay`]).
    Retry {
        /// The 0-based retry number.
        attempt: u32,
    },
    /// Give up: emit `error` with this code, then `close`.
    Fail(ErrorCode),
}

/// Decides between retrying and giving up after a stream failure.
///
/// `failed_attempts` is how many retries already failed since the subscription
/// was last live; `max_attempts` is the `reconnect.maxAttempts` option (`None`
/// means unlimited, `Some(0)` means never retry). Codes the protocol marks final
/// (`UNAUTHORIZED`, `CHANNEL_NOT_FOUND`, `CHANNEL_EXPIRED`, …) fail at once;
/// retryable ones fail with `RECONNECT_EXHAUSTED` once the budget is spent.
///
/// ```
/// use sse_channel::state::{after_failure, Decision};
/// use sse_channel::protocol::ErrorCode;
/// assert_eq!(after_failure(ErrorCode::NetworkError, 2, None), Decision::Retry { attempt: 2 });
/// assert_eq!(after_failure(ErrorCode::Unauthorized, 0, None), Decision::Fail(ErrorCode::Unauthorized));
/// assert_eq!(after_failure(ErrorCode::NetworkError, 3, Some(3)), Decision::Fail(ErrorCode::ReconnectExhausted));
/// ```
pub fn after_failure(code: ErrorCode, failed_attempts: u32, max_attempts: Option<u32>) -> Decision {
    if !code.should_reconnect() {
        return Decision::Fail(code);
    }
    match max_attempts {
        Some(max) if failed_attempts >= max => Decision::Fail(ErrorCode::ReconnectExhausted),
        _ => Decision::Retry {
            attempt: failed_attempts,
        },
    }
}

/// The resume point: the highest event id seen (or skipped as lost).
///
/// ```
/// use sse_channel::state::Cursor;
/// let mut c = Cursor::default();
/// assert!(c.accept(1));
/// assert!(!c.accept(1), "a replayed id is dropped");
/// assert!(c.accept(2));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    last: EventId,
}

impl Cursor {
    /// The last id delivered or skipped; 0 before any. Sent as `lastEventId` on reconnect.
    pub const fn last(self) -> EventId {
        self.last
    }

    /// True (and advances) when `id` is new; false for an id already seen, which
    /// the client drops so that every event is delivered at most once.
    pub fn accept(&mut self, id: EventId) -> bool {
        if id > self.last {
            self.last = id;
            true
        } else {
            false
        }
    }

    /// Moves past a range the relay reported lost (`MESSAGES_LOST`), so that a
    /// later reconnect does not ask for it again.
    pub fn skip(&mut self, lost: LostRange) {
        self.last = self.last.max(lost.to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    #[test]
    fn allowed_transitions_are_exactly_the_lifecycle() {
        let allowed = [
            (Idle, Connecting),
            (Idle, Closed),
            (Connecting, Open),
            (Connecting, Closed),
            (Open, Reconnecting),
            (Open, Closed),
            (Reconnecting, Open),
            (Reconnecting, Closed),
        ];
        for from in State::ALL {
            for to in State::ALL {
                let got = from.transition(to);
                if allowed.contains(&(from, to)) {
                    assert_eq!(got, Some(Transition { from, to }), "{from:?} -> {to:?}");
                } else {
                    assert_eq!(got, None, "{from:?} -> {to:?} must be refused");
                }
            }
        }
    }

    #[test]
    fn closed_is_final_and_self_changes_are_not_transitions() {
        for s in State::ALL {
            assert!(Closed.transition(s).is_none());
            assert!(s.transition(s).is_none());
        }
        assert!(Closed.is_closed());
        assert!(!Reconnecting.is_closed());
    }

    #[test]
    fn spellings_are_distinct_lowercase() {
        let names: Vec<_> = State::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["idle", "connecting", "open", "reconnecting", "closed"]
        );
    }

    #[test]
    fn final_codes_never_retry() {
        for code in [
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::ChannelNotFound,
            ErrorCode::ChannelExpired,
            ErrorCode::BadRequest,
        ] {
            assert_eq!(after_failure(code, 0, None), Decision::Fail(code));
        }
    }

    #[test]
    fn retryable_codes_retry_until_the_budget_is_spent() {
        for code in [
            ErrorCode::NetworkError,
            ErrorCode::HeartbeatTimeout,
            ErrorCode::ShuttingDown,
            ErrorCode::TooManyConnections,
            ErrorCode::Internal,
        ] {
            assert_eq!(
                after_failure(code, 0, Some(2)),
                Decision::Retry { attempt: 0 }
            );
            assert_eq!(
                after_failure(code, 1, Some(2)),
                Decision::Retry { attempt: 1 }
            );
            assert_eq!(
                after_failure(code, 2, Some(2)),
                Decision::Fail(ErrorCode::ReconnectExhausted)
            );
            assert_eq!(
                after_failure(code, 10_000, None),
                Decision::Retry { attempt: 10_000 }
            );
        }
        assert_eq!(
            after_failure(ErrorCode::NetworkError, 0, Some(0)),
            Decision::Fail(ErrorCode::ReconnectExhausted),
            "maxAttempts 0 never retries"
        );
    }

    #[test]
    fn cursor_drops_duplicates_and_skips_lost_ranges() {
        let mut c = Cursor::default();
        assert_eq!(c.last(), 0);
        assert!(!c.accept(0));
        assert!(c.accept(3));
        assert!(!c.accept(2));
        assert!(!c.accept(3));
        c.skip(LostRange { from: 4, to: 9 });
        assert_eq!(c.last(), 9);
        assert!(!c.accept(9));
        assert!(c.accept(10));
        c.skip(LostRange { from: 1, to: 2 });
        assert_eq!(c.last(), 10, "an old range never moves the cursor back");
    }
}
