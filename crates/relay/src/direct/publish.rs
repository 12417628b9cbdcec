//! Publish and end requests answered by the relay itself. A writer sends one
//! request after another on a keep-alive connection; handing each to hyper
//! and the router costs more than the publish (hyper's connection state and
//! buffers set up per request, the router's service stack cloned, the CORS,
//! panic and logging layers, the header map copied): BENCHMARKS.md, "Publish
//! path after `Repoll` and readers first". Here the head is already parsed
//! (`head::PublishHead`), the body is read into the connection's buffer, and
//! the request goes through the same publish core as the router's handlers
//! (`crate::publish`: [`admit`], then [`store`]), with the same limits, body
//! read timeout, error answers, CORS fields, metrics and request log. The
//! answer is written in one write, keep-alive, with what hyper would write:
//! status line, `content-type`, `idempotent-replayed`, the CORS fields,
//! `content-length`, `date`.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use futures_util::FutureExt as _;
use sse_channel_protocol::api;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::head::PublishHead;
use crate::publish::{admit, store, Stored};
use crate::request::{body_too_large, body_too_slow, observed, panicked};
use crate::{unix_ms, ApiError, Relay};

/// A buffer kept by a connection between requests is cut back to this (or
/// to what it holds): a writer's idle keep-alive connection keeps no more
/// than a request head and a small body, whatever its largest body was.
const KEEP_BUFFER: usize = 4 * 1024;

/// How far the request's body was read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Not read: refused before (its bytes may still be in the buffer).
    Unread,
    /// All of it is in the buffer.
    Read,
    /// It did not all arrive (closed, failed or too slow): the connection
    /// closes after the answer.
    Broken,
}

/// Answers the publish or end request at the start of `buf` (its head
/// `head`), reading its body from `io`; on return `buf` holds what was read
/// after it. The answer is written from `out` (the connection's, reused from
/// one request to the next). `false` when the connection is over (closed
/// after the answer).
pub(crate) async fn answer<T: AsyncRead + AsyncWrite + Unpin>(
    io: &mut T,
    buf: &mut Vec<u8>,
    out: &mut Vec<u8>,
    head: PublishHead,
    relay: &Relay,
) -> bool {
    let limit = relay.config.max_body_bytes;
    let mut body = Body::Unread;
    let end = usize::try_from(head.content_length)
        .ok()
        .filter(|&n| n <= limit)
        .map(|n| head.len + n);
    // The time, read once for the token's expiry, the append and `date`
    // (again after a body that did not come with the head).
    let mut now = SystemTime::now();
    let res = AssertUnwindSafe(decide(io, buf, &head, relay, end, &mut body, &mut now))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            body = Body::Broken;
            Err(panicked())
        });
    let keep = match (body, end) {
        (Body::Read, _) => true,
        // Refused before its body was read: kept when the whole body is here.
        (Body::Unread, Some(end)) => buf.len() >= end,
        _ => false,
    } && !relay.is_shutting_down();
    out.clear();
    let (status, code) = match &res {
        Ok(_) => (StatusCode::OK, None),
        Err(e) => (e.status(), Some(e.code)),
    };
    let text = std::str::from_utf8(&buf[head.path.clone()]).unwrap_or_default();
    observed(relay, &"POST", &text, status.as_u16(), code);
    let origin = head.origin.clone().map(|r| &buf[r]);
    write_answer(
        out,
        relay,
        status,
        res,
        origin,
        relay.is_shutting_down(),
        now,
    );
    if keep {
        let used = end.unwrap_or(buf.len()).min(buf.len());
        buf.drain(..used);
        if buf.capacity() > KEEP_BUFFER {
            buf.shrink_to(KEEP_BUFFER);
        }
    }
    if io.write_all(out).await.is_err() {
        return false;
    }
    if !keep {
        let _ = io.shutdown().await;
    }
    keep
}

/// The checks, the body and the append: what the router's publish and end
/// handlers do, in their order.
async fn decide<T: AsyncRead + Unpin>(
    io: &mut T,
    buf: &mut Vec<u8>,
    head: &PublishHead,
    relay: &Relay,
    end: Option<usize>,
    body: &mut Body,
    now: &mut SystemTime,
) -> Result<Stored, ApiError> {
    let mut id = [0u8; 32];
    let key = {
        let field = |r: &Option<std::ops::Range<usize>>| r.clone().map(|r| &buf[r]);
        let text = std::str::from_utf8(&buf[head.id.clone()]).unwrap_or_default();
        let key = admit(
            relay,
            text,
            field(&head.authorization),
            field(&head.idempotency_key),
            unix_ms(*now),
        )?;
        // Admitted: the id is 32 lowercase hex digits.
        id.copy_from_slice(text.as_bytes());
        key
    };
    let id = std::str::from_utf8(&id).unwrap_or_default();
    let limit = relay.config.max_body_bytes;
    let Some(end) = end else {
        return Err(body_too_large(limit));
    };
    // A body that came with the head, as a writer's small bodies do, is read
    // without a timer.
    if buf.len() < end {
        let timeout = Duration::from_millis(relay.config.body_read_timeout_ms);
        let read = tokio::time::timeout(timeout, async {
            while buf.len() < end {
                buf.reserve(end - buf.len());
                match io.read_buf(buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                }
            }
            true
        })
        .await;
        match read {
            Ok(true) => {}
            // As the router's body reader answers a body cut short.
            Ok(false) => {
                *body = Body::Broken;
                return Err(body_too_large(limit));
            }
            Err(_) => {
                *body = Body::Broken;
                return Err(body_too_slow());
            }
        }
        *now = SystemTime::now();
    }
    *body = Body::Read;
    store(
        relay,
        id,
        head.kind,
        key,
        &buf[head.len..end],
        unix_ms(*now),
    )
    .await
}

/// The answer's bytes: what hyper writes for the router's response.
fn write_answer(
    out: &mut Vec<u8>,
    relay: &Relay,
    status: StatusCode,
    res: Result<Stored, ApiError>,
    origin: Option<&[u8]>,
    close: bool,
    now: SystemTime,
) {
    let (body, replayed) = match res {
        Ok(stored) => (stored.body, stored.replayed),
        Err(e) => (e.body_json(), false),
    };
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: ");
    out.extend_from_slice(api::JSON_CONTENT_TYPE.as_bytes());
    out.extend_from_slice(b"\r\n");
    if replayed {
        out.extend_from_slice(api::HEADER_IDEMPOTENT_REPLAYED.as_bytes());
        out.extend_from_slice(b": true\r\n");
    }
    relay.cors.write_fields(origin, out);
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    write_decimal(out, body.len());
    out.extend_from_slice(b"\r\ndate: ");
    super::write_date(out, now);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
}

/// Appends `n` in decimal, without allocating.
fn write_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    out.extend_from_slice(sse_channel_protocol::frame::decimal(n as u64, &mut digits));
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimals() {
        for n in [0, 7, 10, 4096, usize::MAX] {
            let mut out = Vec::new();
            super::write_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
