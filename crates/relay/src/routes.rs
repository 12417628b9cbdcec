//! HTTP routes: create, publish, end, health, metrics and the test hooks
//! (publish and end do what `publish` holds).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sse_channel_protocol::api::{self, CreateChannelRequest, CreateChannelResponse};
use sse_channel_protocol::limits::{MAX_ABANDON_AFTER_MS, MIN_ABANDON_AFTER_MS};
use sse_channel_protocol::{Claims, ErrorCode, EventKind, Scope};
use tower_http::catch_panic::CatchPanicLayer;

use crate::broker::NewChannel;
use crate::request::{
    json_response, observed, panicked, parse_object, read_body, utf8, ClientAddr, Shared,
};
use crate::{now_ms, outcome, publish, stream, ApiError, Relay};

pub(crate) fn router(relay: Shared) -> Router {
    let r = Router::new()
        .route(api::CHANNELS_PATH, post(create))
        .route("/v1/channels/{id}/messages", post(publish))
        .route("/v1/channels/{id}/end", post(end))
        .route("/v1/channels/{id}/fail", post(outcome::fail))
        .route("/v1/channels/{id}/cancel", post(outcome::cancel))
        .route("/v1/channels/{id}/wait", get(outcome::wait))
        .route("/v1/channels/{id}/events", get(stream::sse))
        .route("/v1/channels/{id}/ws", get(stream::ws))
        .route(api::HEALTH_PATH, get(health))
        .route(api::METRICS_PATH, get(metrics));
    #[cfg(feature = "test-hooks")]
    let r = if relay.config.test_hooks {
        crate::hooks::routes(r)
    } else {
        r
    };
    let cors = relay.cors.layer();
    let mut r = r
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // A panic ends its own request with a coded 500 (the release profile
        // unwinds: docs/relay.md, "Threat model"); other requests go on.
        .layer(CatchPanicLayer::custom(|_| panicked().into_response()))
        .layer(middleware::from_fn_with_state(relay.clone(), observe))
        .with_state(relay);
    if let Some(cors) = cors {
        r = r.layer(cors);
    }
    r
}

/// Counts error answers by code and logs each request (path only: the query
/// may hold a token).
async fn observe(State(relay): State<Shared>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let res = next.run(req).await;
    observed(
        &relay,
        &method,
        &path,
        res.status().as_u16(),
        res.extensions().get::<ErrorCode>().copied(),
    );
    res
}

/// A creation counted in the broker's shared per-address count: given back
/// unless the channel was created (a refused body, a failed create, or the
/// client gone mid-request).
struct CreatorSlot(Option<(Arc<dyn crate::broker::Broker>, String, String)>);

impl CreatorSlot {
    /// The channel was created (the slot stays taken), or never admitted.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CreatorSlot {
    fn drop(&mut self) {
        if let Some((broker, creator, id)) = self.0.take() {
            tokio::spawn(async move { broker.forget_creator(&creator, &id).await });
        }
    }
}

/// The lifetime a create request asks for (its body read and checked), in
/// seconds, and its `abandonAfterMs`.
async fn requested_ttl(
    relay: &Relay,
    headers: &HeaderMap,
    body: Body,
) -> Result<(u64, Option<u64>), ApiError> {
    let body = read_body(relay, headers, body, MAX_CREATE_BODY_BYTES).await?;
    let text = utf8(&body)?;
    let req: CreateChannelRequest = if text.trim().is_empty() {
        CreateChannelRequest::default()
    } else {
        parse_object(text)?
    };
    let max = relay.config.max_channel_ttl_secs;
    let ttl = req.ttl_secs.unwrap_or(relay.config.channel_ttl_secs);
    if ttl == 0 || ttl > max {
        return Err(ApiError::owned(
            ErrorCode::BadRequest,
            format!("ttlSecs must be between 1 and {max}"),
        ));
    }
    if let Some(ms) = req.abandon_after_ms {
        if !(MIN_ABANDON_AFTER_MS..=MAX_ABANDON_AFTER_MS).contains(&ms) {
            return Err(ApiError::owned(
                ErrorCode::BadRequest,
                format!(
                    "abandonAfterMs must be between {MIN_ABANDON_AFTER_MS} and {MAX_ABANDON_AFTER_MS}"
                ),
            ));
        }
    }
    Ok((ttl, req.abandon_after_ms))
}

/// Largest `POST /v1/channels` body (`{"ttlSecs":…}`), in bytes; larger →
/// `413 MESSAGE_TOO_LARGE`.
pub(crate) const MAX_CREATE_BODY_BYTES: usize = 1024;

async fn create(
    State(relay): State<Shared>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if relay.is_shutting_down() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the relay is shutting down",
        ));
    }
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw)
        .map_err(|_| ApiError::new(ErrorCode::Internal, "no randomness available"))?;
    let id = hex(&raw);
    // The rate and per-address limits first: a refused client's body is
    // never waited for or read. Across nodes when the broker keeps a shared
    // count (Redis), else in this process. The shared count holds the
    // channel until the longest lifetime until its real one is known.
    let creator = addr.map(|a| a.to_string());
    let longest = now_ms().saturating_add(relay.config.max_channel_ttl_secs.saturating_mul(1000));
    let admitted = match &creator {
        Some(c) => relay
            .broker
            .admit_creator(c, &id, longest, relay.creator_limits()),
        None => None,
    };
    let mut slot = None;
    match (admitted, &creator) {
        (Some(admitted), Some(creator)) => {
            // Armed before the answer: a client gone meanwhile gives it back.
            let taken = CreatorSlot(Some((relay.broker.clone(), creator.clone(), id.clone())));
            if let Err(e) = admitted.await {
                taken.disarm();
                return Err(e.into());
            }
            slot = Some(taken);
        }
        _ => relay.admit_creation(addr)?,
    }
    let created = async {
        let (ttl, abandon) = requested_ttl(&relay, &headers, body).await?;
        let expires_at_ms = now_ms() + ttl * 1000;
        relay
            .broker
            .create(NewChannel {
                id: id.clone(),
                expires_at_ms,
                creator: creator.clone(),
            })
            .await?;
        Ok::<_, ApiError>((ttl, expires_at_ms, abandon))
    };
    let (ttl, expires_at_ms, abandon) = created.await?;
    match slot.take() {
        // Created: the slot stays taken.
        Some(slot) => slot.disarm(),
        None => relay.channel_created(&id, addr),
    }
    if let Some(ms) = abandon {
        relay.watch_abandon(&id, ms);
    }
    relay
        .metrics
        .channels_created
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let exp = expires_at_ms.div_ceil(1000);
    let claims = |scope| Claims {
        sub: id.clone(),
        scope,
        exp,
    };
    let out = CreateChannelResponse {
        subscribe_token: relay.key.sign(&claims(Scope::Subscribe)),
        publish_token: relay.key.sign(&claims(Scope::Publish)),
        channel_id: id.clone(),
        expires_at: expires_at_ms,
    };
    tracing::debug!(channel = %id, ttl, "channel created");
    Ok(json_response(
        StatusCode::CREATED,
        serde_json::to_string(&out).unwrap_or_default(),
    ))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

async fn publish(
    State(relay): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = publish::accept_publish(&relay, &id, &headers, body).await?;
    Ok(
        publish::store(&relay, &id, EventKind::Message, key, &body, now_ms())
            .await?
            .into_response(),
    )
}

async fn end(
    State(relay): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = publish::accept_publish(&relay, &id, &headers, body).await?;
    Ok(
        publish::store(&relay, &id, EventKind::End, key, &body, now_ms())
            .await?
            .into_response(),
    )
}

async fn health(State(relay): State<Shared>) -> Result<Response, ApiError> {
    if relay.is_shutting_down() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the relay is shutting down",
        ));
    }
    let broker = relay.broker.status();
    if !broker.up {
        return Err(ApiError::new(
            ErrorCode::BrokerUnavailable,
            "the relay's broker is unreachable",
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        format!(r#"{{"status":"ok","broker":"{}"}}"#, broker.kind),
    ))
}

async fn metrics(State(relay): State<Shared>) -> Response {
    let mut body = relay.metrics.render(relay.broker.channel_count());
    body.push_str(&crate::metrics::render_broker(&relay.broker.status()));
    body.push_str(&crate::metrics::render_budget(
        relay.broker.buffered_bytes(),
        relay.config.max_buffered_bytes,
    ));
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::ChannelNotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}
