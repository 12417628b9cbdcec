//! Default limits. The relay's flags override them; the values here are the
//! documented defaults (`sse-relay --help` and `docs/protocol.md` repeat them).
//!
//! ```
//! assert_eq!(sse_channel_protocol::limits::MAX_MESSAGE_BYTES, 64 * 1024);
//! ```

/// Length of a channel id in hex digits (128 bits).
pub const CHANNEL_ID_LEN: usize = 32;
/// Longest token the relay or writer accepts, in bytes.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Longest `Idempotency-Key` header value.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
/// Largest single message (its JSON text), in bytes. Default 64 KiB; larger → 413.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest publish request body, in bytes. Default 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most messages in one batch. Default 1,000.
pub const MAX_BATCH_MESSAGES: usize = 1000;
/// Replay buffer per channel, in events. Default 4,096: room for the
/// backpressure high-water mark (half of it) plus one full batch
/// ([`MAX_BATCH_MESSAGES`]) stored while a publish answer waits.
pub const REPLAY_BUFFER_EVENTS: usize = 4096;
/// Replay buffer per channel, in bytes of payload. Default 4 MiB.
pub const REPLAY_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Channel lifetime when the creator asks for none, in seconds. Default 1 hour.
pub const DEFAULT_CHANNEL_TTL_SECS: u64 = 3600;
/// Longest channel lifetime a creator may ask for, in seconds. Default 24 hours.
pub const MAX_CHANNEL_TTL_SECS: u64 = 24 * 3600;
/// How long an ended channel is kept so a late reconnect still gets `end`, in
/// seconds. Default 5 minutes.
pub const ENDED_RETENTION_SECS: u64 = 300;
/// Heartbeat interval on every stream, in milliseconds. Default 15 s.
pub const HEARTBEAT_MS: u64 = 15_000;
/// Live channels per client address. Default 100.
pub const CHANNELS_PER_ADDRESS: usize = 100;
/// Channel creations per second per client address (token bucket rate). Default 10.
pub const CREATE_RATE_PER_SEC: u32 = 10;
/// Channel creation burst per client address (token bucket size). Default 20.
pub const CREATE_BURST: u32 = 20;
/// Channels per relay. Default 100,000.
pub const MAX_CHANNELS: usize = 100_000;
/// Subscriber connections per channel. Default 8.
pub const CONNECTIONS_PER_CHANNEL: usize = 8;
/// Idempotency keys remembered per channel. Default 1,024.
pub const IDEMPOTENCY_KEYS_PER_CHANNEL: usize = 1024;
/// Time a client has to send its request headers, in milliseconds. Default 10 s.
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Backpressure high-water mark, in percent of the replay buffer (events and
/// bytes): a publish answer waits while a live reader is further behind.
/// Default 50.
pub const BACKPRESSURE_HIGH_WATER_PERCENT: u8 = 50;
/// Longest time one publish answer waits for a reader behind the high-water
/// mark, in milliseconds; then that reader is released (it gets
/// `MESSAGES_LOST` if it falls out of the buffer). Default 5 s, below the
/// writer's 10 s request timeout.
pub const BACKPRESSURE_MAX_WAIT_MS: u64 = 5000;
/// Open HTTP connections per relay process. Default 10,000.
pub const MAX_CONNECTIONS: usize = 10_000;
/// A write to a client that makes no progress for this long closes its
/// connection, in milliseconds. Default 30 s.
pub const WRITE_TIMEOUT_MS: u64 = 30_000;
/// Bytes a relay process holds for buffered events (payloads and frames) and
/// idempotency keys. Default 1 GiB.
pub const MAX_BUFFERED_BYTES: u64 = 1 << 30;
/// Bytes the channels created from one client address (an IPv6 /64) may hold.
/// Default 64 MiB.
pub const MAX_BUFFERED_BYTES_PER_ADDRESS: u64 = 64 << 20;
/// Longest `message` of a `POST …/fail` body, in characters; longer → 400.
pub const MAX_FAIL_MESSAGE_CHARS: usize = 1024;
/// Longest `reason` of a `POST …/cancel` body, in characters; longer → 400.
pub const MAX_CANCEL_REASON_CHARS: usize = 256;
/// Smallest `abandonAfterMs` a creator may ask for, in milliseconds (1 s).
pub const MIN_ABANDON_AFTER_MS: u64 = 1000;
/// Largest `abandonAfterMs` a creator may ask for, in milliseconds (1 hour).
pub const MAX_ABANDON_AFTER_MS: u64 = 3_600_000;
/// How long `GET …/wait` waits when the request names no `timeoutMs`, in
/// milliseconds. Default 25 s.
pub const DEFAULT_WAIT_TIMEOUT_MS: u64 = 25_000;
/// Longest `timeoutMs` of `GET …/wait`, in milliseconds (60 s); longer → 400.
pub const MAX_WAIT_TIMEOUT_MS: u64 = 60_000;
/// The cancel reason (and `message`) of a channel the relay cancelled
/// because nobody listened for `abandonAfterMs`.
pub const ABANDONED_REASON: &str = "ABANDONED";
/// The cancel `message` when the reader gave no reason.
pub const DEFAULT_CANCEL_MESSAGE: &str = "cancelled by the reader";
