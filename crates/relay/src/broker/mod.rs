//! Where channels and their events live.
//!
//! [`Broker`] is the seam between the HTTP layer and storage. The in-memory
//! [`MemoryBroker`] is the embedded default; the [`RedisBroker`] (several
//! relay nodes sharing channels) implements the same trait: `append` is an
//! `XADD` under a per-channel sequence, `read` an `XRANGE` after an id, and
//! `watch` a node-local [`tokio::sync::watch`] fed by one pub/sub connection
//! per node.
//!
//! Subscribers never get events pushed into a per-subscriber queue: they hold a
//! cursor, wait on [`Broker::watch`] for the head to move, then [`Broker::read`]
//! from the replay buffer. A slow subscriber therefore cannot make the relay
//! buffer without bound, and when it falls behind the buffer it is told exactly
//! which ids it lost ([`ReadBatch::lost`]).

mod memory;
mod redis;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use sse_channel_protocol::frame::{sse_event, ws_frame};
use sse_channel_protocol::{ErrorCode, EventId, EventKind, LostRange};
use tokio::sync::watch;

pub use self::redis::{RedisBroker, RedisLimits};
pub use memory::{MemoryBroker, MemoryLimits};

/// A boxed `Send` future, so that [`Broker`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One stored event. Its SSE and WebSocket frames are built at most once and
/// shared by every subscriber.
#[derive(Debug)]
pub struct Event {
    /// Sequence id within the channel (1, 2, 3, …).
    pub id: EventId,
    /// [`EventKind::Message`], or a final kind: [`EventKind::End`], or
    /// [`EventKind::Error`] (a failed or cancelled channel, data
    /// `sse_channel_protocol::frame::ErrorData`).
    pub kind: EventKind,
    /// The payload, validated JSON text as published.
    pub data: Box<str>,
    sse: OnceLock<Bytes>,
    ws: OnceLock<Box<str>>,
}

impl Event {
    /// An event; `data` must be JSON text.
    pub fn new(id: EventId, kind: EventKind, data: Box<str>) -> Self {
        Self {
            id,
            kind,
            data,
            sse: OnceLock::new(),
            ws: OnceLock::new(),
        }
    }

    /// The event as SSE text (`id:`, `event:`, `data:` lines).
    pub fn sse_frame(&self) -> &Bytes {
        self.sse.get_or_init(|| {
            let mut s = String::with_capacity(self.data.len() + 40);
            sse_event(&mut s, Some(self.id), self.kind, &self.data);
            Bytes::from(s)
        })
    }

    /// The event as the JSON text of a WebSocket frame.
    pub fn ws_frame(&self) -> &str {
        self.ws
            .get_or_init(|| ws_frame(Some(self.id), self.kind, &self.data).into())
    }
}

/// What one stored event is charged against the memory budgets: its payload
/// and its two frames (SSE and WebSocket, each the payload plus its fields;
/// counted whether built yet or not), plus the event's bookkeeping.
///
/// ```
/// assert_eq!(sse_relay::broker::event_cost(1000), 3 * 1000 + 256);
/// ```
pub const fn event_cost(payload_len: usize) -> u64 {
    3 * payload_len as u64 + 256
}

/// What one remembered idempotency key is charged (held twice: map and order).
pub const fn key_cost(key_len: usize) -> u64 {
    2 * key_len as u64 + 64
}

/// Whether an event of this kind ends its channel (every stored kind but
/// [`EventKind::Message`]).
pub fn is_final(kind: EventKind) -> bool {
    kind != EventKind::Message
}

/// Lifecycle of a channel as seen by its subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepting messages.
    Open,
    /// The final event (`end`, or a final `error`) is stored; nothing more will be.
    Ended,
    /// The lifetime passed before `end`; streams close with `CHANNEL_EXPIRED`.
    Expired,
}

/// The latest state of a channel, as published on its [`watch`] channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Id of the newest event (0 when none).
    pub last_id: EventId,
    /// The channel's phase.
    pub phase: Phase,
}

/// A channel to create.
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// 32 lowercase hex digits.
    pub id: String,
    /// Expiry, Unix ms.
    pub expires_at_ms: u64,
    /// The creator's address as the relay groups it (IPv4, or IPv6 by its
    /// prefix), whose per-address byte budget ([`ByteBudgets::per_creator`])
    /// the channel's bytes count against; `None`: no per-address budget.
    pub creator: Option<String>,
}

/// The byte budgets a broker enforces on every append, before storing
/// anything (with the Redis broker: across every node sharing the Redis).
/// Bytes are counted as [`event_cost`] and [`key_cost`] do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteBudgets {
    /// Bytes held by all channels (`--max-buffered-bytes`); beyond it,
    /// [`BrokerError::BufferFull`].
    pub total: u64,
    /// Bytes held by the channels of one creator address
    /// (`--max-buffered-bytes-per-address`); beyond it,
    /// [`BrokerError::CreatorBufferFull`]. 0: no limit.
    pub per_creator: u64,
}

impl ByteBudgets {
    /// No budget at all.
    pub const NONE: Self = Self {
        total: u64::MAX,
        per_creator: 0,
    };
}

/// What appending `payloads` with the (already kind-scoped) idempotency key
/// `scoped_key` is charged against the [`ByteBudgets`].
pub fn append_cost(payloads: &[Box<str>], scoped_key: Option<&str>) -> u64 {
    payloads.iter().map(|p| event_cost(p.len())).sum::<u64>()
        + scoped_key.map_or(0, |k| key_cost(k.len()))
}

/// Messages to store in one step, with consecutive ids.
#[derive(Debug)]
pub struct Append {
    /// [`EventKind::Message`] for publish; [`EventKind::End`] for end,
    /// [`EventKind::Error`] for fail and cancel (one payload each). Every
    /// kind but `Message` is final: the channel ends with it.
    pub kind: EventKind,
    /// JSON texts, in order.
    pub payloads: Vec<Box<str>>,
    /// Makes a retry store nothing and answer the first answer again. Scoped by
    /// [`Append::kind`]: the same key on publish and on end names two requests.
    pub idempotency_key: Option<String>,
    /// Now, Unix ms.
    pub now_ms: u64,
    /// Stored even past the [`ByteBudgets`] (still counted): the relay's own
    /// final event (`CHANNEL_CANCELLED` on cancel or abandonment), one small
    /// event per channel, so that a full relay can still end its channels.
    pub exempt: bool,
}

/// What [`Broker::append`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// First id stored.
    pub first_id: EventId,
    /// Last id stored.
    pub last_id: EventId,
    /// True when answered from the idempotency memory (nothing stored).
    pub replayed: bool,
    /// The channel's subscriber streams across every node sharing the
    /// broker, when the broker counts them ([`Broker::subscribers_changed`]);
    /// `None`: the relay counts its own.
    pub subscribers: Option<u64>,
}

/// Events after a cursor.
#[derive(Debug)]
pub struct ReadBatch {
    /// Ids after the cursor that are no longer buffered.
    pub lost: Option<LostRange>,
    /// Buffered events after the cursor (after `lost`), in order.
    pub events: Vec<Arc<Event>>,
    /// The channel's head at the time of the read.
    pub head: Head,
}

/// Why a broker call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerError {
    /// No such channel.
    NotFound,
    /// The channel has ended.
    Ended,
    /// The channel's lifetime is over.
    Expired,
    /// The broker holds its maximum of channels.
    Full,
    /// The id is taken (128 random bits: practically never).
    Exists,
    /// The storage behind the broker failed.
    Unavailable(String),
    /// The creator's address is over a per-address limit (the sentence says
    /// which one).
    RateLimited(&'static str),
    /// Storing the events would pass [`ByteBudgets::total`]; nothing was stored.
    BufferFull,
    /// Storing the events would pass [`ByteBudgets::per_creator`] for the
    /// channel's creator; nothing was stored.
    CreatorBufferFull,
}

impl BrokerError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::ChannelNotFound,
            Self::Ended => ErrorCode::ChannelEnded,
            Self::Expired => ErrorCode::ChannelExpired,
            Self::Full => ErrorCode::TooManyChannels,
            Self::Exists => ErrorCode::Internal,
            Self::Unavailable(_) => ErrorCode::BrokerUnavailable,
            Self::RateLimited(_) | Self::CreatorBufferFull => ErrorCode::RateLimited,
            Self::BufferFull => ErrorCode::BufferFull,
        }
    }

    /// A sentence for the error body.
    pub fn message(&self) -> &str {
        match self {
            Self::NotFound => "no such channel",
            Self::Ended => "the channel has ended",
            Self::Expired => "the channel has expired",
            Self::Full => "the relay holds its maximum of channels",
            Self::Exists => "channel id collision",
            Self::Unavailable(m) => m,
            Self::RateLimited(m) => m,
            Self::BufferFull => "the relay holds its maximum of buffered bytes; retry later",
            Self::CreatorBufferFull => {
                "the channels created from this client address hold their maximum of \
                 buffered bytes; retry later"
            }
        }
    }
}

/// Channel storage: sequence ids, a bounded replay buffer, resume from an id,
/// and a notification when a channel's head moves. Object-safe (`Arc<dyn Broker>`).
pub trait Broker: Send + Sync + 'static {
    /// Creates a channel.
    fn create(&self, channel: NewChannel) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// Stores events with consecutive ids, in one step: concurrent appends to one
    /// channel never interleave. Honours the idempotency key before anything else.
    fn append<'a>(
        &'a self,
        channel: &'a str,
        append: Append,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>>;

    /// Up to `max` events with ids greater than `after`, plus the range of ids
    /// after `after` that are no longer buffered.
    fn read<'a>(
        &'a self,
        channel: &'a str,
        after: EventId,
        max: usize,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ReadBatch, BrokerError>>;

    /// A receiver that changes whenever the channel's [`Head`] does. When the
    /// channel is removed, the sender is dropped.
    fn watch<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<Head>, BrokerError>>;

    /// Closes channels whose lifetime is over (phase [`Phase::Expired`]; they
    /// answer `CHANNEL_EXPIRED` for the ended-retention time, then go) and
    /// removes ended channels past their retention. Returns the ids that
    /// stopped being live in this sweep or were removed (an id may be
    /// returned twice: once when it expires, once when it goes).
    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, Vec<String>>;

    /// Channels currently held (for metrics).
    fn channel_count(&self) -> usize;

    /// Counts the channel `channel` (to be created) against its creator's
    /// address across every relay node sharing this broker, until `until_ms`
    /// or, once [`Broker::create`] knows it, the channel's expiry; or refuses
    /// it with [`BrokerError::RateLimited`]. `None` (the default): the broker
    /// keeps no shared count, and the relay applies the limits per node.
    fn admit_creator<'a>(
        &'a self,
        _creator: &'a str,
        _channel: &'a str,
        _until_ms: u64,
        _limits: CreatorLimits,
    ) -> Option<BoxFuture<'a, Result<(), BrokerError>>> {
        None
    }

    /// Undoes [`Broker::admit_creator`] when [`Broker::create`] then failed.
    fn forget_creator<'a>(&'a self, _creator: &'a str, _channel: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    /// Bytes held for the channels' buffers and idempotency keys, as
    /// [`event_cost`] and [`key_cost`] count them; what [`ByteBudgets::total`]
    /// bounds (Redis: across every node, as of the node's last call).
    fn buffered_bytes(&self) -> u64 {
        0
    }

    /// [`Broker::buffered_bytes`] of one channel (0 when unknown).
    fn channel_buffered_bytes(&self, channel: &str) -> u64 {
        let _ = channel;
        0
    }

    /// Tells a broker shared by several nodes that this node's subscriber
    /// streams of `channel` went up or down by one (`delta` is 1 or -1), at
    /// `now_ms`. The default (an embedded broker) keeps no count: the relay's
    /// own is the whole count.
    fn subscribers_changed<'a>(
        &'a self,
        _channel: &'a str,
        _delta: i64,
        _now_ms: u64,
    ) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    /// The count [`Broker::subscribers_changed`] keeps: the channel's
    /// subscriber streams on every node, and since when (Unix ms) it has been
    /// 0 (`None`: it never went down). `None` (the default): not counted.
    fn shared_subscribers<'a>(&'a self, _channel: &'a str) -> BoxFuture<'a, Option<SharedCount>> {
        Box::pin(std::future::ready(None))
    }

    /// Whether the storage behind the broker answers, for `/healthz` and
    /// `/metrics`. Cheap: no call to the storage. Default: an embedded
    /// broker that is always up.
    fn status(&self) -> BrokerStatus {
        BrokerStatus {
            kind: "memory",
            up: true,
            errors: 0,
            round_trip_us: None,
        }
    }
}

/// The per-address creation limits ([`Broker::admit_creator`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CreatorLimits {
    /// Live channels per address (`--channels-per-address`).
    pub channels: usize,
    /// Creations per second per address (`--create-rate-per-sec`).
    pub rate_per_sec: u32,
    /// Creation burst per address (`--create-burst`).
    pub burst: u32,
    /// How long an ended channel still counts, in ms (`--ended-retention-secs`).
    pub ended_retention_ms: u64,
}

/// What [`Broker::shared_subscribers`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedCount {
    /// Subscriber streams on every node.
    pub subscribers: u64,
    /// When the count last fell to 0, Unix ms.
    pub empty_since_ms: Option<u64>,
}

/// What [`Broker::status`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerStatus {
    /// `"memory"` or `"redis"`.
    pub kind: &'static str,
    /// False while the storage is unreachable (publishes then answer
    /// `BROKER_UNAVAILABLE`).
    pub up: bool,
    /// Failed calls to the storage since start.
    pub errors: u64,
    /// Round-trip time of the last health check, in µs (`None`: embedded).
    pub round_trip_us: Option<u64>,
}
