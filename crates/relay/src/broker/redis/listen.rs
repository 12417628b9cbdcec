//! The node's notification listener.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::RedisError;

use super::{Inner, CALL_TIMEOUT, MAX_RECONNECT_DELAY, NOTIFY};

/// The node's notification listener: one pub/sub connection, reopened
/// whenever it drops, for as long as the broker exists.
pub(super) async fn listen(inner: Weak<Inner>) {
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
