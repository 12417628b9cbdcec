//! Fault injection for tests (cargo feature `test-hooks`, switched on per
//! relay by [`crate::Config::test_hooks`]). A build without the feature has
//! neither these routes nor the `--test-hooks` flag.
//!
//! - `POST /v1/test/channels/{id}/disconnect?pauseMs=N`: drops every stream of
//!   an existing channel abruptly and answers new subscriptions with a plain
//!   503 for `N` ms (at most [`MAX_PAUSE_MS`]).
//! - `POST /v1/test/panic`: panics inside the request, to show that a panic
//!   ends only its own request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use tokio::sync::watch;

use crate::request::{check_channel_id, json_response, Shared};
use crate::{lock, ApiError};

/// Longest pause the disconnect hook takes, in ms (one minute).
pub(crate) const MAX_PAUSE_MS: u64 = 60_000;

/// The hooks of every channel that has one; entries go with their channel.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    table: Mutex<HashMap<String, Hook>>,
}

#[derive(Debug)]
struct Hook {
    kill: watch::Sender<u64>,
    paused_until: Option<Instant>,
}

impl Hook {
    fn new() -> Self {
        Self {
            kill: watch::channel(0).0,
            paused_until: None,
        }
    }
}

impl Hooks {
    /// True while the hook refuses subscriptions to `channel`.
    pub(crate) fn is_paused(&self, channel: &str) -> bool {
        lock(&self.table)
            .get(channel)
            .and_then(|h| h.paused_until)
            .is_some_and(|t| Instant::now() < t)
    }

    /// The kill switch of a stream of `channel` (an existing channel).
    pub(crate) fn kill_switch(&self, channel: &str) -> watch::Receiver<u64> {
        lock(&self.table)
            .entry(channel.to_owned())
            .or_insert_with(Hook::new)
            .kill
            .subscribe()
    }

    /// Drops every stream of `channel` and pauses new ones; how many were dropped.
    fn disconnect(&self, channel: &str, pause: Duration) -> usize {
        let mut t = lock(&self.table);
        let hook = t.entry(channel.to_owned()).or_insert_with(Hook::new);
        let n = hook.kill.receiver_count();
        hook.kill.send_modify(|g| *g += 1);
        hook.paused_until = Some(Instant::now() + pause);
        n
    }

    /// Forgets the hooks of removed channels.
    pub(crate) fn forget(&self, removed: &[String]) {
        let mut t = lock(&self.table);
        for id in removed {
            t.remove(id);
        }
    }
}

/// The hook routes, added to the router when [`crate::Config::test_hooks`] is on.
pub(crate) fn routes(r: Router<Shared>) -> Router<Shared> {
    r.route("/v1/test/channels/{id}/disconnect", post(disconnect))
        .route("/v1/test/panic", post(panic))
}

async fn disconnect(
    State(relay): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    check_channel_id(&id)?;
    let pause = match q.get("pauseMs") {
        None => 0,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms <= MAX_PAUSE_MS)
            .ok_or(ApiError::bad_request(
                "pauseMs must be a number of milliseconds, at most 60000",
            ))?,
    };
    // Only channels that exist get a hook, so the table stays bounded.
    relay.broker.watch(&id).await?;
    let dropped = relay.hooks.disconnect(&id, Duration::from_millis(pause));
    tracing::info!(channel = %id, dropped, pause_ms = pause, "test hook: disconnect");
    Ok(json_response(
        StatusCode::OK,
        format!("{{\"dropped\":{dropped}}}"),
    ))
}

async fn panic() -> Response {
    panic!("test hook: panic inside a request");
}
