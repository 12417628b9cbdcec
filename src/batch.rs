//! How the cloud-function writer cuts its queue into requests: the longest
//! prefix of the waiting messages that fits one batch body. A pure function,
//! so the rule is tested natively; the writer feeds it the messages' JSON sizes.
//!
//! ```
//! use sse_channel::batch::batch_len;
//! // `{"messages":[` + `]}` is 15 bytes; messages are joined by `,`.
//! assert_eq!(batch_len([10, 10, 10], 15 + 10 + 1 + 10, 1000), 2);
//! // At most `max_messages`, and always at least one message.
//! assert_eq!(batch_len([1; 5], 1 << 20, 3), 3);
//! assert_eq!(batch_len([5_000], 100, 1000), 1);
//! assert_eq!(batch_len([], 100, 1000), 0);
//! ```

use sse_channel_protocol::api::{BATCH_BODY_HEAD, BATCH_BODY_TAIL};

/// How many of the waiting messages, whose JSON sizes in bytes are `sizes`
/// (oldest first), go in the next request: as many as fit a body of at most
/// `max_body_bytes` (`{"messages":[…]}`, messages joined by `,`) and at most
/// `max_messages` of them, but at least one when any waits (a message over the
/// limit is the relay's to refuse, alone).
pub fn batch_len(
    sizes: impl IntoIterator<Item = usize>,
    max_body_bytes: usize,
    max_messages: usize,
) -> usize {
    let mut body = BATCH_BODY_HEAD.len() + BATCH_BODY_TAIL.len();
    let mut n = 0;
    for size in sizes {
        let added = size.saturating_add(usize::from(n > 0));
        if n > 0 && (n >= max_messages || body.saturating_add(added) > max_body_bytes) {
            break;
        }
        body = body.saturating_add(added);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body the writer would send for messages of these sizes.
    fn body_len(sizes: &[usize]) -> usize {
        BATCH_BODY_HEAD.len()
            + sizes.iter().sum::<usize>()
            + sizes.len().saturating_sub(1)
            + BATCH_BODY_TAIL.len()
    }

    #[test]
    fn batches_fit_and_are_as_long_as_possible() {
        let sizes: Vec<usize> = (0..300).map(|i| (i * 37) % 97 + 1).collect();
        for max_body in [16, 50, 100, 1_000, 5_000, 1 << 20] {
            for max_messages in [1, 2, 7, 1_000] {
                let mut rest = &sizes[..];
                while !rest.is_empty() {
                    let n = batch_len(rest.iter().copied(), max_body, max_messages);
                    assert!(n >= 1 && n <= max_messages, "{n}");
                    let fits = body_len(&rest[..n]) <= max_body;
                    assert!(fits || n == 1, "over the limit with {n} messages");
                    if n < rest.len() && n < max_messages {
                        assert!(
                            body_len(&rest[..n + 1]) > max_body,
                            "one more would have fit"
                        );
                    }
                    rest = &rest[n..];
                }
            }
        }
    }

    #[test]
    fn relay_defaults() {
        // 1,000 messages of 1 KiB fit the relay's 1 MiB; 1,001 are cut at 1,000.
        assert_eq!(batch_len([1024; 1001], 1 << 20, 1000), 1000);
        // 64 KiB messages: 15 of them fit in 1 MiB with envelope and commas.
        assert_eq!(batch_len([65_536; 20], 1 << 20, 1000), 15);
        assert_eq!(batch_len([usize::MAX, 1], 1 << 20, 1000), 1);
    }
}
