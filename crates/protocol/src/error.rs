//! Stable error codes.
//!
//! Every error the relay answers, every `error` event the browser SDK emits and
//! every rejection of the writer carries one of these codes as a string. The
//! code, its HTTP status and whether a subscriber should reconnect after it are
//! part of the wire contract (`docs/protocol.md`, "Error codes").
//!
//! ```
//! use sse_channel_protocol::ErrorCode;
//! let c = ErrorCode::parse("CHANNEL_NOT_FOUND").unwrap();
//! assert_eq!(c.http_status(), 404);
//! assert!(!c.should_reconnect());
//! assert_eq!(c.as_str(), "CHANNEL_NOT_FOUND");
//! ```

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $s:literal, $status:literal, $reconnect:literal; )*) => {
        /// A stable, machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The wire spelling, e.g. `"MESSAGE_TOO_LARGE"`.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $s,)* }
            }

            /// The HTTP status the relay answers with this code (client-side codes
            /// carry the status they would have if a server said them).
            pub const fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// Whether a subscriber that lost its stream with this code should try
            /// again with backoff (`true`), or give up with `error` then `close`.
            pub const fn should_reconnect(self) -> bool {
                match self { $(ErrorCode::$variant => $reconnect,)* }
            }

            /// The code with this wire spelling, if any. (A search of [`Self::ALL`]
            /// rather than a `match` on the strings: the browser bundle then
            /// holds the spellings once.)
            pub fn parse(s: &str) -> Option<ErrorCode> {
                Self::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}

codes! {
    /// The request is malformed: invalid JSON, invalid UTF-8, a wrong field, a bad id.
    BadRequest = "BAD_REQUEST", 400, false;
    /// A token is missing, malformed, forged, or for another channel. (An
    /// authentic token whose only fault is its `exp` is [`Self::ChannelExpired`].)
    Unauthorized = "UNAUTHORIZED", 401, false;
    /// The token is valid but grants another right (subscribe vs publish).
    Forbidden = "FORBIDDEN", 403, false;
    /// No such channel (never created, or already cleaned up).
    ChannelNotFound = "CHANNEL_NOT_FOUND", 404, false;
    /// The method is not allowed on this route.
    MethodNotAllowed = "METHOD_NOT_ALLOWED", 405, false;
    /// The channel has ended: nothing more can be published.
    ChannelEnded = "CHANNEL_ENDED", 409, false;
    /// The channel's lifetime is over (also the answer to the channel's own
    /// authentic token once its `exp`, the channel's expiry, has passed).
    ChannelExpired = "CHANNEL_EXPIRED", 410, false;
    /// A message or request body exceeds the relay's size limit.
    MessageTooLarge = "MESSAGE_TOO_LARGE", 413, false;
    /// Too many requests or channels from this client address.
    RateLimited = "RATE_LIMITED", 429, true;
    /// The channel already has the maximum number of subscriber connections.
    TooManyConnections = "TOO_MANY_CONNECTIONS", 429, true;
    /// The relay holds the maximum number of channels.
    TooManyChannels = "TOO_MANY_CHANNELS", 503, true;
    /// The relay is shutting down; reconnect (to another node).
    ShuttingDown = "SHUTTING_DOWN", 503, true;
    /// The relay holds its maximum of buffered bytes (`--max-buffered-bytes`):
    /// nothing was stored; retry later, when channels have ended or expired.
    BufferFull = "BUFFER_FULL", 503, true;
    /// The broker behind the relay is unreachable.
    BrokerUnavailable = "BROKER_UNAVAILABLE", 503, true;
    /// An unexpected failure inside the relay.
    Internal = "INTERNAL", 500, true;
    /// Stream-only: events the subscriber missed are no longer buffered. The
    /// frame carries the missing range; the stream goes on after it.
    MessagesLost = "MESSAGES_LOST", 200, false;
    /// Client-side: `open()` did not reach a live subscription in time.
    OpenTimeout = "OPEN_TIMEOUT", 408, true;
    /// Client-side: no event or heartbeat arrived within the heartbeat timeout.
    HeartbeatTimeout = "HEARTBEAT_TIMEOUT", 408, true;
    /// Client-side: the connection failed or dropped.
    NetworkError = "NETWORK_ERROR", 503, true;
    /// Client-side: the reconnection attempts allowed by the options are spent.
    ReconnectExhausted = "RECONNECT_EXHAUSTED", 503, false;
    /// Client-side: the call is not valid in the channel's current state.
    InvalidState = "INVALID_STATE", 409, false;
    /// Client-side: the options passed are invalid.
    InvalidOptions = "INVALID_OPTIONS", 400, false;
    /// Client-side: the call belongs to the other side's entry of the npm
    /// package and always throws here: `SSEChannel` in Node.js (its entry
    /// provides `deserializeSSEChannel`), `deserializeSSEChannel` in a browser.
    /// Exported anyway so that code shared by both sides (server-side
    /// rendering) imports without failing.
    UnsupportedEnvironment = "UNSUPPORTED_ENVIRONMENT", 501, false;
    /// Writer: the descriptor is not a valid serialized channel.
    InvalidDescriptor = "INVALID_DESCRIPTOR", 400, false;
    /// Writer: the descriptor's relay is not in the deployer's allow-list.
    RelayNotAllowed = "RELAY_NOT_ALLOWED", 403, false;
    /// Writer: the relay could not be reached after every retry.
    RelayUnavailable = "RELAY_UNAVAILABLE", 503, true;
    /// Stream-only: the function that fed the channel failed
    /// (`writer.fail(error)`, `POST …/fail`). Sent as the channel's stored,
    /// final `error` event (it has an id, like `end`); `data` carries the
    /// function's `message` and optional `details`. Final: no reconnect.
    FunctionFailed = "FUNCTION_FAILED", 200, false;
    /// The reader cancelled the channel (`POST …/cancel`), or the relay did
    /// because nobody listened for `abandonAfterMs` (message `ABANDONED`).
    /// The stored, final `error` event of a cancelled channel, and the answer
    /// (409) to every later publish, end or fail; the message is the reason.
    /// Final for readers and publishers.
    ChannelCancelled = "CHANNEL_CANCELLED", 409, false;
    /// Writer: `maxQueued` messages already wait for the relay, so the write
    /// is refused (and the writer halts until the function calls `resume()`).
    QueueFull = "QUEUE_FULL", 429, false;
    /// Client-side: `installUniCloud` could not set its properties on the
    /// `uniCloud` object (frozen, or a read-only property); nothing was installed.
    UnicloudInstallFailed = "UNICLOUD_INSTALL_FAILED", 500, false;
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
            assert!(seen.insert(c.as_str()));
            assert!(c
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_'));
            assert!((200..600).contains(&c.http_status()));
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }

    #[test]
    fn final_codes_do_not_reconnect() {
        for c in [
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::ChannelNotFound,
            ErrorCode::ChannelExpired,
            ErrorCode::FunctionFailed,
            ErrorCode::ChannelCancelled,
        ] {
            assert!(!c.should_reconnect(), "{c}");
        }
        assert!(!ErrorCode::UnsupportedEnvironment.should_reconnect());
        assert!(ErrorCode::ShuttingDown.should_reconnect());
        assert!(ErrorCode::NetworkError.should_reconnect());
    }
}
