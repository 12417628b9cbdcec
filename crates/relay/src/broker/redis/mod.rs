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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Script};
use sse_channel_protocol::descriptor::is_channel_id;
use sse_channel_protocol::{EventId, EventKind, LostRange};
use tokio::sync::{watch, Notify};

use super::{
    Append, Appended, BoxFuture, Broker, BrokerError, BrokerStatus, ByteBudgets, CreatorLimits,
    Event, Head, NewChannel, Phase, ReadBatch, SharedCount,
};

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
    /// creator's address (see [`Broker::sweep`]): their expiry, or the end of
    /// the retention once a notification said they ended.
    created: Mutex<HashMap<String, u64>>,
    /// Channel id → its creator's address, between [`Broker::admit_creator`]
    /// and [`Broker::create`] (which stores it with the channel).
    creators: Mutex<HashMap<String, String>>,
    /// Bytes held by the [`Recent`]s of this node.
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

/// Events most recently read from Redis for the readers of one channel on
/// this node. When a notification wakes N readers, the first one reads the
/// new events from Redis and the others take them from here: one Redis call
/// per event and node rather than per reader, and each event's frames are
/// built once per node and shared, as with the in-memory broker.
struct Recent {
    /// Consecutive ids.
    events: std::collections::VecDeque<Arc<Event>>,
    /// What the events cost ([`super::event_cost`]).
    cost: usize,
    /// The head at the last read from Redis.
    head: Option<Head>,
    /// What every [`Recent`] of the node holds, at most [`RECENT_TOTAL`].
    total: Arc<AtomicUsize>,
}

/// Most events kept in a [`Recent`].
const RECENT_EVENTS: usize = 256;
/// Most bytes ([`super::event_cost`]) kept in a [`Recent`] (the newest event
/// is always kept).
const RECENT_COST: usize = 256 * 1024;
/// Most bytes all the [`Recent`]s of a node hold together; past it, reads
/// go to Redis (correct, only slower).
const RECENT_TOTAL: usize = 32 * 1024 * 1024;

fn cost(e: &Event) -> usize {
    usize::try_from(super::event_cost(e.data.len())).unwrap_or(usize::MAX)
}

impl Drop for Recent {
    fn drop(&mut self) {
        self.total.fetch_sub(self.cost, Relaxed);
    }
}

/// A channel's [`Recent`] and its single read from Redis in flight: readers
/// that miss while another one reads wait for that read instead of making
/// their own, and are all woken at once when it is done.
struct RecentShared {
    recent: Mutex<Recent>,
    /// True while one reader reads from Redis for the others.
    fetching: AtomicBool,
    /// Wakes the waiting readers when a read is done.
    done: Notify,
}

/// Ends a read from Redis for the waiting readers, also when the reading
/// future is dropped half-way.
struct Fetching<'a>(&'a RecentShared);

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        self.0
            .fetching
            .store(false, std::sync::atomic::Ordering::Release);
        self.0.done.notify_waiters();
    }
}

impl RecentShared {
    fn new(total: Arc<AtomicUsize>) -> Arc<Self> {
        Arc::new(Self {
            recent: Mutex::new(Recent {
                events: std::collections::VecDeque::new(),
                cost: 0,
                head: None,
                total,
            }),
            fetching: AtomicBool::new(false),
            done: Notify::new(),
        })
    }
}

impl Recent {
    fn clear(&mut self) {
        self.total.fetch_sub(self.cost, Relaxed);
        self.events.clear();
        self.cost = 0;
    }

    /// The answer to a read after `after`, if what is held answers it: it
    /// reaches `after + 1` and holds everything up to `known`, the newest head
    /// the node has heard of.
    fn serve(&self, after: EventId, max: usize, known: Head) -> Option<ReadBatch> {
        let held = self.head?;
        let first = self.events.front()?.id;
        let last = self.events.back()?.id;
        if first > after + 1 || last < known.last_id || last < held.last_id {
            return None;
        }
        let ended = held.phase == Phase::Ended || known.phase == Phase::Ended;
        Some(ReadBatch {
            lost: None,
            events: self
                .events
                .iter()
                .filter(|e| e.id > after)
                .take(max)
                .cloned()
                .collect(),
            head: Head {
                last_id: last,
                phase: if ended { Phase::Ended } else { Phase::Open },
            },
        })
    }

    /// Keeps what a read from Redis returned, within `max_events` and
    /// `max_bytes` (the replay buffer's bounds, so that what is kept here is
    /// still in Redis's buffer and `MESSAGES_LOST` answers as without it).
    fn keep(&mut self, batch: &ReadBatch, max_events: usize, max_bytes: usize) {
        if self.head.is_none_or(|h| h.last_id <= batch.head.last_id) {
            self.head = Some(batch.head);
        }
        let Some(first) = batch.events.first().map(|e| e.id) else {
            return;
        };
        let joins = self
            .events
            .front()
            .zip(self.events.back())
            .is_some_and(|(f, l)| f.id <= first && first <= l.id + 1);
        if !joins {
            if self
                .events
                .front()
                .is_some_and(|f| batch.events.last().is_some_and(|l| l.id < f.id))
            {
                // A reader far behind: keep the newer events for the others.
                return;
            }
            self.clear();
        }
        let before = self.cost;
        let last = self.events.back().map_or(0, |e| e.id);
        for e in batch.events.iter().filter(|e| e.id > last) {
            self.cost += cost(e);
            self.events.push_back(e.clone());
        }
        let max_events = max_events.min(RECENT_EVENTS);
        // The replay buffer's bound is on payload bytes; a payload's cost is
        // more than its length, so this keeps no more than the buffer holds.
        let max_cost = max_bytes.min(RECENT_COST);
        while self.events.len() > 1 && (self.events.len() > max_events || self.cost > max_cost) {
            if let Some(old) = self.events.pop_front() {
                self.cost -= cost(&old);
            }
        }
        let grown = self.cost.saturating_sub(before);
        let shrunk = before.saturating_sub(self.cost);
        let total = self.total.fetch_add(grown, Relaxed) + grown;
        self.total.fetch_sub(shrunk, Relaxed);
        if total.saturating_sub(shrunk) > RECENT_TOTAL {
            self.clear();
        }
    }
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
        let listener = tokio::spawn(listen(Arc::downgrade(&inner))).abort_handle();
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

    async fn create(&self, channel: NewChannel) -> Result<(), BrokerError> {
        if !is_channel_id(&channel.id) {
            return Err(BrokerError::NotFound);
        }
        let gone =
            tokens_expire_ms(channel.expires_at_ms).saturating_add(self.limits.ended_retention_ms);
        let mut conn = self.conn.clone();
        let admitted: String = self
            .call(
                self.scripts
                    .admit
                    .key(INDEX)
                    .arg(crate::now_ms())
                    .arg(self.limits.max_channels)
                    .arg(&channel.id)
                    .arg(gone)
                    .invoke_async(&mut conn),
            )
            .await?;
        if admitted == "FULL" {
            return Err(BrokerError::Full);
        }
        let admitted_by = lock(&self.creators).remove(&channel.id);
        let creator = channel.creator.clone().or(admitted_by).unwrap_or_default();
        let made: String = self
            .call(
                self.scripts
                    .create
                    .key(meta_key(&channel.id))
                    .arg(channel.expires_at_ms)
                    .arg(gone)
                    .arg(&creator)
                    .invoke_async(&mut conn),
            )
            .await?;
        if made == "EXISTS" {
            return Err(BrokerError::Exists);
        }
        if is_address(&creator) {
            // Admitted until the longest lifetime: now the real one is known.
            let [live, _] = creator_keys(&creator);
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(live)
                .arg("XX")
                .arg(channel.expires_at_ms)
                .arg(&channel.id);
            self.call(zadd.query_async::<i64>(&mut conn)).await?;
        }
        // The channel's entry in the byte ledger, with its creator.
        let entry = budget::Reserve {
            id: &channel.id,
            bytes: 0,
            addr: &creator,
            until: gone,
        };
        self.ledger(Some(entry), 0).await?;
        lock(&self.created).insert(channel.id, channel.expires_at_ms);
        Ok(())
    }

    async fn admit_creator(
        &self,
        creator: &str,
        channel: &str,
        until_ms: u64,
        limits: CreatorLimits,
    ) -> Result<(), BrokerError> {
        let [live, bucket] = creator_keys(creator);
        let mut conn = self.conn.clone();
        let answer: String = self
            .call(
                self.scripts
                    .creator
                    .key(live)
                    .key(bucket)
                    .arg(crate::now_ms())
                    .arg(limits.channels)
                    .arg(limits.rate_per_sec)
                    .arg(limits.burst)
                    .arg(channel)
                    .arg(until_ms)
                    .invoke_async(&mut conn),
            )
            .await?;
        match answer.as_str() {
            "OK" => {
                lock(&self.creators).insert(channel.to_owned(), creator.to_owned());
                Ok(())
            }
            "FULL" => Err(BrokerError::RateLimited(
                "this address holds its maximum of live channels",
            )),
            _ => Err(BrokerError::RateLimited(
                "channel creation rate exceeded for this address",
            )),
        }
    }

    async fn append(&self, id: &str, append: Append) -> Result<Appended, BrokerError> {
        if !is_channel_id(id) {
            return Err(BrokerError::NotFound);
        }
        let ended = super::is_final(append.kind);
        let scoped = append
            .idempotency_key
            .as_deref()
            .map(|k| scoped_key(append.kind, k));
        let cost = super::append_cost(&append.payloads, scoped.as_deref());
        // Before anything is stored: refused here, nothing is.
        let reserved = self.reserve(id, cost).await?;
        let mut inv = self.scripts.append.prepare_invoke();
        for k in keys(id) {
            inv.key(k);
        }
        inv.arg(id)
            .arg(append.kind.as_str())
            .arg(scoped.unwrap_or_default())
            .arg(append.now_ms)
            .arg(self.limits.replay_events.max(1))
            .arg(self.limits.replay_bytes)
            .arg(self.limits.idempotency_keys.max(1))
            .arg(self.limits.ended_retention_ms)
            .arg(NOTIFY);
        for p in &append.payloads {
            inv.arg(p.as_bytes());
        }
        let mut conn = self.conn.clone();
        let out: Vec<String> = self.call(inv.invoke_async(&mut conn)).await?;
        if out.first().map(String::as_str) == Some("OK") {
            let num = |i: usize| out.get(i).and_then(|v| v.parse::<u64>().ok());
            reserved.settle(budget::Settle {
                id: id.to_owned(),
                reserved: cost,
                held: num(5),
                version: num(2).unwrap_or(0),
                until: num(6),
                addr: out.get(3).cloned().unwrap_or_default(),
            });
        }
        let done = match out.first().map(String::as_str) {
            Some("OK") => Appended {
                first_id: parse_id(out.get(1))?,
                last_id: parse_id(out.get(2))?,
                replayed: false,
                subscribers: out.get(4).and_then(|s| s.parse::<i64>().ok()).map(count),
            },
            Some("REPLAYED") => {
                let (first, last) = out
                    .get(1)
                    .and_then(|s| s.split_once(' '))
                    .ok_or_else(malformed)?;
                Appended {
                    first_id: first.parse().map_err(|_| malformed())?,
                    last_id: last.parse().map_err(|_| malformed())?,
                    replayed: true,
                    subscribers: out.get(2).and_then(|s| s.parse::<i64>().ok()).map(count),
                }
            }
            other => return Err(status_error(other)),
        };
        if ended && !done.replayed {
            // The relay-wide index and the creator's count forget the channel
            // with its keys.
            let gone = append.now_ms.saturating_add(self.limits.ended_retention_ms);
            let mut pipe = redis::pipe();
            pipe.cmd("ZADD").arg(INDEX).arg("XX").arg(gone).arg(id);
            if let Some(by) = out.get(3).filter(|b| is_address(b)) {
                let [live, _] = creator_keys(by);
                pipe.cmd("ZADD").arg(live).arg("XX").arg(gone).arg(id);
            }
            let mut conn = self.conn.clone();
            let _: Result<Vec<i64>, _> = self.call(pipe.query_async(&mut conn)).await;
        }
        Ok(done)
    }

    async fn read(
        &self,
        id: &str,
        after: EventId,
        max: usize,
        now_ms: u64,
    ) -> Result<ReadBatch, BrokerError> {
        // A check (max 0, at admission) always asks Redis whether the
        // channel is still there.
        if max == 0 {
            return self.read_at(id, after, max, now_ms).await.map(|(b, _)| b);
        }
        loop {
            let local = lock(&self.local)
                .get(id)
                .filter(|l| now_ms < l.gone_at_ms)
                .map(|l| (l.recent.clone(), *l.head.borrow(), l.expires_at_ms));
            let Some((shared, known, expires_at_ms)) = local else {
                return self.read_at(id, after, max, now_ms).await.map(|(b, _)| b);
            };
            let served = || {
                let batch = lock(&shared.recent).serve(after, max, known)?;
                Some(
                    if batch.head.phase != Phase::Ended && now_ms >= expires_at_ms {
                        Err(BrokerError::Expired)
                    } else {
                        Ok(batch)
                    },
                )
            };
            if let Some(answer) = served() {
                return answer;
            }
            // Registered before the flag is looked at: a read that ends
            // after the look wakes this reader.
            let done = shared.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if shared
                .fetching
                .swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                // Another reader is reading from Redis: take its result.
                done.await;
                continue;
            }
            let fetching = Fetching(&shared);
            if let Some(answer) = served() {
                return answer;
            }
            let (batch, meta) = self.read_at(id, after, max, now_ms).await?;
            if let Some(l) = lock(&self.local).get_mut(id) {
                l.gone_at_ms = meta.gone_at_ms;
            }
            lock(&shared.recent).keep(&batch, self.limits.replay_events, self.limits.replay_bytes);
            drop(fetching);
            return Ok(batch);
        }
    }

    /// [`Inner::read`], with the channel's times.
    async fn read_at(
        &self,
        id: &str,
        after: EventId,
        max: usize,
        now_ms: u64,
    ) -> Result<(ReadBatch, Meta), BrokerError> {
        if !is_channel_id(id) {
            return Err(BrokerError::NotFound);
        }
        let [meta, stream, ..] = keys(id);
        let mut conn = self.conn.clone();
        let out: Vec<String> = self
            .call(
                self.scripts
                    .read
                    .key(meta)
                    .key(stream)
                    .arg(after)
                    .arg(max)
                    .arg(now_ms)
                    .invoke_async(&mut conn),
            )
            .await?;
        if out.first().map(String::as_str) != Some("OK") {
            return Err(status_error(out.first().map(String::as_str)));
        }
        let last_id = parse_id(out.get(1))?;
        let ended_at_ms = out.get(2).and_then(|s| s.parse::<u64>().ok());
        let ended = ended_at_ms.is_some();
        let expires_at_ms = parse_id(out.get(3))?;
        let first = stream_id(out.get(4).ok_or_else(malformed)?)?;
        let head = Head {
            last_id,
            phase: if ended { Phase::Ended } else { Phase::Open },
        };
        let mut events = Vec::with_capacity((out.len() - 5) / 3);
        for e in out[5..].chunks_exact(3) {
            let kind = EventKind::parse(&e[1]).ok_or_else(malformed)?;
            events.push(Arc::new(Event::new(
                stream_id(&e[0])?,
                kind,
                e[2].as_str().into(),
            )));
        }
        let lost = if first != 0 {
            (after + 1 < first).then(|| LostRange {
                from: after + 1,
                to: first - 1,
            })
        } else {
            (last_id > after).then(|| LostRange {
                from: after + 1,
                to: last_id,
            })
        };
        let meta = Meta {
            expires_at_ms,
            gone_at_ms: match ended_at_ms {
                Some(at) => at.saturating_add(self.limits.ended_retention_ms),
                None => {
                    tokens_expire_ms(expires_at_ms).saturating_add(self.limits.ended_retention_ms)
                }
            },
        };
        Ok((ReadBatch { lost, events, head }, meta))
    }

    async fn watch(&self, id: &str) -> Result<watch::Receiver<Head>, BrokerError> {
        if let Some(l) = lock(&self.local).get(id) {
            return Ok(l.head.subscribe());
        }
        // Registered after this read: a notification in between is not lost,
        // because a subscriber reads once before it first waits.
        let (batch, meta) = self.read_at(id, 0, 0, 0).await?;
        let mut local = lock(&self.local);
        let l = local.entry(id.to_owned()).or_insert_with(|| Local {
            head: watch::channel(batch.head).0,
            expires_at_ms: meta.expires_at_ms,
            gone_at_ms: meta.gone_at_ms,
            recent: RecentShared::new(self.recent_total.clone()),
        });
        Ok(l.head.subscribe())
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

/// A channel's times, as a read found them.
struct Meta {
    expires_at_ms: u64,
    /// When its keys go (the end of the retention after `end`, or of the
    /// tombstone after expiry).
    gone_at_ms: u64,
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

/// The node's notification listener: one pub/sub connection, reopened
/// whenever it drops, for as long as the broker exists.
async fn listen(inner: Weak<Inner>) {
    let mut delay = Duration::from_millis(50);
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let client = strong.client.clone();
        drop(strong);
        let connected = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(NOTIFY).await?;
            Ok::<_, RedisError>(ps)
        };
        let ps = match tokio::time::timeout(CALL_TIMEOUT, connected).await {
            Ok(Ok(ps)) => ps,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "Redis notifications: cannot subscribe");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                continue;
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RECONNECT_DELAY);
                continue;
            }
        };
        delay = Duration::from_millis(50);
        {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            strong.listening.store(true, Relaxed);
            // Appends may have happened while no notification could arrive.
            strong.poke_all();
            tracing::info!("Redis notifications: subscribed");
        }
        let mut messages = ps.into_on_message();
        loop {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            tokio::select! {
                msg = messages.next() => match msg {
                    Some(m) => strong.notified(&String::from_utf8_lossy(m.get_payload_bytes())),
                    None => break,
                },
                () = strong.reconnect.notified() => break,
            }
        }
        if let Some(strong) = inner.upgrade() {
            strong.listening.store(false, Relaxed);
            strong.up.store(false, Relaxed);
            strong.errors.fetch_add(1, Relaxed);
            tracing::warn!("Redis notifications: connection lost; reconnecting");
            // Subscribers read now: they fail while Redis is away, and their
            // clients reconnect.
            strong.poke_all();
        }
    }
}

impl Broker for RedisBroker {
    fn create(&self, channel: NewChannel) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(self.inner.create(channel))
    }

    fn append<'a>(
        &'a self,
        channel: &'a str,
        append: Append,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        Box::pin(self.inner.append(channel, append))
    }

    fn read<'a>(
        &'a self,
        channel: &'a str,
        after: EventId,
        max: usize,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<ReadBatch, BrokerError>> {
        Box::pin(self.inner.read(channel, after, max, now_ms))
    }

    fn watch<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<watch::Receiver<Head>, BrokerError>> {
        Box::pin(self.inner.watch(channel))
    }

    fn sweep(&self, now_ms: u64) -> BoxFuture<'_, Vec<String>> {
        Box::pin(self.inner.sweep(now_ms))
    }

    fn channel_count(&self) -> usize {
        self.inner.channels.load(Relaxed)
    }

    fn buffered_bytes(&self) -> u64 {
        self.inner.held_total.load(Relaxed)
    }

    fn admit_creator<'a>(
        &'a self,
        creator: &'a str,
        channel: &'a str,
        until_ms: u64,
        limits: CreatorLimits,
    ) -> Option<BoxFuture<'a, Result<(), BrokerError>>> {
        if !is_address(creator) || !is_channel_id(channel) {
            return None;
        }
        Some(Box::pin(
            self.inner.admit_creator(creator, channel, until_ms, limits),
        ))
    }

    fn forget_creator<'a>(&'a self, creator: &'a str, channel: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            lock(&self.inner.creators).remove(channel);
            if is_address(creator) {
                let [live, _] = creator_keys(creator);
                let mut conn = self.inner.conn.clone();
                let mut zrem = redis::cmd("ZREM");
                zrem.arg(live).arg(channel);
                let _ = self.inner.call(zrem.query_async::<i64>(&mut conn)).await;
            }
        })
    }

    fn subscribers_changed<'a>(
        &'a self,
        channel: &'a str,
        delta: i64,
        now_ms: u64,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if !is_channel_id(channel) {
                return;
            }
            let mut conn = self.inner.conn.clone();
            let _ = self
                .inner
                .call(
                    self.inner
                        .scripts
                        .subs
                        .key(meta_key(channel))
                        .arg(delta)
                        .arg(now_ms)
                        .invoke_async::<i64>(&mut conn),
                )
                .await;
        })
    }

    fn shared_subscribers<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Option<SharedCount>> {
        Box::pin(async move {
            if !is_channel_id(channel) {
                return None;
            }
            let mut conn = self.inner.conn.clone();
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(meta_key(channel)).arg("subs").arg("empty");
            let got: Vec<Option<i64>> = self.inner.call(cmd.query_async(&mut conn)).await.ok()?;
            Some(SharedCount {
                subscribers: count(got.first().copied().flatten().unwrap_or(0)),
                empty_since_ms: got.get(1).copied().flatten().map(count),
            })
        })
    }

    fn status(&self) -> BrokerStatus {
        BrokerStatus {
            kind: "redis",
            up: self.inner.up.load(Relaxed) && self.inner.listening.load(Relaxed),
            errors: self.inner.errors.load(Relaxed),
            round_trip_us: Some(self.inner.rtt_us.load(Relaxed)),
        }
    }
}
