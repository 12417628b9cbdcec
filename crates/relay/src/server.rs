//! The accept loop. `axum::serve` cannot set a header read timeout, so each
//! connection is served by hyper's HTTP/1 builder directly. hyper-util's
//! `GracefulShutdown` does not take connections with upgrades (WebSocket), so
//! each connection task watches the shutdown signal itself.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower_service::Service;

use crate::broker::Broker;
use crate::{routes, Config, Relay};

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
        let _ = stream.set_nodelay(true);
        #[cfg(target_os = "linux")]
        {
            // A peer that vanished without a FIN or RST leaves heartbeats
            // unacknowledged: drop its connection after this long, so that it
            // stops counting against the channel's connection limit.
            let _ = socket2::SockRef::from(&stream).set_tcp_user_timeout(Some(user_timeout));
        }
        let router = router.clone();
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().call(req)
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades();
        let mut stop = relay.shutdown.subscribe();
        let connections = connections.clone();
        connections.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            tokio::pin!(conn);
            let res = tokio::select! {
                res = conn.as_mut() => res,
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    // Finish the response in flight (streams end themselves on
                    // shutdown), then close instead of keeping the connection alive.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            connections.send_modify(|n| *n -= 1);
        });
    }

    tracing::info!("shutting down: closing streams");
    drop(listener);
    relay.shutdown.send_replace(true);
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

async fn sweep_loop(relay: Arc<Relay>) {
    let period = Duration::from_millis(relay.config.cleanup_interval_ms.max(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        relay.sweep().await;
    }
}

/// How long sent data may stay unacknowledged before a connection is dropped:
/// two heartbeats, at least 20 s.
#[cfg(target_os = "linux")]
fn dead_peer_timeout(heartbeat_ms: u64) -> Duration {
    Duration::from_millis(heartbeat_ms.saturating_mul(2).max(20_000))
}
