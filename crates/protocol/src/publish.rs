//! How a publisher reads the relay's answers to `POST …/messages` and
//! `POST …/end`: which status means which code, which answers are worth a
//! retry with the same `Idempotency-Key`, and which refusals are final for
//! the channel. The cloud-function writer applies this; it lives here, beside
//! [`ErrorCode::should_reconnect`], because it is part of the wire contract
//! (`docs/protocol.md`, "Publishing").
//!
//! ```
//! use sse_channel_protocol::publish::{classify, Answer};
//! use sse_channel_protocol::ErrorCode;
//! assert_eq!(classify(200, None), Answer::Stored);
//! assert_eq!(classify(503, Some(ErrorCode::ShuttingDown)), Answer::Retry);
//! // The relay's own code is kept when it agrees with the status…
//! assert_eq!(classify(403, Some(ErrorCode::Forbidden)), Answer::Refused(ErrorCode::Forbidden));
//! // …and the status decides when it does not (a proxy's page, another code).
//! assert_eq!(classify(403, None), Answer::Refused(ErrorCode::Unauthorized));
//! assert!(ErrorCode::ChannelEnded.is_final_for_publisher());
//! assert!(!ErrorCode::MessageTooLarge.is_final_for_publisher());
//! ```

use crate::ErrorCode;

/// What one answer to a publish or end request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: the relay stored the request (or answered its idempotency key
    /// from memory, which means the same).
    Stored,
    /// 429 or 5xx: the relay is busy, draining or failing; the same request,
    /// with the same idempotency key, may succeed later.
    Retry,
    /// A refusal that no retry of this request can change.
    Refused(ErrorCode),
}

/// Classifies an answer by its HTTP `status` and the `code` of its
/// `{"error":{…}}` body, when it had a known one.
///
/// - 2xx: [`Answer::Stored`]; 429 and 5xx: [`Answer::Retry`].
/// - 3xx, and 0 (an opaque redirect from `fetch` with `redirect: "manual"`):
///   `RELAY_UNAVAILABLE`, since a publisher never follows a redirect (its
///   token would go to wherever the redirect points).
/// - 401 and 403 `UNAUTHORIZED`, 404 `CHANNEL_NOT_FOUND`, 409
///   `CHANNEL_ENDED` (or the relay's `CHANNEL_CANCELLED`), 410 `CHANNEL_EXPIRED`, 413 `MESSAGE_TOO_LARGE`, any
///   other status `BAD_REQUEST`; but the relay's `code` wins when its status is
///   this one (e.g. `FORBIDDEN` for 403), so a proxy's answer cannot pass
///   off one refusal as another.
pub fn classify(status: u16, relay_code: Option<ErrorCode>) -> Answer {
    match status {
        200..=299 => Answer::Stored,
        429 | 500.. => Answer::Retry,
        0 | 300..=399 => Answer::Refused(ErrorCode::RelayUnavailable),
        _ => {
            let by_status = match status {
                401 | 403 => ErrorCode::Unauthorized,
                404 => ErrorCode::ChannelNotFound,
                409 => ErrorCode::ChannelEnded,
                410 => ErrorCode::ChannelExpired,
                413 => ErrorCode::MessageTooLarge,
                _ => ErrorCode::BadRequest,
            };
            Answer::Refused(
                relay_code
                    .filter(|c| c.http_status() == status)
                    .unwrap_or(by_status),
            )
        }
    }
}

impl ErrorCode {
    /// Whether a publisher that got this code can never publish to the channel
    /// again: the relay refused the channel itself (`UNAUTHORIZED`,
    /// `FORBIDDEN`, `CHANNEL_NOT_FOUND`, `CHANNEL_ENDED`, `CHANNEL_EXPIRED`,
    /// `CHANNEL_CANCELLED`).
    /// Every other failure concerns one request (its size, its body, the
    /// relay's availability).
    pub const fn is_final_for_publisher(self) -> bool {
        matches!(
            self,
            ErrorCode::Unauthorized
                | ErrorCode::Forbidden
                | ErrorCode::ChannelNotFound
                | ErrorCode::ChannelEnded
                | ErrorCode::ChannelExpired
                | ErrorCode::ChannelCancelled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_one_meaning() {
        for status in 0..=999u16 {
            let a = classify(status, None);
            match status {
                200..=299 => assert_eq!(a, Answer::Stored, "{status}"),
                429 | 500..=999 => assert_eq!(a, Answer::Retry, "{status}"),
                _ => assert!(matches!(a, Answer::Refused(_)), "{status}: {a:?}"),
            }
        }
    }

    #[test]
    fn refusals_by_status() {
        let refused = |s| match classify(s, None) {
            Answer::Refused(c) => c,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(refused(0), ErrorCode::RelayUnavailable);
        assert_eq!(refused(301), ErrorCode::RelayUnavailable);
        assert_eq!(refused(302), ErrorCode::RelayUnavailable);
        assert_eq!(refused(100), ErrorCode::BadRequest);
        assert_eq!(refused(400), ErrorCode::BadRequest);
        assert_eq!(refused(401), ErrorCode::Unauthorized);
        assert_eq!(refused(403), ErrorCode::Unauthorized);
        assert_eq!(refused(404), ErrorCode::ChannelNotFound);
        assert_eq!(refused(405), ErrorCode::BadRequest);
        assert_eq!(refused(409), ErrorCode::ChannelEnded);
        assert_eq!(refused(410), ErrorCode::ChannelExpired);
        assert_eq!(refused(413), ErrorCode::MessageTooLarge);
        assert_eq!(refused(418), ErrorCode::BadRequest);
    }

    #[test]
    fn the_relay_code_counts_only_when_it_matches_the_status() {
        for &code in ErrorCode::ALL {
            for status in [400, 401, 403, 404, 409, 410, 413, 422] {
                let a = classify(status, Some(code));
                if code.http_status() == status {
                    assert_eq!(a, Answer::Refused(code), "{status} {code}");
                } else {
                    assert_eq!(a, classify(status, None), "{status} {code}");
                }
            }
            // Success and retry do not depend on the body.
            assert_eq!(classify(200, Some(code)), Answer::Stored);
            assert_eq!(classify(503, Some(code)), Answer::Retry);
            assert_eq!(
                classify(302, Some(code)),
                Answer::Refused(ErrorCode::RelayUnavailable)
            );
        }
    }

    #[test]
    fn final_codes_are_exactly_the_channel_refusals() {
        let finals: Vec<_> = ErrorCode::ALL
            .iter()
            .copied()
            .filter(|c| c.is_final_for_publisher())
            .collect();
        assert_eq!(
            finals,
            [
                ErrorCode::Unauthorized,
                ErrorCode::Forbidden,
                ErrorCode::ChannelNotFound,
                ErrorCode::ChannelEnded,
                ErrorCode::ChannelExpired,
                ErrorCode::ChannelCancelled,
            ]
        );
        // A cancel answers 409 with its own code, which the writer keeps.
        assert_eq!(
            classify(409, Some(ErrorCode::ChannelCancelled)),
            Answer::Refused(ErrorCode::ChannelCancelled)
        );
        // Whatever classify refuses with is either final or about one request.
        for status in 300..500 {
            if let Answer::Refused(c) = classify(status, None) {
                assert!(
                    c.is_final_for_publisher()
                        || matches!(
                            c,
                            ErrorCode::BadRequest
                                | ErrorCode::MessageTooLarge
                                | ErrorCode::RelayUnavailable
                        ),
                    "{status} {c}"
                );
            }
        }
    }
}
