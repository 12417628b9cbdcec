//! Raw HTTP/1.1 over a `TcpStream`: a test writes the exact bytes of its
//! requests and reads the relay's answers as they come on the wire (every
//! read bounded by [`WAIT`]).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{TestRelay, WAIT};

/// One connection to a relay, with the bytes read and not yet taken.
pub struct RawConn {
    pub s: TcpStream,
    /// Read from the socket, not yet taken by [`RawConn::answer`] or
    /// [`RawConn::read_until`].
    pub buf: Vec<u8>,
}

impl RawConn {
    /// A new connection to `relay`.
    pub async fn connect(relay: &TestRelay) -> Self {
        Self {
            s: TcpStream::connect(relay.addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// A new connection to `relay` on which `request` is written.
    pub async fn open(relay: &TestRelay, request: impl AsRef<[u8]>) -> Self {
        let mut c = Self::connect(relay).await;
        c.send(request).await;
        c
    }

    /// A new connection on which `parts` are written, 50 ms apart, so that
    /// the relay reads the request in several pieces.
    pub async fn send_parts(relay: &TestRelay, parts: &[&str]) -> Self {
        let mut c = Self::connect(relay).await;
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            c.send(p).await;
        }
        c
    }

    /// Writes `bytes`.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.s.write_all(bytes.as_ref()).await.unwrap();
    }

    /// Writes `bytes`, whether or not the relay still reads (it may have
    /// closed the connection).
    pub async fn send_lossy(&mut self, bytes: impl AsRef<[u8]>) {
        let _ = self.s.write_all(bytes.as_ref()).await;
    }

    /// Reads once more into [`RawConn::buf`]; the bytes read (0: closed).
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        let n = self.s.read(&mut chunk).await.unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// The next answer: its head (with `date` blanked) and body, by its
    /// `content-length`; what was read after it stays in the buffer.
    pub async fn answer(&mut self) -> String {
        tokio::time::timeout(WAIT, async {
            loop {
                let text = String::from_utf8_lossy(&self.buf).into_owned();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .expect("a content-length")
                        .parse()
                        .unwrap();
                    if rest.len() >= length {
                        let used = head.len() + 4 + length;
                        let one = String::from_utf8(self.buf.drain(..used).collect()).unwrap();
                        return blank_date(&one);
                    }
                }
                assert!(
                    self.fill().await > 0,
                    "closed before a whole answer: {text:?}"
                );
            }
        })
        .await
        .expect("an answer in time")
    }

    /// Reads until what was read contains `needle`, and takes all of it
    /// (also what came after the needle in the same read).
    pub async fn read_until(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(WAIT, async {
            while !String::from_utf8_lossy(&self.buf).contains(needle) {
                if self.fill().await == 0 {
                    return false;
                }
            }
            true
        })
        .await;
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        assert!(found == Ok(true), "no {needle:?} in {text}");
        self.buf.clear();
        text
    }

    /// Everything until the relay closes the connection (a reset counts as
    /// a close).
    pub async fn read_to_close(&mut self) -> String {
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(WAIT, self.s.read_to_end(&mut rest))
            .await
            .expect("closed in time");
        let mut all = std::mem::take(&mut self.buf);
        all.extend_from_slice(&rest);
        String::from_utf8_lossy(&all).into_owned()
    }

    /// True when the relay closes the connection within the wait, sending
    /// nothing more (nothing may be left in the buffer either).
    pub async fn closes(&mut self) -> bool {
        assert!(
            self.buf.is_empty(),
            "bytes after the answer: {:?}",
            self.buf
        );
        let mut rest = Vec::new();
        match tokio::time::timeout(WAIT, self.s.read_to_end(&mut rest)).await {
            Ok(Ok(_)) => {
                assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
                true
            }
            Ok(Err(_)) => true,
            Err(_) => false,
        }
    }

    /// True when the relay closes the connection within the wait, whatever
    /// it sends before (read and dropped).
    pub async fn drains_to_close(&mut self) -> bool {
        let mut chunk = vec![0u8; 1 << 20];
        tokio::time::timeout(WAIT, async {
            while let Ok(1..) = self.s.read(&mut chunk).await {}
        })
        .await
        .is_ok()
    }
}

/// The answer to `request` on a new connection ([`RawConn::answer`]).
pub async fn raw_answer(relay: &TestRelay, request: &str) -> String {
    RawConn::open(relay, request).await.answer().await
}

/// `answer` with its `date` header's value replaced by `-`.
pub fn blank_date(answer: &str) -> String {
    answer
        .split("\r\n")
        .map(|l| {
            if l.starts_with("date: ") {
                "date: -"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}
