//! Request plumbing shared by the routes, the subscriber streams and the
//! relay's own HTTP paths (`direct`): the shared state, the client's address,
//! JSON answers, channel id checks, request bodies, the answer to a panic and
//! the request log.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sse_channel_protocol::api;
use sse_channel_protocol::descriptor::is_channel_id;
use sse_channel_protocol::ErrorCode;

use crate::{ApiError, Relay};

pub(crate) type Shared = Arc<Relay>;

/// The answer to a request whose handler panicked.
pub(crate) fn panicked() -> ApiError {
    ApiError::new(ErrorCode::Internal, "the request failed inside the relay")
}

/// Counts an answer's error code and logs the request: what the router's
/// `observe` layer does, and the relay's own answers call.
pub(crate) fn observed(
    relay: &Relay,
    method: &dyn std::fmt::Display,
    path: &dyn std::fmt::Display,
    status: u16,
    code: Option<ErrorCode>,
) {
    if let Some(code) = code {
        relay.metrics.error(code);
        tracing::debug!(%method, %path, status, code = code.as_str(), "refused");
    } else {
        tracing::trace!(%method, %path, status, "request");
    }
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

/// `413 MESSAGE_TOO_LARGE` for a body over `limit` bytes.
pub(crate) fn body_too_large(limit: usize) -> ApiError {
    ApiError::owned(
        ErrorCode::MessageTooLarge,
        format!("request body over {limit} bytes"),
    )
}

/// `400 BAD_REQUEST` for a body not read within the body read timeout.
pub(crate) fn body_too_slow() -> ApiError {
    ApiError::bad_request("request body not received in time")
}

/// The body, at most `limit` bytes, within the body read timeout.
pub(crate) async fn read_body(
    relay: &Relay,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        if len
            .to_str()
            .ok()
            .and_then(|l| l.parse::<u64>().ok())
            .is_some_and(|l| l > limit as u64)
        {
            return Err(body_too_large(limit));
        }
    }
    let timeout = Duration::from_millis(relay.config.body_read_timeout_ms);
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(read) => read.map_err(|_| body_too_large(limit)),
        Err(_) => Err(body_too_slow()),
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
