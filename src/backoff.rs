//! Reconnection delays: exponential backoff with full jitter.
//!
//! A pure function, so the policy is tested natively; the browser client feeds
//! it `Math.random()`.
//!
//! ```
//! use sse_channel::backoff::delay;
//! // First retry: between min and 2 × min.
//! assert_eq!(delay(0, 500, 10_000, 0.0), 500);
//! assert_eq!(delay(0, 500, 10_000, 0.999_999), 999);
//! // Later retries never exceed max.
//! assert!(delay(30, 500, 10_000, 0.999_999) <= 10_000);
//! ```

/// Default smallest delay before a reconnection attempt: 500 ms.
pub const DEFAULT_MIN_DELAY_MS: u32 = 500;
/// Default largest delay before a reconnection attempt: 10 s.
pub const DEFAULT_MAX_DELAY_MS: u32 = 10_000;

/// Delay in milliseconds before reconnection attempt `attempt` (0 for the first
/// retry after a loss), given `random01` drawn uniformly from `[0, 1)`.
///
/// Full jitter: the window doubles with each attempt, `min × 2^attempt`, capped
/// at `max`, and the delay is `min` plus a uniform share of that window, capped
/// at `max`. So the result is always in `min..=max`, consecutive clients spread
/// out instead of retrying in lockstep, and the expected delay grows
/// exponentially until it reaches `max`. A `max` below `min` is taken as `min`;
/// a `random01` outside `[0, 1)` (or NaN) is clamped into it.
pub fn delay(attempt: u32, min_ms: u32, max_ms: u32, random01: f64) -> u32 {
    let max_ms = max_ms.max(min_ms);
    let window = u64::from(min_ms)
        .checked_shl(attempt.min(32))
        .unwrap_or(u64::MAX)
        .min(u64::from(max_ms));
    let r = if random01.is_nan() {
        0.0
    } else {
        random01.clamp(0.0, 1.0)
    };
    // `window` is at most u32::MAX, so the product fits an f64 exactly enough,
    // and the floor keeps r = 1.0 from reaching window + 1.
    let jitter = ((window as f64) * r).floor() as u64;
    let jitter = jitter.min(window.saturating_sub(1));
    (u64::from(min_ms) + jitter).min(u64::from(max_ms)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold_for_every_attempt_and_draw() {
        for attempt in 0..80 {
            for i in 0..=100 {
                let r = f64::from(i) / 100.0;
                let d = delay(attempt, 500, 10_000, r);
                assert!((500..=10_000).contains(&d), "attempt {attempt} r {r}: {d}");
            }
        }
    }

    #[test]
    fn window_doubles_until_the_cap() {
        // The largest draw shows the window: min + min × 2^attempt - 1.
        let top = |a| delay(a, 500, 10_000, 0.999_999_999);
        assert_eq!(top(0), 999);
        assert_eq!(top(1), 1_499);
        assert_eq!(top(2), 2_499);
        assert_eq!(top(3), 4_499);
        assert_eq!(top(4), 8_499);
        assert_eq!(top(5), 10_000);
        assert_eq!(top(1_000), 10_000);
    }

    #[test]
    fn smallest_draw_is_min() {
        for attempt in [0, 1, 7, 31, 32, 33, u32::MAX] {
            assert_eq!(delay(attempt, 250, 4_000, 0.0), 250);
        }
    }

    #[test]
    fn jitter_is_uniform_share_of_window() {
        assert_eq!(delay(2, 100, 10_000, 0.5), 100 + 200);
        assert_eq!(delay(3, 100, 10_000, 0.25), 100 + 200);
    }

    #[test]
    fn odd_inputs_are_clamped() {
        assert_eq!(delay(3, 800, 100, 0.7), 800, "max below min means min");
        assert_eq!(delay(0, 0, 0, 0.5), 0);
        assert_eq!(delay(4, 500, 10_000, f64::NAN), 500);
        assert_eq!(delay(4, 500, 10_000, -3.0), 500);
        assert!(delay(4, 500, 10_000, 7.0) <= 10_000);
        assert_eq!(delay(40, u32::MAX, u32::MAX, 0.9), u32::MAX);
    }
}
