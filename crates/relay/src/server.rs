//! The accept loop. `axum::serve` cannot set a header read timeout, so each
//! connection is served by hyper's HTTP/1 builder directly, or by the relay
//! itself for EventSource subscriptions (`connection`, `direct`). hyper-util's
//! `GracefulShutdown` does not take connections with upgrades (WebSocket), so
//! each connection task watches the shutdown signal itself.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;

use crate::broker::Broker;
use crate::connection::Connection;
use crate::timeout_io::WriteTimeout;
use crate::{routes, Config, Relay};

/// Connections served beyond [`Config::max_connections`] at once: each
/// answers one request (`/healthz` and `/metrics` normally, anything else
/// `TOO_MANY_CONNECTIONS`) and closes. Past these, new connections are closed
/// unanswered.
pub(crate) const OVERFLOW_CONNECTIONS: usize = 64;

/// Time an overflow connection has to send its request headers.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// File descriptors kept free of connections: the listener, the broker's
/// sockets, the runtime's own, and the overflow connections.
const FD_RESERVE: usize = 64 + OVERFLOW_CONNECTIONS;

/// Serves the relay on `listener` until `shutdown` completes, then drains:
/// stops accepting, closes every subscriber stream with a `SHUTTING_DOWN`
/// error frame (clients reconnect elsewhere), lets requests in flight finish
/// for up to [`Config::shutdown_grace_ms`], and returns.
///
/// Also runs the cleanup task (every [`Config::cleanup_interval_ms`]). Fails
/// at once with [`std::io::ErrorKind::InvalidInput`] when [`Config::validate`]
/// refuses `config`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let broker = crate::memory_broker(&config);
    run_with_broker(listener, config, broker, shutdown).await
}

/// [`run`] over the given broker.
pub async fn run_with_broker(
    listener: TcpListener,
    config: Config,
    broker: Arc<dyn Broker>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    config
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let relay = Relay::new(config, broker);
    let router = routes::router(relay.clone());
    let sweeper = tokio::spawn(sweep_loop(relay.clone()));
    let connections = tokio::sync::watch::channel(0usize).0;
    let header_timeout = Duration::from_millis(relay.config.header_read_timeout_ms);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    // Over the connection cap: one request per connection, then close; a
    // second at most to send it, so idle sockets cannot hold the overflow.
    let mut limited = hyper::server::conn::http1::Builder::new();
    limited
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout.min(OVERFLOW_HEADER_TIMEOUT))
        .keep_alive(false);
    let limited = Arc::new(limited);
    let cap = connection_cap(relay.config.max_connections);
    let write_timeout = Duration::from_millis(relay.config.write_timeout_ms);
    let overflow = Arc::new(AtomicUsize::new(0));
    #[cfg(target_os = "linux")]
    let user_timeout = dead_peer_timeout(relay.config.heartbeat_ms);

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and similar: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Every event leaves when it is written. With Nagle's algorithm an
        // event written while the previous one is unacknowledged waits for
        // the reader's ACK, which a peer that delays its ACKs (200 ms on
        // Windows) holds back: docs/relay.md, "TCP_NODELAY".
        let _ = stream.set_nodelay(true);
        #[cfg(target_os = "linux")]
        {
            // A peer that vanished without a FIN or RST leaves heartbeats
            // unacknowledged: drop its connection after this long, so that it
            // stops counting against the channel's connection limit.
            let _ = socket2::SockRef::from(&stream).set_tcp_user_timeout(Some(user_timeout));
        }
        let open = *connections.borrow();
        let over = overflow.load(Relaxed);
        let full = open.saturating_sub(over) >= cap;
        if full && over >= OVERFLOW_CONNECTIONS {
            // Closing at once keeps the descriptors, and the accept loop, free.
            relay.metrics.connection_refused();
            drop(stream);
            continue;
        }
        let slot = full.then(|| OverflowSlot::take(&overflow));
        let conn = Connection {
            io: WriteTimeout::new(stream, write_timeout, relay.shutdown.subscribe()),
            peer,
            full,
            router: router.clone(),
            relay: relay.clone(),
            builder: if full { &limited } else { &builder }.clone(),
            header_timeout,
            stop: relay.shutdown.subscribe(),
        };
        connections.send_modify(|n| *n += 1);
        relay.metrics.set_http_connections(open + 1);
        let open = OpenConnection(connections.clone(), relay.metrics.clone());
        tokio::spawn(async move {
            let _open = open;
            let _slot = slot;
            conn.serve().await;
        });
    }

    tracing::info!("shutting down: closing streams");
    drop(listener);
    relay.shutdown.send_replace(true);
    // Publishes waiting for their readers look at the flag again.
    relay.flow.wake_all();
    let grace = Duration::from_millis(relay.config.shutdown_grace_ms);
    let mut active = relay.active.subscribe();
    let mut open = connections.subscribe();
    let drained = async {
        let _ = active.wait_for(|n| *n == 0).await.is_ok();
        let _ = open.wait_for(|n| *n == 0).await.is_ok();
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
    sweeper.abort();
    tracing::info!("stopped");
    Ok(())
}

/// An open connection, counted in the relay's gauge until dropped.
struct OpenConnection(
    tokio::sync::watch::Sender<usize>,
    Arc<crate::metrics::Metrics>,
);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.send_modify(|n| {
            *n -= 1;
            self.1.set_http_connections(*n);
        });
    }
}

/// One of the [`OVERFLOW_CONNECTIONS`], given back on drop.
struct OverflowSlot(Arc<AtomicUsize>);

impl OverflowSlot {
    fn take(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Relaxed);
        Self(count.clone())
    }
}

impl Drop for OverflowSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// [`Config::max_connections`], lowered to what the process's file descriptor
/// limit leaves room for (with a warning), so that the cap is reached before
/// `accept` starts failing.
fn connection_cap(configured: usize) -> usize {
    let Some(fds) = fd_soft_limit() else {
        return configured;
    };
    let room = fds.saturating_sub(FD_RESERVE).max(1);
    if room < configured {
        tracing::warn!(
            max_connections = configured,
            open_files_limit = fds,
            using = room,
            "--max-connections is above what the open-files limit leaves room for; raise \
             `ulimit -n` (LimitNOFILE) to serve more"
        );
        return room;
    }
    configured
}

/// The soft `RLIMIT_NOFILE` (Linux: from /proc; elsewhere unknown).
fn fd_soft_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

async fn sweep_loop(relay: Arc<Relay>) {
    let period = Duration::from_millis(relay.config.cleanup_interval_ms.max(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut abandon = tokio::time::interval(crate::outcome::ABANDON_TICK);
    abandon.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => relay.sweep().await,
            _ = abandon.tick() => {
                // Also the bound of a publish's first wait for its readers.
                relay.flow.wake_all();
                crate::outcome::sweep_abandoned(&relay).await;
            }
        }
    }
}

/// How long sent data may stay unacknowledged before a connection is dropped:
/// two heartbeats, at least 20 s.
#[cfg(target_os = "linux")]
fn dead_peer_timeout(heartbeat_ms: u64) -> Duration {
    Duration::from_millis(heartbeat_ms.saturating_mul(2).max(20_000))
}
