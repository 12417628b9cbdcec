//! The publish core: what `POST …/messages` and `POST …/end` do with a
//! request, shared by the router's handlers (requests hyper reads) and the
//! requests the relay reads itself (`direct::publish`). Both call
//! [`admit`] (channel id, publish token, idempotency key) before the body is
//! read, then [`store`] (the body's shape and limits, the append,
//! backpressure, metrics, the JSON answer); only reading the body and writing
//! the answer differ between the two.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use sse_channel_protocol::api::{self, PublishResponse};
use sse_channel_protocol::limits::MAX_IDEMPOTENCY_KEY_LEN;
use sse_channel_protocol::{ErrorCode, EventKind, Scope};

use crate::broker::Append;
use crate::request::{check_channel_id, json_response, parse_object, read_body, utf8};
use crate::{now_ms, outcome, ApiError, Relay};

/// A header value as text, when it is visible ASCII (or tabs): what
/// `HeaderValue::to_str` accepts, so that both paths read a header the same.
pub(crate) fn header_str(value: &[u8]) -> Option<&str> {
    // Without an early exit, which the compiler turns into vector code: a
    // publish token (about 180 bytes) is checked on every publish.
    let visible = value
        .iter()
        .fold(true, |ok, &b| ok & ((b == b'\t') | (32..127).contains(&b)));
    if visible {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

/// The first value of header `name`, as bytes.
pub(crate) fn header_bytes<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

/// Checks the `Authorization: Bearer <token>` header for `id` and `scope`
/// (publish routes; `cancel` with a subscribe token).
pub(crate) fn authorize(
    relay: &Relay,
    headers: &HeaderMap,
    id: &str,
    scope: Scope,
) -> Result<(), ApiError> {
    authorize_value(
        relay,
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
        id,
        scope,
        now_ms() / 1000,
    )
}

/// [`authorize`] with the (first) `Authorization` header's value, at
/// `now_secs` (Unix time).
pub(crate) fn authorize_value(
    relay: &Relay,
    value: Option<&[u8]>,
    id: &str,
    scope: Scope,
    now_secs: u64,
) -> Result<(), ApiError> {
    let token = value
        .and_then(header_str)
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
    relay.verify_token(token.trim(), id, scope, now_secs)?;
    Ok(())
}

/// The `Idempotency-Key` header's (first) value, checked.
pub(crate) fn idempotency_key(value: Option<&[u8]>) -> Result<Option<String>, ApiError> {
    let Some(b) = value else {
        return Ok(None);
    };
    if b.is_empty() || b.len() > MAX_IDEMPOTENCY_KEY_LEN || !b.iter().all(|c| c.is_ascii_graphic())
    {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 128 visible ASCII characters",
        ));
    }
    Ok(Some(String::from_utf8_lossy(b).into_owned()))
}

/// What publish, end and fail check before their body is read at `now_ms`
/// (Unix time): the channel id, the publish token (`authorization`, the
/// header's first value) and the idempotency key (`key`, likewise), which is
/// returned.
pub(crate) fn admit(
    relay: &Relay,
    id: &str,
    authorization: Option<&[u8]>,
    key: Option<&[u8]>,
    now_ms: u64,
) -> Result<Option<String>, ApiError> {
    check_channel_id(id)?;
    authorize_value(relay, authorization, id, Scope::Publish, now_ms / 1000)?;
    idempotency_key(key)
}

/// [`admit`], then the body within [`crate::Config::max_body_bytes`] and the
/// body read timeout (requests hyper reads).
pub(crate) async fn accept_publish(
    relay: &Relay,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Option<String>, Bytes), ApiError> {
    let key = admit(
        relay,
        id,
        header_bytes(headers, header::AUTHORIZATION.as_str()),
        header_bytes(headers, api::HEADER_IDEMPOTENCY_KEY),
        now_ms(),
    )?;
    let body = read_body(relay, headers, body, relay.config.max_body_bytes).await?;
    Ok((key, body))
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

/// A stored publish's answer, before it is written: `200` with this JSON
/// body, and `Idempotent-Replayed: true` when `replayed`.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) body: String,
    pub(crate) replayed: bool,
}

impl IntoResponse for Stored {
    fn into_response(self) -> Response {
        let mut res = json_response(StatusCode::OK, self.body);
        if self.replayed {
            res.headers_mut().insert(
                HeaderName::from_static(api::HEADER_IDEMPOTENT_REPLAYED),
                HeaderValue::from_static("true"),
            );
        }
        res
    }
}

/// A publish (`kind` [`EventKind::Message`]) or end ([`EventKind::End`])
/// body, admitted by [`admit`] and read: parsed, checked and appended at
/// `now_ms` (Unix time, read once the body is in).
pub(crate) async fn store(
    relay: &Relay,
    id: &str,
    kind: EventKind,
    key: Option<String>,
    body: &[u8],
    now_ms: u64,
) -> Result<Stored, ApiError> {
    let c = &relay.config;
    let payloads = match kind {
        EventKind::End => vec![parse_end_body(body, c.max_message_bytes)?],
        _ => parse_publish_body(body, c.max_message_bytes, c.max_batch_messages)?,
    };
    append(relay, id, kind, payloads, key, now_ms).await
}

pub(crate) async fn append(
    relay: &Relay,
    id: &str,
    kind: EventKind,
    payloads: Vec<Box<str>>,
    idempotency_key: Option<String>,
    now_ms: u64,
) -> Result<Stored, ApiError> {
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
                now_ms,
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
        // The in-memory broker woke this node's readers waiting at the head
        // (`subscribers` unknown): they write the event before this answer.
        let readers_first = !done.replayed && done.subscribers.is_none();
        let held = relay
            .flow
            .after_publish(id, done.last_id, stored, readers_first, &relay.shutdown)
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
    Ok(Stored {
        body: serde_json::to_string(&out).unwrap_or_default(),
        replayed: done.replayed,
    })
}

#[cfg(test)]
mod tests {
    use super::header_str;

    /// What `HeaderValue::to_str` accepts, byte by byte: visible ASCII and tabs.
    #[test]
    fn header_text_is_what_to_str_accepts() {
        for b in 0..=255u8 {
            for at in [0, 1, 40, 199] {
                let mut v = vec![b'a'; 200];
                v[at] = b;
                let want = axum::http::HeaderValue::from_bytes(&v)
                    .ok()
                    .and_then(|h| h.to_str().ok().map(str::to_owned));
                assert_eq!(header_str(&v).map(str::to_owned), want, "byte {b} at {at}");
            }
        }
        assert_eq!(header_str(b""), Some(""));
    }
}
