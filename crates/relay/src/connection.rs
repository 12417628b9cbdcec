//! One connection's life. Below the connection cap the relay reads each
//! request head itself (`direct`): an EventSource subscription, a publish
//! and an end are answered without hyper; any other request is answered by
//! hyper, one at a time, and
//! the connection comes back once the answer is written (keep-alive intact),
//! so that a subscription on a reused connection is served without hyper too.
//! Upgrades (WebSocket), HTTP/1.0, `Connection: close` and heads the relay
//! does not read itself stay with hyper for the rest of the connection, as do
//! connections over the cap.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse as _, Response};
use axum::Router;
use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::TokioIo;
use sse_channel_protocol::{api, ErrorCode};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tower_service::Service as _;

use crate::direct::{self, First, Rewind, Signalled};
use crate::repoll::Repoll;
use crate::timeout_io::WriteTimeout;
use crate::{ApiError, Relay};

type Io = WriteTimeout<TcpStream>;
type Answer = Pin<Box<dyn Future<Output = Result<Response<Signalled>, Infallible>> + Send>>;

/// What a connection needs to be served.
pub(crate) struct Connection {
    pub(crate) io: Io,
    pub(crate) peer: SocketAddr,
    /// Over the connection cap: hyper answers one request and closes.
    pub(crate) full: bool,
    pub(crate) router: Router,
    pub(crate) relay: Arc<Relay>,
    pub(crate) builder: Arc<Builder>,
    pub(crate) header_timeout: Duration,
    pub(crate) stop: watch::Receiver<bool>,
}

impl Connection {
    /// Serves the connection until it closes.
    pub(crate) async fn serve(self) {
        let (router, mut stop) = (self.router.clone(), self.stop.clone());
        // Everything hyper needs is dropped with `requests` before a stream
        // starts: an idle subscriber's task holds the stream alone. Boxed
        // (once per connection): the task is as large as its largest state,
        // and the requests' state (a publish answered here, with its append
        // and backpressure) would otherwise add to every subscriber.
        let Some((io, req)) = Box::pin(self.requests()).await else {
            return;
        };
        let serve = pin!(direct::serve(io, req, router));
        log(stream_until_stopped(serve, &mut stop).await);
    }

    /// Serves requests until one is a subscription the relay serves itself
    /// (returned), or the connection is over (`None`).
    async fn requests(self) -> Option<(Io, Request)> {
        let Self {
            mut io,
            peer,
            full,
            router,
            relay,
            builder,
            header_timeout,
            mut stop,
        } = self;
        let answered = Arc::new(Notify::new());
        let done = answered.clone();
        let direct_relay = relay.clone();
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| -> Answer {
            let path = req.uri().path();
            let answered = answered.clone();
            if full && path != api::HEALTH_PATH && path != api::METRICS_PATH {
                relay.metrics.error(ErrorCode::TooManyConnections);
                let refused = ApiError::new(
                    ErrorCode::TooManyConnections,
                    "the relay holds its maximum of connections; try again later",
                );
                let res = refused.into_response().map(|b| Signalled::new(b, answered));
                return Box::pin(std::future::ready(Ok(res)));
            }
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let answer = router.clone().call(req);
            Box::pin(async move {
                let res = answer.await?;
                Ok(res.map(|b| Signalled::new(b, answered)))
            })
        });
        if full {
            final_hyper(io, Bytes::new(), &builder, svc, &mut stop).await;
            return None;
        }
        // The bytes read and not yet used, kept from one request to the next.
        let mut buf = Vec::new();
        // Answers written by the relay itself, likewise.
        let mut out = Vec::new();
        // One head timer and one wait for shutdown for all the requests of
        // the connection: set again, not made again, per request.
        let mut head_timer = pin!(tokio::time::sleep(header_timeout));
        let mut stop_seen = stop.clone();
        let mut stopped = pin!(async move {
            let _ = stop_seen.wait_for(|s| *s).await;
        });
        loop {
            head_timer
                .as_mut()
                .reset(tokio::time::Instant::now() + header_timeout);
            let first = tokio::select! {
                first = direct::read_first(&mut io, &mut buf, head_timer.as_mut()) => first,
                () = &mut stopped => First::Closed,
            };
            match first {
                First::Subscribe(mut req) => {
                    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    return Some((io, *req));
                }
                First::Publish(head) => {
                    if !direct::publish::answer(&mut io, &mut buf, &mut out, head, &direct_relay)
                        .await
                    {
                        return None;
                    }
                }
                First::Request => {
                    let head = Bytes::from(std::mem::take(&mut buf));
                    let rest;
                    (io, rest) = one_request(io, head, &builder, svc.clone(), &done, &stop).await?;
                    buf = Vec::from(rest);
                }
                First::Other => {
                    let head = Bytes::from(std::mem::take(&mut buf));
                    final_hyper(io, head, &builder, svc, &mut stop).await;
                    return None;
                }
                First::Closed => return None,
            }
        }
    }
}

/// Runs a stream served without hyper; once the relay shuts down it is polled
/// again, so that a write the peer does not read fails at once (WriteTimeout).
async fn stream_until_stopped(
    mut serve: Pin<&mut impl Future<Output = std::io::Result<()>>>,
    stop: &mut watch::Receiver<bool>,
) -> std::io::Result<()> {
    tokio::select! {
        res = serve.as_mut() => res,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => serve.await,
    }
}

fn log<E: std::fmt::Display>(res: Result<(), E>) {
    if let Err(e) = res {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// hyper answers one request (its head starts `head`); once the answer is
/// written, the connection and the bytes hyper read beyond it come back.
/// `None` when the connection is over (closed, failed, shutting down, or
/// hyper closed it itself).
async fn one_request<S>(
    io: Io,
    head: Bytes,
    builder: &Builder,
    svc: S,
    answered: &Notify,
    stop: &watch::Receiver<bool>,
) -> Option<(Io, Bytes)>
where
    S: hyper::service::HttpService<Incoming, ResBody = Signalled> + Unpin,
    S::Future: Unpin,
{
    // Boxed: hyper's connection state is not part of the connection's task.
    let mut conn = Box::new(builder.serve_connection(TokioIo::new(Rewind::new(io, head)), svc));
    let mut done = pin!(answered.notified());
    let mut stop_seen = stop.clone();
    let mut stopping = pin!(async {
        let _ = stop_seen.wait_for(|s| *s).await;
    });
    let mut taken = false;
    let mut shut = false;
    // Polled again at once when hyper wakes it during a poll: see `repoll`.
    let res = Repoll::new(poll_fn(|cx| {
        if !shut {
            if done.as_mut().poll(cx).is_ready() {
                // The answer's head is written: once its body ends, hyper
                // stops instead of waiting for the next request.
                taken = true;
                shut = true;
                Pin::new(&mut *conn).graceful_shutdown();
            } else if stopping.as_mut().poll(cx).is_ready() {
                shut = true;
                Pin::new(&mut *conn).graceful_shutdown();
            }
        }
        match conn.poll_without_shutdown(cx) {
            Poll::Ready(res) => Poll::Ready(res),
            Poll::Pending => Poll::Pending,
        }
    }))
    .await;
    if let Err(e) = res {
        tracing::debug!(error = %e, "connection ended with an error");
        return None;
    }
    if !taken || *stop.borrow() {
        return None;
    }
    let parts = conn.into_parts();
    let (io, unread) = parts.io.into_inner().into_parts();
    let rest = if unread.is_empty() {
        parts.read_buf
    } else {
        let mut b = BytesMut::from(parts.read_buf);
        b.extend_from_slice(&unread);
        b.freeze()
    };
    Some((io, rest))
}

/// hyper serves the rest of the connection (its next request starts `head`),
/// with upgrades; on shutdown it finishes the response in flight and closes.
async fn final_hyper<S>(
    io: Io,
    head: Bytes,
    builder: &Builder,
    svc: S,
    stop: &mut watch::Receiver<bool>,
) where
    S: hyper::service::HttpService<Incoming, ResBody = Signalled> + Send + 'static,
    S::Future: Send + 'static,
{
    // Boxed: hyper's connection state is not part of the connection's task.
    let mut conn = Box::pin(
        builder
            .serve_connection(TokioIo::new(Rewind::new(io, head)), svc)
            .with_upgrades(),
    );
    // Polled again at once when hyper wakes it during a poll: see `repoll`.
    let res = Repoll::new(async {
        tokio::select! {
            res = conn.as_mut() => res,
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                // Finish the response in flight (streams end themselves on
                // shutdown), then close instead of keeping the connection alive.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    })
    .await;
    log(res);
}
