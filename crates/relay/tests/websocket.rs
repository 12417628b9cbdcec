//! The WebSocket stream byte by byte (RFC 6455 and docs/protocol.md): a raw
//! TCP client checks the handshake, the server's frames in each length form,
//! and what the relay answers to pings, closes and frames that break the
//! rules.

mod common;

use common::*;
use serde_json::Value;
use sse_relay::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw WebSocket client connection.
struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

/// A server frame: `(opcode, payload)`.
type Frame = (u8, Vec<u8>);

const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// RFC 6455 §1.3's example key and the answer it must get.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

impl Raw {
    /// Opens `/ws` of `ch`; `early` is sent in the same write as the request
    /// head (frames a client sends before it reads the 101).
    async fn open(relay: &TestRelay, ch: &Channel, query: &str, early: &[u8]) -> Raw {
        let mut tcp = TcpStream::connect(relay.addr).await.unwrap();
        let mut req = format!(
            "GET /v1/channels/{}/ws?{}{query} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n",
            ch.id,
            ch.q(),
        )
        .into_bytes();
        req.extend_from_slice(early);
        tcp.write_all(&req).await.unwrap();
        let mut raw = Raw {
            tcp,
            buf: Vec::new(),
        };
        let head = loop {
            if let Some(end) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(raw.buf[..end].to_vec()).unwrap();
                raw.buf.drain(..end + 4);
                break head;
            }
            raw.fill().await;
        };
        let lower = head.to_ascii_lowercase();
        assert!(lower.starts_with("http/1.1 101"), "{head}");
        assert!(lower.contains("\r\nupgrade: websocket"), "{head}");
        assert!(lower.contains("\r\nconnection: upgrade"), "{head}");
        assert!(
            head.contains(&format!("sec-websocket-accept: {ACCEPT}")),
            "{head}"
        );
        raw
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk))
            .await
            .expect("bytes from the relay in time")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// The next server frame, checked to be final and unmasked; `None` once
    /// the relay has closed the connection.
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            if self.fill().await == 0 {
                assert!(self.buf.is_empty(), "a partial frame before the end");
                return None;
            }
        }
    }

    async fn text(&mut self) -> Value {
        let (op, payload) = self.frame().await.expect("a frame");
        assert_eq!(op, OP_TEXT);
        serde_json::from_slice(&payload).unwrap()
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.unwrap();
    }

    /// Expects a close frame with `code`, then the end of the connection.
    async fn expect_close(&mut self, code: u16) {
        let (op, payload) = self.frame().await.expect("a close frame");
        assert_eq!(op, OP_CLOSE, "{payload:?}");
        assert_eq!(payload[..2], code.to_be_bytes());
        assert!(self.frame().await.is_none(), "nothing after the close");
    }
}

/// A server frame at the start of `b`, and the bytes it used.
fn parse(b: &[u8]) -> Option<(Frame, usize)> {
    if b.len() < 2 {
        return None;
    }
    assert_eq!(b[0] & 0xF0, 0x80, "final, no reserved bits");
    assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
    let (len, at) = match b[1] & 0x7F {
        126 => (
            u16::from_be_bytes(b.get(2..4)?.try_into().unwrap()) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(b.get(2..10)?.try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    // The shortest form, as RFC 6455 §5.2 requires.
    match at {
        4 => assert!((126..=0xFFFF).contains(&len)),
        10 => assert!(len > 0xFFFF),
        _ => {}
    }
    let payload = b.get(at..at + len)?.to_vec();
    Some(((b[0] & 0x0F, payload), at + len))
}

/// A client frame; `masked: false` breaks RFC 6455 §5.1.
fn client(opcode: u8, fin: bool, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let m = if masked { 0x80 } else { 0 };
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client(opcode, true, payload, true)
}

#[tokio::test]
async fn events_go_out_in_each_length_form_and_end_with_1000() {
    let relay = start(Config {
        max_message_bytes: 128 * 1024,
        max_body_bytes: 256 * 1024,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    let mut ws = Raw::open(&relay, &ch, "", b"").await;
    assert_eq!(ws.text().await["event"], "ready");
    // Frames of about 40, 1,000 and 70,000 bytes: 2-, 4- and 10-byte headers.
    for len in [10, 1000, 70_000] {
        let data = "x".repeat(len);
        let res = relay
            .publish(&ch, &format!("{{\"data\":\"{data}\"}}"))
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let f = ws.text().await;
        assert_eq!(f["event"], "message");
        assert_eq!(f["data"], data.as_str());
    }
    relay.end(&ch, "{\"data\":\"done\"}").await;
    let f = ws.text().await;
    assert_eq!(
        (f["id"].as_u64(), f["event"].as_str()),
        (Some(4), Some("end"))
    );
    // The relay closes with 1000 and waits for the client's close.
    let (op, payload) = ws.frame().await.unwrap();
    assert_eq!((op, &payload[..]), (OP_CLOSE, &1000u16.to_be_bytes()[..]));
    ws.send(&masked(OP_CLOSE, &1000u16.to_be_bytes())).await;
    assert!(ws.frame().await.is_none());
}

#[tokio::test]
async fn pings_are_answered_and_other_frames_ignored() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    // A protocol ping in the same write as the handshake is answered too.
    let mut ws = Raw::open(&relay, &ch, "", &masked(OP_PING, b"early")).await;
    assert_eq!(ws.text().await["event"], "ready");
    assert_eq!(ws.frame().await, Some((OP_PONG, b"early".to_vec())));
    // Ignored: binary, pong, a text frame that is not a ping.
    ws.send(&masked(OP_BINARY, &[1, 2, 3])).await;
    ws.send(&masked(OP_PONG, b"")).await;
    ws.send(&masked(OP_TEXT, b"{\"event\":\"hello\"}")).await;
    // The application ping, fragmented around a protocol ping.
    let mut bytes = client(OP_TEXT, false, b"{\"event\":", true);
    bytes.extend(masked(OP_PING, b"p"));
    bytes.extend(client(0x0, true, b"\"ping\"}", true));
    ws.send(&bytes).await;
    assert_eq!(ws.frame().await, Some((OP_PONG, b"p".to_vec())));
    let pong = ws.text().await;
    assert_eq!(pong, serde_json::json!({"event": "pong", "data": null}));
    // The stream still delivers.
    relay.publish(&ch, "{\"data\":1}").await;
    assert_eq!(ws.text().await["id"], 1);
}

#[tokio::test]
async fn client_closes_are_echoed_by_the_rules() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    // (what the client sends, what the relay answers)
    let cases: [(Vec<u8>, Vec<u8>); 4] = [
        (b"".to_vec(), b"".to_vec()),
        (
            [&4001u16.to_be_bytes()[..], b"bye"].concat(),
            [&4001u16.to_be_bytes()[..], b"bye"].concat(),
        ),
        // 1005 and 1006 must never be sent: answered with 1002.
        (
            1005u16.to_be_bytes().to_vec(),
            1002u16.to_be_bytes().to_vec(),
        ),
        (
            999u16.to_be_bytes().to_vec(),
            1002u16.to_be_bytes().to_vec(),
        ),
    ];
    for (sent, answer) in cases {
        let mut ws = Raw::open(&relay, &ch, "", b"").await;
        assert_eq!(ws.text().await["event"], "ready");
        ws.send(&masked(OP_CLOSE, &sent)).await;
        assert_eq!(ws.frame().await, Some((OP_CLOSE, answer)), "{sent:?}");
        assert!(ws.frame().await.is_none());
    }
    assert_eq!(
        relay
            .metric("sse_relay_connections{transport=\"ws\"}")
            .await,
        0
    );
}

#[tokio::test]
async fn frames_that_break_the_rules_close_with_their_code() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let oversized = masked(OP_TEXT, &vec![b' '; 16 * 1024 + 1]);
    let mut two_parts = client(OP_TEXT, false, &vec![b' '; 10 * 1024], true);
    two_parts.extend(client(0x0, true, &vec![b' '; 7 * 1024], true));
    let cases: [(&str, Vec<u8>, u16); 7] = [
        ("unmasked", client(OP_TEXT, true, b"{}", false), 1002),
        ("reserved opcode", masked(0x3, b""), 1002),
        ("fragmented ping", client(OP_PING, false, b"", true), 1002),
        ("lone continuation", masked(0x0, b"x"), 1002),
        ("over 16 KiB", oversized, 1009),
        ("over 16 KiB in fragments", two_parts, 1009),
        ("not UTF-8", masked(OP_TEXT, &[0xC3, 0x28]), 1007),
    ];
    for (what, bytes, code) in cases {
        let mut ws = Raw::open(&relay, &ch, "", b"").await;
        assert_eq!(ws.text().await["event"], "ready", "{what}");
        ws.send(&bytes).await;
        let (op, payload) = ws.frame().await.expect(what);
        assert_eq!(
            (op, &payload[..]),
            (OP_CLOSE, &code.to_be_bytes()[..]),
            "{what}"
        );
        assert!(ws.frame().await.is_none(), "{what}");
    }
    assert_eq!(
        relay
            .metric("sse_relay_connections{transport=\"ws\"}")
            .await,
        0
    );
}

#[tokio::test]
async fn a_refused_stream_gets_its_error_frame_then_4000_plus_status() {
    let relay = start(config()).await;
    let mut ch = relay.create().await;
    ch.sub = "not-a-token".into();
    let mut ws = Raw::open(&relay, &ch, "", b"").await;
    let f = ws.text().await;
    assert_eq!(f["event"], "error");
    assert_eq!(f["data"]["code"], "UNAUTHORIZED");
    ws.expect_close(4401).await;
}
