//! How a channel ends other than by `end`: `POST …/fail` (the function
//! failed), `POST …/cancel` (the reader gave up) and the relay's own cancel of
//! an abandoned channel (`abandonAfterMs`), plus `GET …/wait`, the
//! publisher's long-poll for a cancel.
//!
//! Fail and cancel store the channel's final event like `end` does, but as an
//! `error` event with an id: data [`error_data`] with `FUNCTION_FAILED` or
//! `CHANNEL_CANCELLED`. Brokers treat every stored event that is not a
//! message as final, so both brokers keep, replay and retain it like `end`.
//! Whether a channel was cancelled (and why) is read back from that final
//! event, so the brokers need no state of their own for it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use sse_channel_protocol::api::{CancelRequest, CancelResponse, WaitResponse, WaitState};
use sse_channel_protocol::frame::{error_data, ErrorData};
use sse_channel_protocol::limits::{
    ABANDONED_REASON, DEFAULT_CANCEL_MESSAGE, DEFAULT_WAIT_TIMEOUT_MS, MAX_CANCEL_REASON_CHARS,
    MAX_FAIL_MESSAGE_CHARS, MAX_WAIT_TIMEOUT_MS,
};
use sse_channel_protocol::{ErrorCode, EventId, EventKind, Scope};

use crate::broker::{Append, BrokerError, Phase};
use crate::publish;
use crate::request::{self, Shared};
use crate::{lock, now_ms, ApiError, Relay};

/// How a channel that accepts nothing more ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Final {
    /// Cancelled: the id of its final event, and the reason.
    Cancelled(EventId, String),
    /// Ended by `end` or `fail`.
    Ended,
}

/// Reads how an ended channel ended, from its final event (never evicted:
/// the newest event is always kept).
pub(crate) async fn final_state(relay: &Relay, id: &str) -> Result<Final, ApiError> {
    let last_id = relay.broker.watch(id).await?.borrow().last_id;
    let batch = relay
        .broker
        .read(id, last_id.saturating_sub(1), 1, now_ms())
        .await?;
    let Some(ev) = batch.events.last().filter(|e| e.kind == EventKind::Error) else {
        return Ok(Final::Ended);
    };
    match serde_json::from_str::<ErrorData<serde::de::IgnoredAny>>(&ev.data) {
        Ok(d) if d.code == ErrorCode::ChannelCancelled.as_str() => {
            Ok(Final::Cancelled(ev.id, d.message))
        }
        _ => Ok(Final::Ended),
    }
}

/// The refusal of a publish, end or fail that met an ended channel:
/// `CHANNEL_CANCELLED` with the reason when it was cancelled, else
/// `CHANNEL_ENDED`.
pub(crate) async fn refusal(relay: &Relay, id: &str, e: BrokerError) -> ApiError {
    if e != BrokerError::Ended {
        return e.into();
    }
    match final_state(relay, id).await {
        Ok(Final::Cancelled(_, reason)) => ApiError::owned(ErrorCode::ChannelCancelled, reason),
        Ok(Final::Ended) => e.into(),
        Err(err) => err,
    }
}

/// Stores the final `CHANNEL_CANCELLED` event; its id.
async fn store_cancel(
    relay: &Relay,
    id: &str,
    reason: &str,
    details: Option<&str>,
) -> Result<EventId, BrokerError> {
    let data = error_data(ErrorCode::ChannelCancelled, reason, details);
    let done = relay
        .broker
        .append(
            id,
            Append {
                kind: EventKind::Error,
                payloads: vec![data.into()],
                idempotency_key: None,
                now_ms: now_ms(),
                exempt: true,
            },
        )
        .await?;
    relay.forget_abandon(id);
    Ok(done.last_id)
}

/// The relay's reading of [`sse_channel_protocol::api::FailRequest`],
/// keeping `details` raw.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailBody<'a> {
    message: String,
    #[serde(default, borrow)]
    details: Option<&'a RawValue>,
}

/// `POST /v1/channels/{id}/fail` (publish token): stores the final
/// `FUNCTION_FAILED` event. Answers like `end`.
pub(crate) async fn fail(
    State(relay): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = publish::accept_publish(&relay, &id, &headers, body).await?;
    let req: FailBody<'_> = request::parse_object(request::utf8(&body)?)?;
    if req.message.chars().count() > MAX_FAIL_MESSAGE_CHARS {
        return Err(ApiError::owned(
            ErrorCode::BadRequest,
            format!("`message` must have at most {MAX_FAIL_MESSAGE_CHARS} characters"),
        ));
    }
    let details = match req.details {
        Some(d) => Some(publish::check_size(relay.config.max_message_bytes, d)?),
        None => None,
    };
    let data = error_data(ErrorCode::FunctionFailed, &req.message, details.as_deref());
    let res = publish::append(
        &relay,
        &id,
        EventKind::Error,
        vec![data.into()],
        key,
        now_ms(),
    )
    .await;
    if res.is_ok() {
        relay.forget_abandon(&id);
    }
    res.map(IntoResponse::into_response)
}

/// Largest `POST …/cancel` body, in bytes (a reason of 256 characters, each
/// up to 4 bytes, plus the JSON around it); larger → `413 MESSAGE_TOO_LARGE`.
const MAX_CANCEL_BODY_BYTES: usize = 2048;

/// `POST /v1/channels/{id}/cancel` (subscribe token): stores the final
/// `CHANNEL_CANCELLED` event. Cancelling a cancelled channel answers the
/// same again; an ended or failed one is `409 CHANNEL_ENDED`.
pub(crate) async fn cancel(
    State(relay): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    request::check_channel_id(&id)?;
    publish::authorize(&relay, &headers, &id, Scope::Subscribe)?;
    let body = request::read_body(&relay, &headers, body, MAX_CANCEL_BODY_BYTES).await?;
    let text = request::utf8(&body)?;
    let req: CancelRequest = if text.trim().is_empty() {
        CancelRequest::default()
    } else {
        request::parse_object(text)?
    };
    let reason = req.reason.as_deref().unwrap_or(DEFAULT_CANCEL_MESSAGE);
    if reason.chars().count() > MAX_CANCEL_REASON_CHARS {
        return Err(ApiError::owned(
            ErrorCode::BadRequest,
            format!("`reason` must have at most {MAX_CANCEL_REASON_CHARS} characters"),
        ));
    }
    let event = match store_cancel(&relay, &id, reason, None).await {
        Ok(event) => {
            tracing::debug!(channel = %id, "channel cancelled by a reader");
            event
        }
        Err(BrokerError::Ended) => match final_state(&relay, &id).await? {
            Final::Cancelled(event, _) => event,
            Final::Ended => return Err(BrokerError::Ended.into()),
        },
        Err(e) => return Err(e.into()),
    };
    Ok(request::json_response(
        StatusCode::OK,
        serde_json::to_string(&CancelResponse { id: event }).unwrap_or_default(),
    ))
}

/// `GET /v1/channels/{id}/wait?timeoutMs=…` (publish token): answers when
/// the channel is cancelled or ended, or after the timeout with its
/// subscriber count. Shutdown answers `open` at once (ask again elsewhere).
pub(crate) async fn wait(
    State(relay): State<Shared>,
    Path(id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    request::check_channel_id(&id)?;
    publish::authorize(&relay, &headers, &id, Scope::Publish)?;
    let Query(q) = query.map_err(|_| ApiError::bad_request("malformed query string"))?;
    let timeout_ms = match q.get(sse_channel_protocol::api::QUERY_TIMEOUT_MS) {
        None => DEFAULT_WAIT_TIMEOUT_MS,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|t| *t <= MAX_WAIT_TIMEOUT_MS)
            .ok_or_else(|| {
                ApiError::owned(
                    ErrorCode::BadRequest,
                    format!("timeoutMs must be an integer from 0 to {MAX_WAIT_TIMEOUT_MS}"),
                )
            })?,
    };
    let mut head = relay.broker.watch(&id).await?;
    let mut shutdown = relay.shutdown.subscribe();
    let deadline = tokio::time::sleep(Duration::from_millis(timeout_ms));
    tokio::pin!(deadline);
    // `None`: still open.
    let state = loop {
        let phase = head.borrow_and_update().phase;
        match phase {
            Phase::Open => {}
            Phase::Ended => break Some(final_state(&relay, &id).await?),
            Phase::Expired => break Some(Final::Ended),
        }
        if *shutdown.borrow_and_update() {
            break None;
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { break Some(Final::Ended) },
            _ = &mut deadline => break None,
            _ = shutdown.changed() => break None,
        }
    };
    let answer = match state {
        Some(Final::Cancelled(_, reason)) => WaitResponse {
            state: WaitState::Cancelled,
            reason: Some(reason),
            subscribers: None,
        },
        Some(Final::Ended) => WaitResponse {
            state: WaitState::Ended,
            reason: None,
            subscribers: None,
        },
        None => WaitResponse {
            state: WaitState::Open,
            reason: None,
            subscribers: Some(match relay.broker.shared_subscribers(&id).await {
                Some(shared) => shared.subscribers,
                None => relay.subscribers(&id),
            }),
        },
    };
    Ok(request::json_response(
        StatusCode::OK,
        serde_json::to_string(&answer).unwrap_or_default(),
    ))
}

/// A channel created with `abandonAfterMs`, as this node sees it.
#[derive(Debug)]
pub(crate) struct Abandon {
    /// `abandonAfterMs`.
    pub(crate) after: Duration,
    /// Since when the channel has had no subscriber on this node (`None`:
    /// it has one now).
    pub(crate) empty_since: Option<Instant>,
}

/// Cancels, with reason `ABANDONED`, every channel whose subscribers have
/// been gone for its `abandonAfterMs`. Run every [`ABANDON_TICK`].
pub(crate) async fn sweep_abandoned(relay: &Relay) {
    let now = Instant::now();
    let due: Vec<String> = lock(&relay.abandon)
        .iter()
        .filter(|(_, a)| {
            a.empty_since
                .is_some_and(|t| now.duration_since(t) >= a.after)
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in due {
        if let Some(shared) = relay.broker.shared_subscribers(&id).await {
            // Counted across nodes (Redis): readers elsewhere, or gone less
            // than `abandonAfterMs` ago, postpone the cancel.
            let after = lock(&relay.abandon).get(&id).map(|a| a.after);
            let Some(after) = after else { continue };
            let gone_for = match (shared.subscribers, shared.empty_since_ms) {
                (0, Some(at)) => Some(Duration::from_millis(now_ms().saturating_sub(at))),
                (0, None) => None,
                // Look again in a second.
                _ => Some(after.saturating_sub(Duration::from_secs(1))),
            };
            if let Some(gone_for) = gone_for.filter(|g| *g < after) {
                if let Some(a) = lock(&relay.abandon).get_mut(&id) {
                    a.empty_since = Some(now.checked_sub(gone_for).unwrap_or(now));
                }
                continue;
            }
        }
        let details = format!("{{\"reason\":\"{ABANDONED_REASON}\"}}");
        match store_cancel(relay, &id, ABANDONED_REASON, Some(&details)).await {
            Ok(_) => tracing::debug!(channel = %id, "abandoned channel cancelled"),
            // Ended, expired or gone meanwhile: nothing to cancel.
            Err(BrokerError::Unavailable(e)) => {
                tracing::warn!(channel = %id, "abandoned channel not cancelled yet: {e}");
                continue;
            }
            Err(_) => relay.forget_abandon(&id),
        }
    }
}

/// How often abandoned channels are looked for: an abandoned channel is
/// cancelled at most this long after its `abandonAfterMs`.
pub(crate) const ABANDON_TICK: Duration = Duration::from_millis(250);
