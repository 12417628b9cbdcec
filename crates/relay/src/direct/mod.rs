//! EventSource subscriptions served without hyper. hyper 1.x gives every
//! connection an 8 KiB response-head buffer and an 8 KiB read buffer that it
//! keeps while a response streams; for an idle subscriber they are most of
//! its memory (docs/relay.md, "Memory per subscriber"). So the accept loop
//! reads the first request head of each connection itself, with a small
//! buffer: an EventSource subscription ([`head::parse`]) goes through the same
//! router as any request, and its answer is written here, framed with chunked
//! transfer-encoding and `Connection: close`; anything else is handed to hyper
//! with the bytes read so far ([`Rewind`]). hyper answers one request at a
//! time: once a keep-alive response ends ([`Signalled`]), the connection
//! comes back here, so that a subscription on a reused connection is served
//! here too. Publish and end requests with a `Content-Length` body are
//! answered here without hyper or the router ([`publish`]), through the same
//! publish core as the router's handlers.

pub(crate) mod head;
pub(crate) mod publish;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderValue, Request, Response};
use axum::Router;
use bytes::{Buf, Bytes};
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::sync::Notify;
use tower_service::Service as _;

use head::Parsed;

/// Bytes read per call while the head arrives: a browser's request usually
/// comes in one.
const READ_STEP: usize = 1024;

/// The next request on a connection, as far as this module is concerned.
pub(crate) enum First {
    /// A subscription: serve it with [`serve`].
    Subscribe(Box<Request<Body>>),
    /// A publish or end: answer it with [`publish::answer`], then read the
    /// next head.
    Publish(head::PublishHead),
    /// Another request hyper answers, starting with the bytes read; then the
    /// connection comes back here for the next one.
    Request,
    /// hyper serves the connection from here on, starting with the bytes read.
    Other,
    /// The peer closed, failed or did not send a head in time: drop it.
    Closed,
}

/// Reads the next request head of a connection into `buf` (which holds the
/// bytes already read, and keeps all that is read), until `deadline` fires.
/// The connection keeps one timer for all its requests and sets it again for
/// each (a later deadline only updates the armed timer: no timer armed and
/// cancelled per request).
pub(crate) async fn read_first<T: AsyncRead + Unpin>(
    io: &mut T,
    buf: &mut Vec<u8>,
    deadline: Pin<&mut tokio::time::Sleep>,
) -> First {
    let parse = async {
        loop {
            if !buf.is_empty() {
                match head::parse(buf) {
                    Parsed::Subscribe(req) => return First::Subscribe(req),
                    Parsed::Publish(head) => return First::Publish(head),
                    Parsed::Request => return First::Request,
                    Parsed::Other => return First::Other,
                    Parsed::Incomplete => {}
                }
            }
            if buf.capacity() - buf.len() < READ_STEP {
                buf.reserve(READ_STEP);
            }
            match io.read_buf(buf).await {
                Ok(0) | Err(_) => return First::Closed,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        biased;
        first = parse => first,
        () = deadline => First::Closed,
    }
}

/// Answers `req` through `router` on `io` and closes the connection once the
/// answer ends, or as soon as the peer closes its side.
pub(crate) async fn serve<T: AsyncRead + AsyncWrite + Unpin>(
    mut io: T,
    req: Request<Body>,
    mut router: Router,
) -> io::Result<()> {
    // Boxed: the router's future would otherwise stay in the connection's
    // task for as long as the stream lasts.
    let res = match Box::pin(router.call(req)).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    let (parts, mut body) = res.into_parts();
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .or_else(|| HttpBody::size_hint(&body).exact());
    io.write_all(&response_head(&Response::from_parts(parts, ()), length))
        .await?;
    let mut probe = [0u8; 64];
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            // The peer closing (or sending anything) while the stream is idle
            // ends it at once, as hyper's read of the next request would.
            read = io.read(&mut probe) => match read {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => continue,
            },
        };
        let data = match frame {
            None => break,
            // The stream failed: end without the last chunk, so that the
            // client sees a broken answer, not a complete one.
            Some(Err(e)) => return Err(io::Error::other(e)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
        };
        if length.is_some() {
            io.write_all(&data).await?;
        } else {
            let size = ChunkSize::new(data.len());
            io.write_all_buf(&mut size.chain(data).chain(&b"\r\n"[..]))
                .await?;
        }
    }
    if length.is_none() {
        io.write_all(b"0\r\n\r\n").await?;
    }
    io.shutdown().await
}

/// The status line and header fields of `res`, with `Date`,
/// `Connection: close` and the body's framing (`Content-Length` when
/// `length` is known, else chunked).
fn response_head(res: &Response<()>, length: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let status = res.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in res.headers() {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        field(&mut out, name.as_str(), value);
    }
    out.extend_from_slice(b"date: ");
    write_date(&mut out, std::time::SystemTime::now());
    out.extend_from_slice(b"\r\n");
    field(&mut out, "connection", &HeaderValue::from_static("close"));
    match length {
        Some(n) => field(&mut out, "content-length", &HeaderValue::from(n)),
        None => field(
            &mut out,
            "transfer-encoding",
            &HeaderValue::from_static("chunked"),
        ),
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends `now` as an HTTP date (what hyper writes in `Date`), formatted
/// once a second per thread.
pub(crate) fn write_date(out: &mut Vec<u8>, now: std::time::SystemTime) {
    use std::cell::RefCell;
    use std::time::UNIX_EPOCH;
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(text.as_bytes());
    });
}

fn field(out: &mut Vec<u8>, name: &str, value: &HeaderValue) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A chunk's size line (`{len:x}\r\n`), without allocating.
struct ChunkSize {
    bytes: [u8; 18],
    pos: usize,
}

impl ChunkSize {
    fn new(len: usize) -> Self {
        let mut bytes = [0u8; 18];
        let digits = format_hex(len, &mut bytes[..16]);
        let pos = 16 - digits;
        bytes[16] = b'\r';
        bytes[17] = b'\n';
        Self { bytes, pos }
    }
}

/// Writes `n` in lowercase hex right-aligned into `out` (16 bytes); returns
/// how many digits it took.
fn format_hex(mut n: usize, out: &mut [u8]) -> usize {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            return out.len() - i;
        }
    }
}

impl Buf for ChunkSize {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    fn chunk(&self) -> &[u8] {
        &self.bytes[self.pos..]
    }
    fn advance(&mut self, cnt: usize) {
        self.pos += cnt;
    }
}

/// `io` that first yields the bytes already read from it: what hyper gets
/// when the relay read part of a request it does not serve itself.
#[derive(Debug)]
pub(crate) struct Rewind<T> {
    prefix: Bytes,
    io: T,
}

impl<T> Rewind<T> {
    pub(crate) fn new(io: T, prefix: Bytes) -> Self {
        Self { prefix, io }
    }

    /// The io, and the bytes of the prefix not read yet.
    pub(crate) fn into_parts(self) -> (T, Bytes) {
        (self.io, self.prefix)
    }
}

/// A response body that tells the connection when hyper is done with it
/// (dropped): by then hyper has written the response head, so the
/// connection can be taken back once the response ends, keep-alive intact.
pub(crate) struct Signalled {
    body: Body,
    done: Arc<Notify>,
}

impl Signalled {
    pub(crate) fn new(body: Body, done: Arc<Notify>) -> Self {
        Self { body, done }
    }
}

impl Drop for Signalled {
    fn drop(&mut self) {
        self.done.notify_one();
    }
}

impl HttpBody for Signalled {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                // Frees the head buffer: an upgraded WebSocket keeps this io.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_lowercase_hex_lines() {
        for (n, line) in [
            (0, "0\r\n"),
            (10, "a\r\n"),
            (255, "ff\r\n"),
            (4096, "1000\r\n"),
        ] {
            let c = ChunkSize::new(n);
            assert_eq!(c.chunk(), line.as_bytes());
        }
        let c = ChunkSize::new(usize::MAX);
        assert_eq!(c.remaining(), 18);
    }

    #[tokio::test]
    async fn rewind_reads_the_prefix_then_the_rest() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b" world").await.unwrap();
        drop(a);
        let mut r = Rewind::new(b, Bytes::from_static(b"hello"));
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }
}
