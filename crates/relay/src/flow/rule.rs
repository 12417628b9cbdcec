//! The backpressure rule: a pure function of a reader's lag, the replay
//! buffer's size and time. [`super::Flow`] carries it out.

use std::time::Duration;

/// How far a reader is behind the channel's newest event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lag {
    /// Events stored after the reader's position.
    pub events: u64,
    /// Payload bytes of those events.
    pub bytes: u64,
}

/// One reader as the rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderView {
    /// How far it is behind.
    pub lag: Lag,
    /// `Some(d)`: its connection went away `d` ago (it may be reconnecting).
    pub detached_for: Option<Duration>,
    /// A publish already waited the longest wait for it, and it has not caught
    /// up since: it no longer holds anyone back.
    pub released: bool,
}

/// What a waiting publish answer does about one reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The reader holds nothing back.
    Clear,
    /// Wait for it, at most this much longer (then ask again).
    Hold(Duration),
    /// The longest wait is over: release it (it will get `MESSAGES_LOST` if it
    /// falls out of the replay buffer) and answer.
    GiveUp,
    /// Disconnected for longer than the reconnect grace: forget its position.
    Forget,
}

/// The backpressure rule with its knobs.
///
/// A publish's answer waits while a counted reader of the channel is more
/// than the high-water mark behind (in events or in payload bytes), for at
/// most `max_wait`. A reader is counted while it is connected, or disconnected
/// for at most `grace` (it is expected back at its last position), and not
/// released. A reader that a publish waited `max_wait` for is released until
/// it is back within the high-water mark.
///
/// ```
/// use std::time::Duration;
/// use sse_relay::flow::{Lag, ReaderView, Rule, Verdict};
/// let rule = Rule::new(4096, 4 << 20, 50, Duration::from_secs(5), Duration::from_secs(30));
/// assert_eq!((rule.high_water_events, rule.high_water_bytes), (2048, 2 << 20));
/// let behind = ReaderView { lag: Lag { events: 3000, bytes: 3000 }, detached_for: None, released: false };
/// assert_eq!(rule.verdict(&behind, Duration::from_secs(1)), Verdict::Hold(Duration::from_secs(4)));
/// assert_eq!(rule.verdict(&behind, Duration::from_secs(5)), Verdict::GiveUp);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Lag in events above which a reader holds publishes back.
    pub high_water_events: u64,
    /// Lag in payload bytes above which a reader holds publishes back.
    pub high_water_bytes: u64,
    /// Longest time one publish answer waits. Zero: backpressure is off.
    pub max_wait: Duration,
    /// How long a disconnected reader counts at its last position.
    pub grace: Duration,
}

impl Rule {
    /// The rule for a replay buffer of `buffer_events` events and
    /// `buffer_bytes` payload bytes, with the high-water mark at
    /// `high_water_percent` of each (clamped to 1..=100).
    pub fn new(
        buffer_events: usize,
        buffer_bytes: usize,
        high_water_percent: u8,
        max_wait: Duration,
        grace: Duration,
    ) -> Self {
        let pct = u64::from(high_water_percent.clamp(1, 100));
        let mark = |size: usize| (size as u64).saturating_mul(pct) / 100;
        Self {
            high_water_events: mark(buffer_events),
            high_water_bytes: mark(buffer_bytes),
            max_wait,
            grace,
        }
    }

    /// True when `lag` is within the high-water mark (a released reader that
    /// gets here counts again).
    pub fn within(&self, lag: Lag) -> bool {
        lag.events <= self.high_water_events && lag.bytes <= self.high_water_bytes
    }

    /// What a publish answer that has waited `waited` does about `reader`.
    pub fn verdict(&self, reader: &ReaderView, waited: Duration) -> Verdict {
        let mut left = self.max_wait.saturating_sub(waited);
        if let Some(gone) = reader.detached_for {
            if gone >= self.grace {
                return Verdict::Forget;
            }
            left = left.min(self.grace - gone);
        }
        if reader.released || self.within(reader.lag) {
            Verdict::Clear
        } else if waited >= self.max_wait {
            Verdict::GiveUp
        } else {
            Verdict::Hold(left)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn rule() -> Rule {
        Rule::new(100, 10_000, 50, 5 * S, 30 * S)
    }

    fn reader(events: u64, bytes: u64) -> ReaderView {
        ReaderView {
            lag: Lag { events, bytes },
            detached_for: None,
            released: false,
        }
    }

    #[test]
    fn high_water_is_a_share_of_the_buffer() {
        let r = rule();
        assert_eq!((r.high_water_events, r.high_water_bytes), (50, 5_000));
        let full = Rule::new(100, 10_000, 200, S, S);
        assert_eq!(
            (full.high_water_events, full.high_water_bytes),
            (100, 10_000)
        );
        let least = Rule::new(100, 10_000, 0, S, S);
        assert_eq!((least.high_water_events, least.high_water_bytes), (1, 100));
    }

    #[test]
    fn within_the_mark_is_clear_at_any_time() {
        let r = rule();
        for waited in [Duration::ZERO, S, 5 * S, 60 * S] {
            assert_eq!(r.verdict(&reader(0, 0), waited), Verdict::Clear);
            assert_eq!(r.verdict(&reader(50, 5_000), waited), Verdict::Clear);
        }
    }

    #[test]
    fn over_the_mark_in_events_or_bytes_holds_until_the_longest_wait() {
        let r = rule();
        for behind in [reader(51, 0), reader(0, 5_001), reader(1_000, 1 << 20)] {
            assert_eq!(r.verdict(&behind, Duration::ZERO), Verdict::Hold(5 * S));
            assert_eq!(
                r.verdict(&behind, Duration::from_millis(4_999)),
                Verdict::Hold(Duration::from_millis(1))
            );
            assert_eq!(r.verdict(&behind, 5 * S), Verdict::GiveUp);
            assert_eq!(r.verdict(&behind, 50 * S), Verdict::GiveUp);
        }
    }

    #[test]
    fn a_released_reader_holds_nobody_back() {
        let r = rule();
        let stuck = ReaderView {
            released: true,
            ..reader(1_000, 1 << 20)
        };
        assert_eq!(r.verdict(&stuck, Duration::ZERO), Verdict::Clear);
        assert!(
            !r.within(stuck.lag),
            "it counts again only once within the mark"
        );
        assert!(r.within(Lag {
            events: 50,
            bytes: 5_000
        }));
    }

    #[test]
    fn a_reconnecting_reader_counts_at_its_last_position_for_the_grace() {
        let r = rule();
        let gone = |d, lag| ReaderView {
            detached_for: Some(d),
            ..reader(lag, 0)
        };
        assert_eq!(r.verdict(&gone(S, 0), Duration::ZERO), Verdict::Clear);
        assert_eq!(
            r.verdict(&gone(S, 99), Duration::ZERO),
            Verdict::Hold(5 * S)
        );
        // The hold ends when the grace does, if that comes first.
        assert_eq!(
            r.verdict(&gone(28 * S, 99), Duration::ZERO),
            Verdict::Hold(2 * S)
        );
        assert_eq!(
            r.verdict(&gone(30 * S, 99), Duration::ZERO),
            Verdict::Forget
        );
        assert_eq!(r.verdict(&gone(30 * S, 0), Duration::ZERO), Verdict::Forget);
    }

    #[test]
    fn large_buffers_and_extreme_settings() {
        // --replay-buffer-events 20000 with the 4 MiB default: either bound
        // holds on its own.
        let big = Rule::new(20_000, 4 << 20, 50, 5 * S, 30 * S);
        assert_eq!(
            (big.high_water_events, big.high_water_bytes),
            (10_000, 2 << 20)
        );
        assert_eq!(big.verdict(&reader(10_000, 2 << 20), S), Verdict::Clear);
        assert_eq!(big.verdict(&reader(10_001, 0), S), Verdict::Hold(4 * S));
        assert_eq!(
            big.verdict(&reader(0, (2 << 20) + 1), S),
            Verdict::Hold(4 * S)
        );
        // Buffers as large as a usize: no overflow, the mark is still a share.
        let huge = Rule::new(usize::MAX, usize::MAX, 100, 5 * S, 30 * S);
        assert_eq!(huge.high_water_events, usize::MAX as u64 / 100);
        assert_eq!(
            huge.verdict(&reader(u64::MAX, u64::MAX), 5 * S),
            Verdict::GiveUp
        );
        // The smallest buffer: a mark of zero holds for any lag, clears at none.
        let tiny = Rule::new(1, 1, 50, 5 * S, 30 * S);
        assert_eq!((tiny.high_water_events, tiny.high_water_bytes), (0, 0));
        assert_eq!(tiny.verdict(&reader(0, 0), Duration::ZERO), Verdict::Clear);
        assert_eq!(
            tiny.verdict(&reader(1, 0), Duration::ZERO),
            Verdict::Hold(5 * S)
        );
        // A longest wait far past the grace: a reconnecting reader holds at
        // most until its grace ends.
        let long = Rule::new(100, 10_000, 50, Duration::MAX, 30 * S);
        let gone = ReaderView {
            detached_for: Some(29 * S),
            ..reader(99, 0)
        };
        assert_eq!(long.verdict(&gone, 3600 * S), Verdict::Hold(S));
        // A time past the longest wait by any amount gives up, never underflows.
        assert_eq!(
            big.verdict(&reader(10_001, 0), Duration::MAX),
            Verdict::GiveUp
        );
    }

    #[test]
    fn zero_longest_wait_never_holds() {
        let r = Rule::new(100, 10_000, 50, Duration::ZERO, 30 * S);
        assert_eq!(
            r.verdict(&reader(1_000, 0), Duration::ZERO),
            Verdict::GiveUp
        );
    }
}
