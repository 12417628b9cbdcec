//! HTTP routes: create, publish, end, health, metrics and the test hooks.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::value::RawValue;
use sse_channel_protocol::api::{
    self, CreateChannelRequest, CreateChannelResponse, PublishResponse,
};
use sse_channel_protocol::descriptor::is_channel_id;
use sse_channel_protocol::limits::{
    MAX_ABANDON_AFTER_MS, MAX_IDEMPOTENCY_KEY_LEN, MIN_ABANDON_AFTER_MS,
};
use sse_channel_protocol::{Claims, ErrorCode, EventKind, Scope};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::broker::{Append, NewChannel};
use crate::{now_ms, outcome, stream, ApiError, Relay};

pub(crate) type Shared = Arc<Relay>;

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
    let cors = cors_layer(&relay.config.allow_origins);
    let mut r = r
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // A panic ends its own request with a coded 500 (the release profile
        // unwinds: docs/relay.md, "Threat model"); other requests go on.
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(ErrorCode::Internal, "the request failed inside the relay")
                .into_response()
        }))
        .layer(middleware::from_fn_with_state(relay.clone(), observe))
        .with_state(relay);
    if let Some(cors) = cors {
        r = r.layer(cors);
    }
    r
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| {
            // The CLI refuses such values at start; a library caller's are skipped.
            let origin = crate::config::normalize_origin(o)
                .inspect_err(|e| tracing::warn!(origin = %o, "allowed origin ignored: {e}"))
                .ok()?;
            HeaderValue::from_str(&origin).ok()
        }))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static(api::HEADER_IDEMPOTENCY_KEY),
                HeaderName::from_static(api::HEADER_LAST_EVENT_ID),
            ])
            .expose_headers([HeaderName::from_static(api::HEADER_IDEMPOTENT_REPLAYED)])
            .max_age(Duration::from_secs(600)),
    )
}

/// Counts error answers by code and logs each request (path only: the query
/// may hold a token).
async fn observe(State(relay): State<Shared>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let res = next.run(req).await;
    if let Some(code) = res.extensions().get::<ErrorCode>() {
        relay.metrics.error(*code);
        tracing::debug!(%method, %path, status = res.status().as_u16(), code = code.as_str(), "refused");
    } else {
        tracing::trace!(%method, %path, status = res.status().as_u16(), "request");
    }
    res
}

/// The client's IP address: with [`crate::Config::trusted_proxy_hops`] `N`
/// above 0, the `N`th entry from the right of the proxy header
/// ([`crate::Config::client_ip_header`], default `x-forwarded-for`), the one
/// the outermost trusted proxy appended (entries further left come from the
/// client and are ignored); else, or when the header has fewer than `N`
/// entries or that entry is no address, the TCP peer address when the server
/// recorded it. IPv6 addresses are grouped by prefix
/// ([`crate::Relay::address_group`]): the value is the group's key.
pub(crate) struct ClientAddr(pub(crate) Option<IpAddr>);

impl FromRequestParts<Shared> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, relay: &Shared) -> Result<Self, Infallible> {
        let hops = relay.config.trusted_proxy_hops;
        if hops > 0 {
            let name = relay
                .config
                .client_ip_header
                .as_deref()
                .unwrap_or(DEFAULT_CLIENT_IP_HEADER);
            if let Some(ip) = forwarded_client(&parts.headers, name, hops) {
                return Ok(Self(Some(relay.address_group(ip))));
            }
        }
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| relay.address_group(c.0.ip())),
        ))
    }
}

/// The proxy header read when [`crate::Config::trusted_proxy_hops`] is set and
/// [`crate::Config::client_ip_header`] is not.
pub(crate) const DEFAULT_CLIENT_IP_HEADER: &str = "x-forwarded-for";

/// The `hops`th address from the right of the comma-separated entries of every
/// `name` header (later header lines count as further right).
pub(crate) fn forwarded_client(headers: &HeaderMap, name: &str, hops: usize) -> Option<IpAddr> {
    let entry = headers
        .get_all(name)
        .iter()
        .rev()
        .flat_map(|v| v.to_str().unwrap_or("").rsplit(','))
        .nth(hops.checked_sub(1)?)?
        .trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(api::JSON_CONTENT_TYPE),
    );
    res
}

pub(crate) fn check_channel_id(id: &str) -> Result<(), ApiError> {
    if is_channel_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "channel id must be 32 lowercase hex digits",
        ))
    }
}

/// The body, at most `limit` bytes, within the body read timeout.
pub(crate) async fn read_body(
    relay: &Relay,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::owned(
            ErrorCode::MessageTooLarge,
            format!("request body over {limit} bytes"),
        )
    };
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        if len
            .to_str()
            .ok()
            .and_then(|l| l.parse::<u64>().ok())
            .is_some_and(|l| l > limit as u64)
        {
            return Err(too_large());
        }
    }
    let timeout = Duration::from_millis(relay.config.body_read_timeout_ms);
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(read) => read.map_err(|_| too_large()),
        Err(_) => Err(ApiError::bad_request("request body not received in time")),
    }
}

pub(crate) fn utf8(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| ApiError::bad_request("request body is not valid UTF-8"))
}

/// Parses a JSON object body (serde would also take an array for a struct).
pub(crate) fn parse_object<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ApiError> {
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    }
    serde_json::from_str(text).map_err(bad_json)
}

fn bad_json(e: serde_json::Error) -> ApiError {
    ApiError::owned(ErrorCode::BadRequest, format!("invalid JSON body: {e}"))
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

/// Checks the `Authorization: Bearer <token>` header for `id` and `scope`
/// (publish routes; `cancel` with a subscribe token).
pub(crate) fn authorize(
    relay: &Relay,
    headers: &HeaderMap,
    id: &str,
    scope: Scope,
) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme name is case-insensitive (RFC 9110).
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case(api::AUTH_SCHEME)
                .then_some(token)
        })
        .ok_or(ApiError::new(
            ErrorCode::Unauthorized,
            match scope {
                Scope::Subscribe => "missing Authorization: Bearer <subscribeToken>",
                _ => "missing Authorization: Bearer <publishToken>",
            },
        ))?;
    relay.key.verify(token.trim(), id, scope, now_ms() / 1000)?;
    Ok(())
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(api::HEADER_IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let b = v.as_bytes();
    if b.is_empty() || b.len() > MAX_IDEMPOTENCY_KEY_LEN || !b.iter().all(|c| c.is_ascii_graphic())
    {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 128 visible ASCII characters",
        ));
    }
    Ok(Some(String::from_utf8_lossy(b).into_owned()))
}

/// `Some` even for an explicit `null` (serde maps `null` to `None` otherwise).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The relay's reading of [`api::PublishRequest`], keeping payloads raw.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    messages: Option<Vec<&'a RawValue>>,
}

/// The relay's reading of [`api::EndRequest`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndBody<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
}

pub(crate) fn check_size(max: usize, m: &RawValue) -> Result<Box<str>, ApiError> {
    if m.get().len() > max {
        return Err(ApiError::owned(
            ErrorCode::MessageTooLarge,
            format!("message over {max} bytes"),
        ));
    }
    Ok(m.get().into())
}

/// The payloads of a publish body: `{"data": …}` or `{"messages": […]}`, each
/// at most `max_message` bytes of JSON text, at most `max_batch` of them.
pub(crate) fn parse_publish_body(
    body: &[u8],
    max_message: usize,
    max_batch: usize,
) -> Result<Vec<Box<str>>, ApiError> {
    let parsed: PublishBody<'_> = parse_object(utf8(body)?)?;
    match (parsed.data, parsed.messages) {
        (Some(d), None) => Ok(vec![check_size(max_message, d)?]),
        (None, Some(list)) => {
            if list.is_empty() {
                return Err(ApiError::bad_request("`messages` must not be empty"));
            }
            if list.len() > max_batch {
                return Err(ApiError::owned(
                    ErrorCode::MessageTooLarge,
                    format!("a batch holds at most {max_batch} messages"),
                ));
            }
            list.into_iter()
                .map(|m| check_size(max_message, m))
                .collect()
        }
        _ => Err(ApiError::bad_request(
            "body must be {\"data\": …} or {\"messages\": […]}",
        )),
    }
}

/// The payload of an end body: empty, `{}` or `{"data": …}` (`null` when absent).
pub(crate) fn parse_end_body(body: &[u8], max_message: usize) -> Result<Box<str>, ApiError> {
    let text = utf8(body)?;
    if text.trim().is_empty() {
        return Ok("null".into());
    }
    let parsed: EndBody<'_> = parse_object(text)?;
    match parsed.data {
        Some(d) => check_size(max_message, d),
        None => Ok("null".into()),
    }
}

/// What publish and end check before reading their body: the channel id, the
/// publish token, the idempotency key; then the body within the size limit.
pub(crate) async fn accept_publish(
    relay: &Relay,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Option<String>, Bytes), ApiError> {
    check_channel_id(id)?;
    authorize(relay, headers, id, Scope::Publish)?;
    let key = idempotency_key(headers)?;
    let body = read_body(relay, headers, body, relay.config.max_body_bytes).await?;
    Ok((key, body))
}

async fn publish(
    State(relay): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = accept_publish(&relay, &id, &headers, body).await?;
    let c = &relay.config;
    let payloads = parse_publish_body(&body, c.max_message_bytes, c.max_batch_messages)?;
    append(&relay, &id, EventKind::Message, payloads, key).await
}

async fn end(
    State(relay): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, body) = accept_publish(&relay, &id, &headers, body).await?;
    let data = parse_end_body(&body, relay.config.max_message_bytes)?;
    append(&relay, &id, EventKind::End, vec![data], key).await
}

pub(crate) async fn append(
    relay: &Relay,
    id: &str,
    kind: EventKind,
    payloads: Vec<Box<str>>,
    idempotency_key: Option<String>,
) -> Result<Response, ApiError> {
    let count = payloads.len() as u64;
    let bytes: usize = payloads.iter().map(|p| p.len()).sum();
    let done = match relay
        .broker
        .append(
            id,
            Append {
                kind,
                payloads,
                idempotency_key,
                now_ms: now_ms(),
                exempt: false,
            },
        )
        .await
    {
        Ok(done) => done,
        // A cancelled channel answers CHANNEL_CANCELLED with the reason.
        Err(e) => return Err(outcome::refusal(relay, id, e).await),
    };
    use std::sync::atomic::Ordering::Relaxed;
    if !done.replayed {
        relay.metrics.messages.fetch_add(count, Relaxed);
        relay.metrics.bytes_in.fetch_add(bytes as u64, Relaxed);
    }
    if kind == EventKind::Message {
        // Backpressure: answer once the readers on this node are close enough
        // (the writer sends its next batch only then). `end` is never held:
        // the newest event is always kept, and nothing follows it.
        let stored = if done.replayed { 0 } else { bytes as u64 };
        let mut shutdown = relay.shutdown.subscribe();
        if !done.replayed && done.subscribers.is_none() {
            // The in-memory broker woke this node's readers waiting at the
            // head: they write the event before this answer is written.
            relay.flow.taken(id, done.last_id, &mut shutdown).await;
        }
        let held = relay
            .flow
            .published(id, done.last_id, stored, &mut shutdown)
            .await;
        if !held.waited.is_zero() {
            relay.metrics.publish_holds.fetch_add(1, Relaxed);
            let ms = u64::try_from(held.waited.as_millis()).unwrap_or(u64::MAX);
            relay.metrics.publish_hold_ms.fetch_add(ms, Relaxed);
        }
        if held.released > 0 {
            relay
                .metrics
                .readers_released
                .fetch_add(held.released as u64, Relaxed);
            tracing::debug!(channel = %id, released = held.released, "backpressure: readers released after the longest wait");
        }
    }
    let out = PublishResponse {
        first_id: done.first_id,
        last_id: done.last_id,
        subscribers: Some(done.subscribers.unwrap_or_else(|| relay.subscribers(id))),
    };
    let mut res = json_response(
        StatusCode::OK,
        serde_json::to_string(&out).unwrap_or_default(),
    );
    if done.replayed {
        res.headers_mut().insert(
            HeaderName::from_static(api::HEADER_IDEMPOTENT_REPLAYED),
            HeaderValue::from_static("true"),
        );
    }
    Ok(res)
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
