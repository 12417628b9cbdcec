//! EventSource subscriptions the relay serves without hyper (`src/direct/`):
//! the exact bytes on the wire, read over raw sockets; every other request
//! handed to hyper with its bytes intact; the connection's lifetime (peer
//! close, header timeout, connection cap). The streams' content (resume,
//! errors, shutdown) is covered over this path by `streams.rs`, `limits.rs`
//! and `lifecycle.rs`, whose clients open each stream on a new connection.

mod common;

use std::time::Duration;

use common::raw::RawConn;
use common::*;
use sse_channel_protocol::frame::SseParser;
use sse_channel_protocol::Scope;
use sse_relay::Config;

/// (head in lowercase, body) of one answer.
fn split(answer: &str) -> (String, &str) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete head");
    (head.to_ascii_lowercase(), body)
}

/// The payload of a chunked body that ends with its last chunk, and nothing after.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("a chunk size line");
        let n = usize::from_str_radix(size, 16).expect("hex size");
        if n == 0 {
            assert_eq!(rest, "\r\n", "bytes after the last chunk");
            return out;
        }
        out.push_str(&rest[..n]);
        assert_eq!(&rest[n..n + 2], "\r\n");
        body = &rest[n + 2..];
    }
}

async fn wait_gauge(relay: &TestRelay, line: &str, want: u64) {
    tokio::time::timeout(WAIT, async {
        while relay.metric(line).await != want {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{line} did not reach {want}"));
}

const SSE_GAUGE: &str = "sse_relay_connections{transport=\"sse\"}";

#[tokio::test]
async fn a_subscription_is_chunked_with_connection_close_and_ends_with_the_last_chunk() {
    let relay = start(Config {
        allow_origins: vec!["https://app.example".into()],
        ..config()
    })
    .await;
    let ch = relay.create().await;
    for d in [1, 2] {
        assert_eq!(
            relay
                .publish(&ch, &format!(r#"{{"data":{d}}}"#))
                .await
                .status,
            200
        );
    }
    let first = format!(
        "GET /v1/channels/{}/events?{} HTTP/1.1\r\nHost: x\r\n",
        ch.id,
        ch.q()
    );
    let mut s = RawConn::send_parts(
        &relay,
        &[
            "GET /v1/chan",
            &first["GET /v1/chan".len()..],
            "Origin: https://app.example\r\nAccept: text/event-stream\r\nLast-Event-ID: 1\r\n\r\n",
        ],
    )
    .await;
    let mut answer = s.read_until("event: message").await;
    assert_eq!(relay.end(&ch, r#"{"data":"bye"}"#).await.status, 200);
    answer.push_str(&s.read_to_close().await);
    let (head, body) = split(&answer);
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    for field in [
        "transfer-encoding: chunked",
        "connection: close",
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "access-control-allow-origin: https://app.example",
        "date: ",
    ] {
        assert!(head.contains(field), "{field} missing in {head}");
    }
    assert!(!head.contains("content-length"), "{head}");
    let events = SseParser::default().feed(&dechunk(body));
    let seen: Vec<(&str, Option<&str>, &str)> = events
        .iter()
        .map(|e| (e.event.as_str(), e.id.as_deref(), e.data.as_str()))
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].0, "ready");
    // Resumed after Last-Event-ID 1: event 2, then the end.
    assert_eq!(seen[1], ("message", Some("2"), "2"));
    assert_eq!((seen[2].0, seen[2].1), ("end", Some("3")));
}

#[tokio::test]
async fn refusals_are_coded_json_with_a_length_and_connection_close() {
    let relay = start(Config {
        allow_origins: vec!["https://app.example".into()],
        ..config()
    })
    .await;
    let ch = relay.create().await;
    let unknown = format!(
        "token={}",
        mint(UNKNOWN_ID, Scope::Subscribe, now_secs() + 60)
    );
    for (id, query, status, code) in [
        (
            ch.id.as_str(),
            "token=forged".to_owned(),
            "401",
            "UNAUTHORIZED",
        ),
        (UNKNOWN_ID, unknown, "404", "CHANNEL_NOT_FOUND"),
    ] {
        let mut s = RawConn::send_parts(
        &relay,
            &[&format!(
                "GET /v1/channels/{id}/events?{query} HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n"
            )],
        )
        .await;
        let answer = s.read_to_close().await;
        let (head, body) = split(&answer);
        assert!(head.starts_with(&format!("http/1.1 {status} ")), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        assert!(
            head.contains("access-control-allow-origin: https://app.example"),
            "{head}"
        );
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], code, "{body}");
    }
}

#[tokio::test]
async fn a_peer_closing_an_idle_stream_ends_it_at_once() {
    // Heartbeats every minute: only noticing the close can end the stream.
    let relay = start(config()).await;
    let ch = relay.create().await;
    let mut s = RawConn::send_parts(
        &relay,
        &[&format!(
            "GET /v1/channels/{}/events?{} HTTP/1.1\r\nHost: x\r\n\r\n",
            ch.id,
            ch.q()
        )],
    )
    .await;
    s.read_until("event: ready").await;
    wait_gauge(&relay, SSE_GAUGE, 1).await;
    drop(s);
    wait_gauge(&relay, SSE_GAUGE, 0).await;
}

#[tokio::test]
async fn other_requests_reach_hyper_intact_and_a_reused_connection_still_subscribes_here() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    // Looks like a subscription until its path ends otherwise.
    let mut s = RawConn::send_parts(
        &relay,
        &[
            "GET /v1/channels/",
            &format!("{}/nothing HTTP/1.1\r\nHost: x\r\n\r\n", ch.id),
        ],
    )
    .await;
    let answer = s.read_until("CHANNEL_NOT_FOUND").await;
    let (head, _) = split(&answer);
    assert!(head.starts_with("http/1.1 404 "), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    // The same connection, kept alive: a publish whose body arrives after
    // its head, then a pipelined pair, then a subscription, which the relay
    // serves itself as on a new connection.
    let body = r#"{"data":"kept"}"#;
    let publish = format!(
        "POST /v1/channels/{}/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        ch.id,
        ch.publ,
        body.len()
    );
    s.send(publish).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.send(body).await;
    let answer = s.read_until("}").await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut answer = s.read_until("}HTTP/1.1 200 OK").await;
    while answer.matches("\"status\"").count() < 2 {
        answer.push_str(&s.read_until("}").await);
    }
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    s.send(
        format!(
            "GET /v1/channels/{}/events?{} HTTP/1.1\r\nHost: x\r\n\r\n",
            ch.id,
            ch.q()
        )
        .as_bytes(),
    )
    .await;
    let answer = s.read_until("\"kept\"").await;
    let (head, _) = split(&answer);
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
}

#[tokio::test]
async fn websocket_upgrades_and_connection_close_stay_with_hyper() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    // A request that asks to close: hyper answers and closes.
    let mut s = RawConn::send_parts(
        &relay,
        &["GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
    )
    .await;
    let answer = s.read_to_close().await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    // A WebSocket after a request on the same connection.
    let mut s = RawConn::send_parts(&relay, &["GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"]).await;
    s.read_until("}").await;
    s.send(
        format!(
            "GET /v1/channels/{}/ws?{} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            ch.id,
            ch.q()
        )
        .as_bytes(),
    ).await;
    let answer = s.read_until("ready").await;
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
}

#[tokio::test]
async fn a_head_that_never_completes_is_closed_after_the_header_timeout() {
    let relay = start(Config {
        header_read_timeout_ms: 300,
        ..config()
    })
    .await;
    let mut s = RawConn::send_parts(
        &relay,
        &["GET /v1/channels/abc/events HTTP/1.1\r\nHost: x\r\n"],
    )
    .await;
    assert_eq!(s.read_to_close().await, "");
}

#[tokio::test]
async fn subscriptions_served_here_count_against_max_connections() {
    let relay = start(Config {
        max_connections: 3,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    let head = format!(
        "GET /v1/channels/{}/events?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        ch.id,
        ch.q()
    );
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut s = RawConn::send_parts(&relay, &[&head]).await;
        s.read_until("event: ready").await;
        open.push(s);
    }
    // The /metrics request's own connection is the fourth, over the cap.
    assert_eq!(relay.metric("sse_relay_http_connections").await, 4);
    assert_eq!(relay.get("/healthz").await.status, 200);
    let mut over = RawConn::send_parts(&relay, &[&head]).await;
    let answer = over.read_to_close().await;
    assert!(answer.contains("TOO_MANY_CONNECTIONS"), "{answer}");
    drop(open);
    wait_gauge(&relay, SSE_GAUGE, 0).await;
    assert_eq!(relay.metric("sse_relay_http_connections").await, 1);
    let mut s = RawConn::send_parts(&relay, &[&head]).await;
    s.read_until("event: ready").await;
}
