//! The WebSocket stream (`/ws`): the opening handshake, then the subscriber
//! loop on the upgraded socket, framed here ([`frame`]).
//!
//! The relay sends only final, unmasked text and close frames (and pongs), so
//! it writes them itself: every event ready at a wake-up goes into one buffer
//! and one socket write, with no per-message sink state, no copy of a frame
//! into a library's own buffer, and the socket taken back from hyper (no boxed
//! I/O in between). Client frames are parsed by [`frame::Reader`] with the
//! limits of `docs/protocol.md`.

mod frame;

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sha1::{Digest as _, Sha1};
use sse_channel_protocol::frame::ws_frame;
use sse_channel_protocol::{ErrorCode, EventKind};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};

use crate::broker::Event;
use crate::direct::Rewind;
use crate::metrics::Transport;
use crate::request::Shared;
use crate::stream::{
    admit, batch_runs, is_client_ping, lost_json, plain_503, ready_json, Admission, Step,
    Subscriber,
};
use crate::timeout_io::WriteTimeout;
use crate::ApiError;
use frame::{Incoming, Reader};

/// A connection's socket as `run` accepts it.
type Io = WriteTimeout<tokio::net::TcpStream>;

/// Largest message a WebSocket client may send, fragments together (clients
/// only send pings); a larger one is answered with close code 1009.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// How long a close sent by the relay waits for the client's.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The value RFC 6455 §4.2.2 appends to the client's key.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A WebSocket opening handshake on HTTP/1.1 (RFC 6455 §4.2.1), or `None`
/// when the request is not one (the same checks as axum's extractor).
pub(crate) struct Handshake(Option<(HeaderValue, OnUpgrade)>);

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let h = &parts.headers;
        let has = |name, token: &str| {
            h.get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains(token))
        };
        let is = |name, value: &str| {
            h.get(name)
                .is_some_and(|v: &HeaderValue| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
        };
        let ok = parts.method == Method::GET
            && has(header::CONNECTION, "upgrade")
            && is(header::UPGRADE, "websocket")
            && is(header::SEC_WEBSOCKET_VERSION, "13");
        let Some(key) = h.get(header::SEC_WEBSOCKET_KEY).filter(|_| ok) else {
            return Ok(Self(None));
        };
        let accept = accept_key(key.as_bytes());
        Ok(Self(
            parts
                .extensions
                .remove::<OnUpgrade>()
                .map(|up| (accept, up)),
        ))
    }
}

/// `Sec-WebSocket-Accept` for the client's `Sec-WebSocket-Key`.
fn accept_key(key: &[u8]) -> HeaderValue {
    let digest = Sha1::new()
        .chain_update(key)
        .chain_update(ACCEPT_GUID)
        .finalize();
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    HeaderValue::from_str(&b64).unwrap_or(HeaderValue::from_static(""))
}

/// `GET /v1/channels/{id}/ws`.
pub(crate) async fn ws(
    State(relay): State<Shared>,
    Path(id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
    Handshake(upgrade): Handshake,
) -> Response {
    let admission = admit(&relay, &id, query, &headers, Transport::Ws).await;
    match (upgrade, admission) {
        (_, Ok(Admission::Paused)) => plain_503(),
        (Some(up), Ok(Admission::Go(sub))) => switch(up, move |mut socket| async move {
            let ready = ws_frame(None, EventKind::Ready, &ready_json(&sub.relay));
            if socket.send_text(&ready).await.is_ok() {
                let mut sub = sub;
                if let Err(e) = stream(&mut socket, &mut sub).await {
                    tracing::debug!(error = %e, "WebSocket stream ended with an error");
                }
                // Released before the client can see the connection end.
                drop(sub);
            }
            drop(socket);
        }),
        (Some(up), Err(e)) => {
            relay.metrics.error(e.code);
            switch(up, move |mut socket| async move {
                let _ = close_with_error(&mut socket, &e).await;
            })
        }
        (None, Ok(_)) => ApiError::bad_request("a WebSocket upgrade is required").into_response(),
        (None, Err(e)) => e.into_response(),
    }
}

/// Answers `101 Switching Protocols` and runs `then` on the socket once
/// hyper hands it over.
fn switch<F, Fut>((accept, on_upgrade): (HeaderValue, OnUpgrade), then: F) -> Response
where
    F: FnOnce(Socket<Conn>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(error = %e, "WebSocket upgrade failed"),
        };
        // The relay's own connections (`run`) are `Rewind<Io>`: taken back
        // whole, with whatever hyper read past the request head.
        let socket = match upgraded.downcast::<TokioIo<Rewind<Io>>>() {
            Ok(parts) => {
                let (io, unread) = parts.io.into_inner().into_parts();
                let mut read = Vec::from(&parts.read_buf[..]);
                read.extend_from_slice(&unread);
                Socket::new(Conn::Relay(io), read)
            }
            // Served by another server (`app()` under `axum::serve`).
            Err(upgraded) => Socket::new(Conn::Other(TokioIo::new(upgraded)), Vec::new()),
        };
        then(socket).await;
    });
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    res
}

/// An upgraded connection: the socket and what the client sent.
pub(crate) struct Socket<T> {
    io: T,
    reader: Reader,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Socket<T> {
    fn new(io: T, read: Vec<u8>) -> Self {
        Self {
            io,
            reader: Reader::new(MAX_CLIENT_MESSAGE, read),
        }
    }

    async fn send_text(&mut self, text: &str) -> io::Result<()> {
        let mut out = Vec::new();
        frame::put_text(&mut out, text);
        self.io.write_all(&out).await
    }

    /// Sends `out` (whole frames, ending with a close frame) and waits
    /// briefly for the client's close frame, so that the browser sees a clean
    /// close with this code.
    async fn close_after(&mut self, out: &[u8]) -> io::Result<()> {
        self.io.write_all(out).await?;
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            loop {
                loop {
                    match self.reader.next() {
                        Ok(Some(Incoming::Close(_))) | Err(_) => return,
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                    }
                }
                match self.io.read_buf(self.reader.read_buf()).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        Ok(())
    }

    async fn close(&mut self, code: u16) -> io::Result<()> {
        let mut out = Vec::with_capacity(4);
        frame::put_close(&mut out, code);
        self.close_after(&out).await
    }
}

/// The error frame, then close code 4000 + its HTTP status (one write).
async fn close_with_error<T>(socket: &mut Socket<T>, e: &ApiError) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = Vec::new();
    frame::put_text(
        &mut out,
        &ws_frame(None, EventKind::Error, &e.detail_json()),
    );
    frame::put_close(&mut out, 4000 + e.code.http_status());
    socket.close_after(&out).await
}

/// The frames of ready `events` in one buffer: with `batch`, a burst as
/// JSON arrays (`stream::batch_runs`), else one frame per event. Also the
/// payload bytes, for the metrics.
fn event_frames(events: &[Arc<Event>], batch: bool) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut bytes = 0;
    if batch && events.len() > 1 {
        for run in batch_runs(events) {
            // `[frame,frame,…]`, written in place.
            let len = run.iter().map(|e| e.ws_frame().len() + 1).sum::<usize>() + 1;
            out.reserve(frame::header_len(len) + len);
            frame::put_header(&mut out, frame::OP_TEXT, len);
            for (i, e) in run.iter().enumerate() {
                out.push(if i == 0 { b'[' } else { b',' });
                out.extend_from_slice(e.ws_frame().as_bytes());
            }
            out.push(b']');
            bytes += len as u64;
        }
    } else {
        let len: usize = events
            .iter()
            .map(|e| frame::header_len(e.ws_frame().len()) + e.ws_frame().len())
            .sum();
        out.reserve_exact(len);
        for e in events {
            frame::put_text(&mut out, e.ws_frame());
            bytes += e.ws_frame().len() as u64;
        }
    }
    (out, bytes)
}

/// The subscriber loop: ready events out, client frames in, one task.
async fn stream<T>(socket: &mut Socket<T>, sub: &mut Subscriber) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        // Frames read so far (also those that came with the handshake).
        loop {
            match socket.reader.next() {
                Ok(None) => break,
                Ok(Some(Incoming::Text(t))) => {
                    if is_client_ping(&t) {
                        socket
                            .send_text(&ws_frame(None, EventKind::Pong, "null"))
                            .await?;
                    }
                }
                Ok(Some(Incoming::Ping(payload))) => {
                    let mut out = Vec::with_capacity(2 + payload.len());
                    frame::put_frame(&mut out, frame::OP_PONG, &payload);
                    socket.io.write_all(&out).await?;
                }
                Ok(Some(Incoming::Close(reply))) => {
                    // The client closes (e.g. `ws.close(1000)`): answer with
                    // the same code, or the browser reports 1006 and
                    // `wasClean: false`.
                    sub.leave();
                    let mut out = Vec::with_capacity(2 + reply.len());
                    frame::put_frame(&mut out, frame::OP_CLOSE, &reply);
                    return socket.io.write_all(&out).await;
                }
                Ok(Some(Incoming::Binary | Incoming::Pong)) => {}
                Err(frame::Violation(code)) => {
                    let mut out = Vec::with_capacity(4);
                    frame::put_close(&mut out, code);
                    return socket.io.write_all(&out).await;
                }
            }
        }
        tokio::select! {
            step = sub.next() => match step {
                None => return socket.close(1000).await,
                Some(Step::Events(events)) => {
                    // Every ready event in one buffer and one write; with
                    // `batch=1` a burst is a few frames, not one per event.
                    let (out, bytes) = event_frames(&events, sub.batch);
                    socket.io.write_all(&out).await?;
                    sub.relay.metrics.bytes_out.fetch_add(bytes, Relaxed);
                }
                Some(Step::Lost(l)) => {
                    sub.relay.metrics.error(ErrorCode::MessagesLost);
                    socket
                        .send_text(&ws_frame(None, EventKind::Error, &lost_json(l)))
                        .await?;
                }
                Some(Step::Ping) => {
                    socket
                        .send_text(&ws_frame(None, EventKind::Ping, "null"))
                        .await?;
                }
                Some(Step::Fail(e)) => {
                    sub.relay.metrics.error(e.code);
                    return close_with_error(socket, &e).await;
                }
                Some(Step::Abort) => return Ok(()),
            },
            read = socket.io.read_buf(socket.reader.read_buf()) => {
                if read? == 0 {
                    return Ok(());
                }
            }
        }
    }
}

/// The upgraded socket: the relay's own connection, or hyper's boxed one
/// when the router is served by another server.
pub(crate) enum Conn {
    Relay(Io),
    Other(TokioIo<hyper::upgrade::Upgraded>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Relay(io) => Pin::new(io).poll_read(cx, buf),
            Conn::Other(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Relay(io) => Pin::new(io).poll_write(cx, buf),
            Conn::Other(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Relay(io) => Pin::new(io).poll_flush(cx),
            Conn::Other(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Relay(io) => Pin::new(io).poll_shutdown(cx),
            Conn::Other(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}
