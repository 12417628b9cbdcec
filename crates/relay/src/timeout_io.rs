//! A socket whose writes time out: a peer that stops reading (its receive
//! window full) would otherwise hold its connection, its subscriber stream and
//! the events in flight forever. Wraps every accepted connection, so the
//! deadline covers requests, EventSource streams and upgraded WebSockets alike.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::{sleep, Sleep};

/// `io` whose writes and flushes fail with [`io::ErrorKind::TimedOut`] once
/// they have made no progress for `timeout`. The clock starts when a write is
/// first refused (the socket buffer is full) and stops at the next accepted
/// byte, so a slow but moving reader is never cut, nor an idle connection.
/// Once the relay shuts down (`shutdown` is `true`), a refused write fails at
/// once, and a write already waiting is woken to fail: a client that stopped
/// reading cannot hold the drain (an upgraded WebSocket's writer waits here
/// in the middle of a send, with nothing else to wake it).
pub(crate) struct WriteTimeout<T> {
    io: T,
    timeout: Duration,
    /// Armed while writes are refused.
    stalled: Option<Pin<Box<Sleep>>>,
    shutdown: watch::Receiver<bool>,
    /// Completes when shutdown begins; polled while writes are refused, so
    /// that the waiting writer is woken then.
    stopping: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for WriteTimeout<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTimeout")
            .field("io", &self.io)
            .field("timeout", &self.timeout)
            .field("stalled", &self.stalled.is_some())
            .finish_non_exhaustive()
    }
}

/// The error of a refused write once shutdown has begun.
fn shutting_down() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "shutting down: the peer stopped reading",
    )
}

impl<T> WriteTimeout<T> {
    pub(crate) fn new(io: T, timeout: Duration, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            io,
            timeout,
            stalled: None,
            shutdown,
            stopping: None,
        }
    }

    /// Turns a `Pending` write into a timeout error once the deadline passed;
    /// clears the deadline on progress.
    fn check<R>(&mut self, cx: &mut Context<'_>, res: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if res.is_ready() {
            self.stalled = None;
            return res;
        }
        if *self.shutdown.borrow() {
            return Poll::Ready(Err(shutting_down()));
        }
        let stopping = self.stopping.get_or_insert_with(|| {
            let mut rx = self.shutdown.clone();
            // A relay gone (the sender dropped) counts as shutting down.
            Box::pin(async move {
                let _ = rx.wait_for(|s| *s).await;
            })
        });
        if stopping.as_mut().poll(cx).is_ready() {
            self.stopping = None;
            return Poll::Ready(Err(shutting_down()));
        }
        let timeout = self.timeout;
        let deadline = self.stalled.get_or_insert_with(|| Box::pin(sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "write timed out: the peer stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.io).poll_write(cx, buf);
        self.check(cx, res)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.check(cx, res)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let res = Pin::new(&mut self.io).poll_flush(cx);
        self.check(cx, res)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let res = Pin::new(&mut self.io).poll_shutdown(cx);
        self.check(cx, res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_nobody_reads_times_out_and_a_read_one_does_not() {
        let (a, _unread) = tokio::io::duplex(1024);
        let running = watch::channel(false);
        let mut w = WriteTimeout::new(a, Duration::from_millis(100), running.1.clone());
        // Fills the pipe; nobody reads: the write fails after the timeout.
        let err = w.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // A reader that keeps up: the same amount passes, slowly.
        let (a, mut b2) = tokio::io::duplex(1024);
        let mut w = WriteTimeout::new(a, Duration::from_millis(100), running.1.clone());
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 256];
            let mut n = 0;
            while n < 8192 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                n += b2.read(&mut buf).await.unwrap();
            }
        });
        w.write_all(&[0u8; 8192]).await.unwrap();
        reader.await.unwrap();
        // Shutting down: a refused write fails without waiting for the timeout.
        let (a, _unread) = tokio::io::duplex(1024);
        let mut w = WriteTimeout::new(a, Duration::from_secs(3600), watch::channel(true).1);
        let err = w.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_write_already_waiting_fails_when_shutdown_begins() {
        let (a, _unread) = tokio::io::duplex(1024);
        let (stop, rx) = watch::channel(false);
        let mut w = WriteTimeout::new(a, Duration::from_secs(3600), rx);
        let writer = tokio::spawn(async move { w.write_all(&[0u8; 4096]).await });
        // The writer waits on the full pipe, then shutdown begins.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!writer.is_finished());
        stop.send_replace(true);
        let err = tokio::time::timeout(Duration::from_secs(10), writer)
            .await
            .expect("woken by the shutdown, not the hour-long timeout")
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
