//! `sse-relay`: the server between a long-running cloud function and the browser
//! that waits for its progress. See `docs/protocol.md` for the wire contract and
//! `docs/relay.md` for operations.
//!
//! # Layout
//!
//! - [`config`]: every setting, with its default.
//! - [`broker`]: the [`broker::Broker`] trait (sequence ids, replay,
//!   notification), the in-memory implementation and the Redis one.
//! - [`flow`]: backpressure: publish answers wait for readers far behind
//!   (node-local, whatever the broker).
//! - [`token`]: HS256 JWT subscribe and publish tokens.
//! - `routes`: create, publish, end, health, metrics, test hooks.
//! - `publish`: what publish and end do, whichever path read the request.
//! - `request`: plumbing the routes, streams and `direct` share: the shared
//!   state, client address, JSON answers, id checks, bodies, the request log.
//! - `cors`: the CORS policy, as the router's layer and as header fields.
//! - `stream`: the EventSource and WebSocket subscriber streams.
//! - `server`: [`run`]: accept loop, header read timeout, graceful shutdown.
//! - `connection`: one connection's life: each request head read by the
//!   relay, then served by `direct` or by hyper.
//! - `repoll`: a connection task that wakes itself is polled again at once.
//! - `direct`: EventSource subscriptions served without hyper's
//!   per-connection buffers, and publishes without hyper and axum.
//! - [`metrics`]: the Prometheus counters.
//! - `error`: [`ApiError`], the JSON error answer with its stable code.
//! - `ws`: the WebSocket stream's handshake, framing and loop, on the
//!   socket taken back from hyper.
//!
//! [`app`] / [`app_with_broker`] give the router alone; [`run`] /
//! [`run_with_broker`] serve it with the cleanup task and graceful shutdown.
//!
//! # Use as a library
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = sse_relay::Config { secret: Some(b"a shared key of 32 bytes or more!".to_vec()), ..Default::default() };
//! sse_relay::run(listener, config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod broker;
pub mod config;
mod connection;
mod cors;
pub(crate) mod direct;
mod error;
pub mod flow;
#[doc(hidden)]
pub mod fuzz;
#[cfg(feature = "test-hooks")]
mod hooks;
pub mod metrics;
mod outcome;
mod publish;
mod repoll;
mod request;
mod routes;
mod server;
mod stream;
mod timeout_io;
pub mod token;
mod ws;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use sse_channel_protocol::ErrorCode;
use tokio::sync::watch;

pub use config::Config;
pub use error::ApiError;
pub use server::{run, run_with_broker};

use broker::{Broker, MemoryBroker, MemoryLimits};
use metrics::Metrics;
use token::TokenKey;

/// The router of a relay with a fresh in-memory broker. Without [`run`] no
/// cleanup task runs (expiry is still enforced on every access) and the
/// per-address limits see no client address unless the server inserts
/// `axum::extract::ConnectInfo<SocketAddr>` into request extensions.
///
/// # Panics
///
/// When [`Config::validate`] refuses `config` ([`run`] returns the error instead).
pub fn app(config: Config) -> Router {
    let broker = memory_broker(&config);
    app_with_broker(config, broker)
}

/// The router of a relay over the given broker (e.g. a shared one for several
/// nodes). See [`app`] for what runs without [`run`].
///
/// # Panics
///
/// When [`Config::validate`] refuses `config` ([`run`] returns the error instead).
pub fn app_with_broker(config: Config, broker: Arc<dyn Broker>) -> Router {
    if let Err(e) = config.validate() {
        panic!("invalid relay configuration: {e}");
    }
    routes::router(Relay::new(config, broker))
}

/// The embedded in-memory broker with the limits of `config`.
pub fn memory_broker(config: &Config) -> Arc<dyn Broker> {
    Arc::new(MemoryBroker::new(MemoryLimits {
        max_channels: config.max_channels,
        replay_events: config.replay_buffer_events.max(1),
        replay_bytes: config.replay_buffer_bytes,
        idempotency_keys: config.idempotency_keys,
        ended_retention_ms: config.ended_retention_secs.saturating_mul(1000),
        budgets: byte_budgets(config),
    }))
}

/// The byte budgets of `config`, which the broker enforces.
fn byte_budgets(config: &Config) -> broker::ByteBudgets {
    broker::ByteBudgets {
        total: config.max_buffered_bytes,
        per_creator: config.max_buffered_bytes_per_address,
    }
}

/// The Redis broker (`redis://[user:password@]host:port[/db]`) with the limits
/// of `config`, shared by every relay node that connects to the same Redis.
/// Fails when Redis cannot be reached now; once connected, it reconnects by
/// itself.
pub async fn redis_broker(url: &str, config: &Config) -> Result<Arc<dyn Broker>, String> {
    let broker = broker::RedisBroker::connect(
        url,
        broker::RedisLimits {
            max_channels: config.max_channels,
            replay_events: config.replay_buffer_events.max(1),
            replay_bytes: config.replay_buffer_bytes,
            idempotency_keys: config.idempotency_keys,
            ended_retention_ms: config.ended_retention_secs.saturating_mul(1000),
            budgets: byte_budgets(config),
        },
    )
    .await?;
    Ok(Arc::new(broker))
}

/// Shared state of one relay process.
#[derive(Debug)]
pub(crate) struct Relay {
    pub(crate) config: Config,
    pub(crate) key: TokenKey,
    /// Tokens that verified lately (`token::Verified`).
    verified: token::Verified,
    pub(crate) cors: cors::Cors,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) flow: Arc<flow::Flow>,
    pub(crate) metrics: Arc<Metrics>,
    addrs: Mutex<AddrTable>,
    conns: Mutex<FastMap<String, usize>>,
    /// Channels created here with `abandonAfterMs` (lock order: `conns`
    /// first).
    pub(crate) abandon: Mutex<FastMap<String, outcome::Abandon>>,
    /// `true` once shutdown has begun: streams close, health answers 503.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Open subscriber streams; shutdown waits for 0.
    pub(crate) active: watch::Sender<usize>,
    #[cfg(feature = "test-hooks")]
    pub(crate) hooks: hooks::Hooks,
}

impl std::fmt::Debug for dyn Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Broker")
    }
}

#[derive(Debug, Default)]
struct AddrTable {
    by_addr: HashMap<IpAddr, AddrState>,
    owners: HashMap<String, IpAddr>,
}

#[derive(Debug)]
struct AddrState {
    channels: usize,
    tokens: f64,
    refilled: Instant,
}

/// Now, Unix ms.
pub(crate) fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// `t` in ms since the Unix epoch (0 before it).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The relay's maps keyed by channel ids and tokens, looked up several times
/// per publish: foldhash (seeded per process) instead of SipHash, which was
/// 0.6 % of a publish's CPU (BENCHMARKS.md, "Fewer cycles per publish").
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Relay {
    pub(crate) fn new(config: Config, broker: Arc<dyn Broker>) -> Arc<Self> {
        let secret = match &config.secret {
            Some(s) => s.clone(),
            None => {
                tracing::warn!(
                    "no --secret given: using a random key for this process; tokens will not \
                     verify on other relay nodes or after a restart"
                );
                let mut s = vec![0u8; 32];
                getrandom::fill(&mut s).expect("the OS random source works");
                s
            }
        };
        if let Some(misfit) = config.backpressure_misfit() {
            tracing::warn!("{misfit}");
        }
        let key = match &config.previous_secret {
            Some(previous) => TokenKey::with_previous(&secret, previous),
            None => TokenKey::new(&secret),
        };
        Arc::new(Self {
            key,
            verified: token::Verified::default(),
            cors: cors::Cors::new(&config.allow_origins),
            broker,
            flow: Arc::new(flow::Flow::new(config.flow_rule())),
            metrics: Arc::new(Metrics::new()),
            addrs: Mutex::default(),
            conns: Mutex::default(),
            abandon: Mutex::default(),
            shutdown: watch::channel(false).0,
            active: watch::channel(0).0,
            #[cfg(feature = "test-hooks")]
            hooks: hooks::Hooks::default(),
            config,
        })
    }

    /// [`TokenKey::verify`], with the claims of tokens that verified lately
    /// remembered (`token::Verified`).
    pub(crate) fn verify_token(
        &self,
        token: &str,
        channel: &str,
        scope: sse_channel_protocol::Scope,
        now_secs: u64,
    ) -> Result<(), token::TokenError> {
        self.verified
            .verify(&self.key, token, channel, scope, now_secs)
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The key the per-address limits count `ip` under: IPv4 (also written as
    /// an IPv4-mapped IPv6 address) as is, IPv6 cut to
    /// [`Config::ipv6_prefix_len`] bits.
    pub(crate) fn address_group(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u32::from(self.config.ipv6_prefix_len.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            v4 => v4,
        }
    }

    /// Takes a creation token for `addr`, or says why not.
    pub(crate) fn admit_creation(&self, addr: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(addr) = addr else { return Ok(()) };
        let c = &self.config;
        let mut t = lock(&self.addrs);
        let now = Instant::now();
        let st = t.by_addr.entry(addr).or_insert(AddrState {
            channels: 0,
            tokens: f64::from(c.create_burst),
            refilled: now,
        });
        let elapsed = now.duration_since(st.refilled).as_secs_f64();
        st.tokens =
            (st.tokens + elapsed * f64::from(c.create_rate_per_sec)).min(f64::from(c.create_burst));
        st.refilled = now;
        if st.channels >= c.channels_per_address {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "this address holds its maximum of live channels",
            ));
        }
        if st.tokens < 1.0 {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "channel creation rate exceeded for this address",
            ));
        }
        st.tokens -= 1.0;
        Ok(())
    }

    /// The per-address limits, for a broker that shares them across nodes.
    pub(crate) fn creator_limits(&self) -> broker::CreatorLimits {
        broker::CreatorLimits {
            channels: self.config.channels_per_address,
            rate_per_sec: self.config.create_rate_per_sec,
            burst: self.config.create_burst,
            ended_retention_ms: self.config.ended_retention_secs.saturating_mul(1000),
        }
    }

    pub(crate) fn channel_created(&self, id: &str, addr: Option<IpAddr>) {
        let Some(addr) = addr else { return };
        let mut t = lock(&self.addrs);
        if let Some(st) = t.by_addr.get_mut(&addr) {
            st.channels += 1;
        }
        t.owners.insert(id.to_owned(), addr);
    }

    /// Removes expired and ended channels; frees their address slots.
    pub(crate) async fn sweep(&self) {
        let removed = self.broker.sweep(now_ms()).await;
        self.flow.sweep();
        for id in &removed {
            self.forget_abandon(id);
        }
        let mut t = lock(&self.addrs);
        for id in &removed {
            if let Some(addr) = t.owners.remove(id) {
                if let Some(st) = t.by_addr.get_mut(&addr) {
                    st.channels = st.channels.saturating_sub(1);
                }
            }
        }
        let burst = f64::from(self.config.create_burst);
        let rate = f64::from(self.config.create_rate_per_sec);
        let now = Instant::now();
        t.by_addr.retain(|_, st| {
            st.channels > 0
                || st.tokens + now.duration_since(st.refilled).as_secs_f64() * rate < burst
        });
        drop(t);
        if !removed.is_empty() {
            #[cfg(feature = "test-hooks")]
            self.hooks.forget(&removed);
            tracing::debug!(count = removed.len(), "swept channels");
        }
    }

    /// Registers a subscriber stream on `channel`, or refuses it.
    pub(crate) fn open_stream(self: &Arc<Self>, channel: &str) -> Result<StreamGuard, ApiError> {
        let mut conns = lock(&self.conns);
        let n = conns.entry(channel.to_owned()).or_insert(0);
        if *n >= self.config.connections_per_channel {
            return Err(ApiError::new(
                ErrorCode::TooManyConnections,
                "the channel has its maximum of subscriber connections",
            ));
        }
        *n += 1;
        if *n == 1 {
            if let Some(a) = lock(&self.abandon).get_mut(channel) {
                a.empty_since = None;
            }
        }
        drop(conns);
        self.shared_count(channel, 1);
        self.active.send_modify(|a| *a += 1);
        Ok(StreamGuard {
            relay: self.clone(),
            channel: channel.to_owned(),
        })
    }

    /// The subscriber streams of `channel` open on this node (see
    /// `docs/relay.md`, "Subscribers").
    pub(crate) fn subscribers(&self, channel: &str) -> u64 {
        lock(&self.conns).get(channel).map_or(0, |n| *n as u64)
    }

    /// Watches `id` for `abandonAfterMs` (from now).
    pub(crate) fn watch_abandon(&self, id: &str, after_ms: u64) {
        lock(&self.abandon).insert(
            id.to_owned(),
            outcome::Abandon {
                after: std::time::Duration::from_millis(after_ms),
                empty_since: Some(Instant::now()),
            },
        );
    }

    /// Stops watching `id` for abandonment (it ended or went).
    pub(crate) fn forget_abandon(&self, id: &str) {
        lock(&self.abandon).remove(id);
    }

    /// Tells a shared broker of a stream coming or going (in the background:
    /// the count is for publish answers and abandonment, never for admission).
    fn shared_count(&self, channel: &str, delta: i64) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let broker = self.broker.clone();
        let channel = channel.to_owned();
        rt.spawn(async move {
            broker.subscribers_changed(&channel, delta, now_ms()).await;
        });
    }

    /// True while the test hook refuses subscriptions to `channel`.
    pub(crate) fn is_paused(&self, channel: &str) -> bool {
        #[cfg(feature = "test-hooks")]
        if self.config.test_hooks {
            return self.hooks.is_paused(channel);
        }
        let _ = channel;
        false
    }

    /// The test hook's kill switch for a stream of `channel` (only with
    /// [`Config::test_hooks`]; call it for existing channels only).
    pub(crate) fn kill_switch(&self, channel: &str) -> Option<watch::Receiver<u64>> {
        #[cfg(feature = "test-hooks")]
        if self.config.test_hooks {
            return Some(self.hooks.kill_switch(channel));
        }
        let _ = channel;
        None
    }
}

/// Held by an open subscriber stream: counts it against its channel's limit and
/// against shutdown's drain.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    relay: Arc<Relay>,
    channel: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut conns = lock(&self.relay.conns);
        if let Some(n) = conns.get_mut(&self.channel) {
            *n -= 1;
            if *n == 0 {
                conns.remove(&self.channel);
                if let Some(a) = lock(&self.relay.abandon).get_mut(&self.channel) {
                    a.empty_since = Some(Instant::now());
                }
            }
        }
        drop(conns);
        self.relay.shared_count(&self.channel, -1);
        self.relay.active.send_modify(|a| *a = a.saturating_sub(1));
    }
}
