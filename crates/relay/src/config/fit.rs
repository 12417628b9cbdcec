//! Whether one channel fits the byte budgets ([`Config::channel_cost_max`]).

use sse_channel_protocol::limits;

use super::Config;

impl Config {
    /// The most one channel can hold against the byte budgets
    /// ([`crate::broker::event_cost`], [`crate::broker::key_cost`]): a full
    /// replay buffer (`--replay-buffer-events` events; their payload at most
    /// `--replay-buffer-bytes`, or one `--max-message-bytes` event, the
    /// newest, which always stays) and `--idempotency-keys` keys of the
    /// longest length.
    ///
    /// ```
    /// // 3 × 4 MiB + 256 × 4,096 + 1,024 × key_cost(136): 13.3 MiB.
    /// assert_eq!(sse_relay::Config::default().channel_cost_max(), 13_975_552);
    /// ```
    pub fn channel_cost_max(&self) -> u64 {
        use crate::broker::{event_cost, key_cost};
        let events = self.replay_buffer_events.max(1) as u64;
        let largest = self.max_message_bytes as u64;
        let payload = (self.replay_buffer_bytes as u64)
            .max(largest)
            .min(events.saturating_mul(largest));
        // The longest key as the broker keeps it: "<kind> <key>".
        let key = "message ".len() + limits::MAX_IDEMPOTENCY_KEY_LEN;
        // event_cost is linear: a share per event and one per payload byte.
        let per_byte = event_cost(1) - event_cost(0);
        events
            .saturating_mul(event_cost(0))
            .saturating_add(payload.saturating_mul(per_byte))
            .saturating_add((self.idempotency_keys as u64).saturating_mul(key_cost(key)))
    }

    /// A channel must be able to fill its replay buffer within the byte
    /// budgets: an append is refused only for what it adds beyond what it
    /// pushes out of a full buffer, so a channel that fits keeps taking
    /// publishes however full the budgets are, while one that does not would
    /// be refused for good once it reached a budget (nothing of it is ever
    /// dropped to make room).
    pub(super) fn check_channel_fits_budgets(&self) -> Result<(), String> {
        let most = self.channel_cost_max();
        let refuse = |flag: &str, budget: u64| {
            Err(format!(
                "{flag} {budget} is below what one channel can hold ({most} bytes: a full \
                 replay buffer, --replay-buffer-events and --replay-buffer-bytes, with \
                 --idempotency-keys keys): a channel that got there would refuse every publish \
                 until it expires; raise {flag} to at least {most}, or lower those"
            ))
        };
        if most > self.max_buffered_bytes {
            return refuse("--max-buffered-bytes", self.max_buffered_bytes);
        }
        let per = self.max_buffered_bytes_per_address;
        if per > 0 && most > per {
            return refuse("--max-buffered-bytes-per-address", per);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_that_cannot_fill_its_buffer_within_a_budget_is_refused() {
        // A replay buffer of 32 MiB costs 96 MiB held, above 64 MiB per address.
        let big = Config {
            replay_buffer_bytes: 32 << 20,
            ..Config::default()
        };
        let e = big.validate().unwrap_err();
        assert!(
            e.contains("--max-buffered-bytes-per-address 67108864"),
            "{e}"
        );
        assert!(e.contains(&big.channel_cost_max().to_string()), "{e}");
        // Without a per-address budget it fits the relay-wide one.
        let unbounded = Config {
            max_buffered_bytes_per_address: 0,
            ..big.clone()
        };
        assert!(unbounded.validate().is_ok());
        let small = Config {
            max_buffered_bytes: 1 << 20,
            ..unbounded
        };
        assert!(small
            .validate()
            .unwrap_err()
            .contains("--max-buffered-bytes 1048576"));
        // A large buffer of small events fits the defaults.
        let many = Config {
            replay_buffer_events: 20_000,
            ..Config::default()
        };
        assert!(many.validate().is_ok(), "{:?}", many.validate());
        assert_eq!(many.channel_cost_max(), 18_046_976, "as docs/relay.md says");
        // At the budget exactly is enough.
        let exact = Config {
            max_buffered_bytes_per_address: big.channel_cost_max(),
            ..big.clone()
        };
        assert!(exact.validate().is_ok());
    }

    #[test]
    fn the_most_a_channel_holds_follows_each_bound() {
        use crate::broker::{event_cost, key_cost};
        let keys = |n: u64| n * key_cost("message ".len() + limits::MAX_IDEMPOTENCY_KEY_LEN);
        let c = |events, bytes, largest, k| Config {
            replay_buffer_events: events,
            replay_buffer_bytes: bytes,
            max_message_bytes: largest,
            idempotency_keys: k,
            ..Config::default()
        };
        // Bounded by bytes.
        assert_eq!(
            c(10, 100, 50, 0).channel_cost_max(),
            9 * event_cost(0) + event_cost(100)
        );
        // Bounded by events of the largest size.
        assert_eq!(
            c(2, 1000, 50, 3).channel_cost_max(),
            2 * event_cost(50) + keys(3)
        );
        // One event larger than the byte bound always stays.
        assert_eq!(
            c(10, 100, 500, 0).channel_cost_max(),
            9 * event_cost(0) + event_cost(500)
        );
        // Zero events means one (the newest always stays); huge values saturate.
        assert_eq!(c(0, 0, 0, 0).channel_cost_max(), event_cost(0));
        assert_eq!(
            c(usize::MAX, usize::MAX, usize::MAX, 0).channel_cost_max(),
            u64::MAX
        );
    }
}
