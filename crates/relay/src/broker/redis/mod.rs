//! The Redis broker: several relay nodes share channels through one Redis.
//!
//! # Keys
//!
//! Every key of a channel carries the channel id as a hash tag, so that one
//! channel's keys live in one hash slot (what Redis Cluster needs for the
//! scripts below):
//!
//! | key | type | what |
//! |---|---|---|
//! | `sse:{ID}:m` | hash | `last` id, `exp` (expiry, Unix ms), `ended` (Unix ms), `bytes` buffered, `held` (what the byte budgets charge), `by` (creator address), `subs` (subscriber streams on every node), `empty` (when `subs` last fell to 0, Unix ms) |
//! | `sse:{ID}:s` | stream | the replay buffer: entry `N-0` is event `N`, fields `k` (kind), `d` (data) |
//! | `sse:{ID}:k` | hash | idempotency keys (`"message KEY"`, `"end KEY"`) → `"FIRST LAST"` |
//! | `sse:{ID}:o` | list | the same keys, oldest first (to forget the oldest) |
//! | `sse:channels` | sorted set | every channel id → when it goes (the relay-wide count) |
//! | `sse:addr:{ADDRESS}:c` | sorted set | channels of one creator address → when they stop counting |
//! | `sse:addr:{ADDRESS}:r` | hash | that address's creation bucket (`tokens`, `at`) |
//! | `sse:{bytes}:c`, `:sum`, `:until`, `:r`, `:nodes` | hash, hash, sorted set, hash, sorted set | the byte ledger (see `budget.rs`) |
//!
//! `ID` is always 32 lowercase hex digits (checked here too, not only by the
//! routes), so no input can name another channel's keys. Payloads and
//! idempotency keys travel as script arguments and hash fields, never in a
//! key name.
//!
//! Ids are assigned by a Lua script (`append.lua`) together with the
//! idempotency check, so concurrent appends from several nodes never
//! interleave or reuse an id. Every key expires in Redis by itself: the
//! buffer when the channel expires (or when the retention after `end` is
//! over), the metadata and idempotency keys when the tombstone's time is over.
//!
//! # Live delivery
//!
//! The append script publishes `"ID LAST PHASE"` on the Redis channel
//! `sse:notify`. Each node holds one pub/sub connection subscribed to it and
//! feeds the node-local [`watch`] of the channels its subscribers wait on: one
//! Redis connection per node for notifications, one multiplexed connection
//! for commands, whatever the number of subscribers. When the pub/sub
//! connection drops or comes back, every local watch is woken, so that each
//! subscriber reads again (and fails with `BROKER_UNAVAILABLE` while Redis is
//! away, which makes its client reconnect).

mod budget;
mod listen;
mod read;
mod recent;
mod trait_impl;
mod write;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Script};
use sse_channel_protocol::{EventId, EventKind};
use tokio::sync::{watch, Notify};

use self::recent::RecentShared;
use super::{BrokerError, ByteBudgets, Head, Phase};

/// The Redis channel every node listens on for appends.
const NOTIFY: &str = "sse:notify";
/// The sorted set that counts channels across nodes.
const INDEX: &str = "sse:channels";
/// Longest wait for one Redis call before the request fails with
/// `BROKER_UNAVAILABLE`.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Time to open a connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest pause between two attempts to reopen the pub/sub connection.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Bounds of a [`RedisBroker`]: the same as the in-memory broker's, but they
/// hold across every node that shares the Redis.
#[derive(Debug, Clone)]
pub struct RedisLimits {
    /// Channels held at most, across nodes.
    pub max_channels: usize,
    /// Events kept per channel for replay.
    pub replay_events: usize,
    /// Payload bytes kept per channel for replay.
    pub replay_bytes: usize,
    /// Idempotency keys remembered per channel.
    pub idempotency_keys: usize,
    /// How long an ended channel is kept, in ms.
    pub ended_retention_ms: u64,
    /// Bytes held at most in Redis, in all and per creator address, across
    /// nodes (see `budget.rs`).
    pub budgets: ByteBudgets,
}

/// Channels in Redis, shared by every relay node connected to it.
///
/// ```no_run
/// # async fn f() -> Result<(), String> {
/// use sse_relay::broker::{RedisBroker, RedisLimits};
/// let broker = RedisBroker::connect("redis://127.0.0.1:6379/0", RedisLimits {
///     max_channels: 100_000, replay_events: 1000, replay_bytes: 4 << 20,
///     idempotency_keys: 1024, ended_retention_ms: 300_000,
///     budgets: sse_relay::broker::ByteBudgets::NONE,
/// }).await?;
/// # Ok(()) }
/// ```
pub struct RedisBroker {
    inner: Arc<Inner>,
    listener: tokio::task::AbortHandle,
}

struct Inner {
    limits: RedisLimits,
    client: Client,
    conn: ConnectionManager,
    scripts: Scripts,
    /// Channels with subscribers on this node.
    local: Mutex<HashMap<String, Local>>,
    /// Channels created on this node → when they stop counting against their
    /// creator's address (see `Broker::sweep`): their expiry, or the end of
    /// the retention once a notification said they ended.
    created: Mutex<HashMap<String, u64>>,
    /// Channel id → its creator's address, between `Broker::admit_creator`
    /// and `Broker::create` (which stores it with the channel).
    creators: Mutex<HashMap<String, String>>,
    /// Bytes held by the `Recent`s of this node.
    recent_total: Arc<AtomicUsize>,
    /// This process's name in the byte ledger (random).
    node: String,
    /// Settlements for the byte ledger's next call.
    settles: Mutex<Vec<budget::Settle>>,
    /// Bytes held by all channels, as the last ledger call found.
    held_total: AtomicU64,
    /// Channels in the relay-wide index at the last sweep.
    channels: AtomicUsize,
    /// Whether the last call to Redis (and the pub/sub connection) worked.
    up: AtomicBool,
    listening: AtomicBool,
    errors: AtomicU64,
    rtt_us: AtomicU64,
    /// Asks the pub/sub task to reconnect (a failed health check).
    reconnect: Notify,
}

struct Local {
    head: watch::Sender<Head>,
    expires_at_ms: u64,
    /// When Redis drops the channel's keys: the watch closes then, as the
    /// in-memory broker's does when it removes the channel.
    gone_at_ms: u64,
    /// The channel's newest events as this node last read them.
    recent: Arc<RecentShared>,
}

struct Scripts {
    budget: Script,
    subs: Script,
    create: Script,
    creator: Script,
    admit: Script,
    append: Script,
    read: Script,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

fn meta_key(id: &str) -> String {
    format!("sse:{{{id}}}:m")
}

fn keys(id: &str) -> [String; 4] {
    ["m", "s", "k", "o"].map(|s| format!("sse:{{{id}}}:{s}"))
}

/// The same as the in-memory broker's: a client's key cannot hold a space.
fn scoped_key(kind: EventKind, key: &str) -> String {
    format!("{} {key}", kind.as_str())
}

/// When the relay's tokens for a channel expiring at `expires_at_ms` expire.
fn tokens_expire_ms(expires_at_ms: u64) -> u64 {
    expires_at_ms.div_ceil(1000).saturating_mul(1000)
}

/// Checks a `redis://` URL without printing its password.
fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("rediss://") {
        return Err(
            "rediss:// (TLS) is not supported by this build; use redis:// \
                    on a private network or a TLS tunnel (e.g. stunnel) to Redis"
                .into(),
        );
    }
    if !url.starts_with("redis://") {
        return Err("the Redis broker URL must start with redis://".into());
    }
    Ok(())
}

impl RedisBroker {
    /// Connects to Redis at `url` (`redis://[user:password@]host:port[/db]`),
    /// loads the scripts and starts the node's notification listener. Fails
    /// when Redis cannot be reached now; once running, the broker reconnects
    /// by itself.
    pub async fn connect(url: &str, limits: RedisLimits) -> Result<Self, String> {
        check_url(url)?;
        let client = Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(MAX_RECONNECT_DELAY);
        let conn = tokio::time::timeout(
            CALL_TIMEOUT,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| "Redis did not answer in time".to_owned())?
        .map_err(|e| format!("cannot connect to Redis: {e}"))?;
        let inner = Arc::new(Inner {
            limits,
            client,
            conn,
            scripts: Scripts {
                budget: Script::new(include_str!("budget.lua")),
                create: Script::new(include_str!("create.lua")),
                admit: Script::new(include_str!("admit.lua")),
                append: Script::new(include_str!("append.lua")),
                creator: Script::new(include_str!("creator.lua")),
                read: Script::new(include_str!("read.lua")),
                subs: Script::new(include_str!("subs.lua")),
            },
            local: Mutex::default(),
            created: Mutex::default(),
            creators: Mutex::default(),
            recent_total: Arc::default(),
            node: node_name()?,
            settles: Mutex::default(),
            held_total: AtomicU64::new(0),
            channels: AtomicUsize::new(0),
            up: AtomicBool::new(true),
            listening: AtomicBool::new(false),
            errors: AtomicU64::new(0),
            rtt_us: AtomicU64::new(0),
            reconnect: Notify::new(),
        });
        inner.ping().await.map_err(|e| e.message().to_owned())?;
        let listener = tokio::spawn(listen::listen(Arc::downgrade(&inner))).abort_handle();
        // Subscribed before the first subscriber can wait on a watch: a
        // notification sent before that would otherwise go unseen.
        let ready = async {
            while !inner.listening.load(Relaxed) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(CALL_TIMEOUT, ready).await.is_err() {
            listener.abort();
            return Err("cannot subscribe to Redis notifications".into());
        }
        Ok(Self { inner, listener })
    }
}

/// A random name for this process in the byte ledger.
fn node_name() -> Result<String, String> {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// Runs one Redis call with the timeout, recording its outcome.
    async fn call<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, BrokerError> {
        let res = match tokio::time::timeout(CALL_TIMEOUT, f).await {
            Ok(Ok(v)) => {
                self.up.store(true, Relaxed);
                return Ok(v);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        self.errors.fetch_add(1, Relaxed);
        self.up.store(false, Relaxed);
        tracing::warn!(error = %res, "Redis call failed");
        Err(BrokerError::Unavailable(
            "the relay's broker (Redis) is unavailable; retry".into(),
        ))
    }

    async fn ping(&self) -> Result<(), BrokerError> {
        let start = Instant::now();
        let mut conn = self.conn.clone();
        self.call(redis::cmd("PING").query_async::<String>(&mut conn))
            .await?;
        self.rtt_us
            .store(start.elapsed().as_micros() as u64, Relaxed);
        Ok(())
    }

    /// Wakes every local watch, so that its subscribers read again, from
    /// Redis: notifications may have been missed, so neither the watch's head
    /// nor the recent events are to be trusted.
    fn poke_all(&self) {
        for l in lock(&self.local).values_mut() {
            l.recent = RecentShared::new(self.recent_total.clone());
            l.head.send_modify(|_| {});
        }
    }

    /// Applies a notification `"ID LAST PHASE"` to the local watch, if any.
    fn notified(&self, payload: &str) {
        let mut parts = payload.split(' ');
        let (Some(id), Some(last), Some(phase)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let Ok(last) = last.parse::<EventId>() else {
            return;
        };
        let ended = phase == "ended";
        if ended {
            // Like the in-memory broker: an ended channel counts against its
            // creator until its retention is over.
            if let Some(at) = lock(&self.created).get_mut(id) {
                *at = crate::now_ms().saturating_add(self.limits.ended_retention_ms);
            }
        }
        if let Some(l) = lock(&self.local).get_mut(id) {
            if ended {
                l.gone_at_ms = crate::now_ms().saturating_add(self.limits.ended_retention_ms);
            }
            l.head.send_if_modified(|h| {
                if last < h.last_id && !ended {
                    return false;
                }
                h.last_id = h.last_id.max(last);
                if ended {
                    h.phase = Phase::Ended;
                }
                true
            });
        }
    }

    async fn sweep(&self, now_ms: u64) -> Vec<String> {
        let mut released = Vec::new();
        lock(&self.local).retain(|id, l| {
            if l.head.receiver_count() == 0 || now_ms >= l.gone_at_ms {
                return false;
            }
            let h = *l.head.borrow();
            if h.phase == Phase::Open && now_ms >= l.expires_at_ms {
                l.head.send_replace(Head {
                    last_id: h.last_id,
                    phase: Phase::Expired,
                });
                released.push(id.clone());
            }
            true
        });
        lock(&self.created).retain(|id, at| {
            let keep = now_ms < *at;
            if !keep {
                released.push(id.clone());
            }
            keep
        });
        // The health check: a round trip, the relay-wide channel count, and a
        // fresh pub/sub connection if Redis came back without it noticing.
        if self.ping().await.is_ok() {
            self.audit().await;
            let mut conn = self.conn.clone();
            let mut cmd = redis::cmd("ZCOUNT");
            cmd.arg(INDEX).arg(now_ms).arg("+inf");
            let count = cmd.query_async::<usize>(&mut conn);
            if let Ok(n) = self.call(count).await {
                self.channels.store(n, Relaxed);
            }
        } else if self.listening.load(Relaxed) {
            // The pub/sub connection may be half-open (no FIN seen): reopen it.
            self.reconnect.notify_one();
        }
        released
    }
}

/// An address as the relay writes it (IPv4 or IPv6 text): safe in a hash tag.
fn is_address(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 45
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
}

/// The keys of one creator address: its live channels and its creation bucket.
fn creator_keys(addr: &str) -> [String; 2] {
    [
        format!("sse:addr:{{{addr}}}:c"),
        format!("sse:addr:{{{addr}}}:r"),
    ]
}

/// A count kept by `HINCRBY` (never below 0 in practice; a node that died
/// with streams open leaves it too high, never too low).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn malformed() -> BrokerError {
    BrokerError::Unavailable("unexpected answer from Redis".into())
}

fn parse_id(s: Option<&String>) -> Result<EventId, BrokerError> {
    s.and_then(|s| s.parse().ok()).ok_or_else(malformed)
}

/// The event id of a stream entry id `N-0` (`"0"`: none).
fn stream_id(s: &str) -> Result<EventId, BrokerError> {
    s.split('-')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(malformed)
}

fn status_error(status: Option<&str>) -> BrokerError {
    match status {
        Some("NOTFOUND") => BrokerError::NotFound,
        Some("ENDED") => BrokerError::Ended,
        Some("EXPIRED") => BrokerError::Expired,
        _ => malformed(),
    }
}
