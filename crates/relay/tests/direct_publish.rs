//! Publish and end requests the relay answers without hyper or the router
//! (`src/direct/publish.rs`), read as raw bytes: every answer equal, byte for
//! byte but the `date`, to the router's answer to the same request (a query
//! string sends a request to the router: the relay leaves it to hyper),
//! keep-alive and pipelined requests, bodies split across reads, the size
//! limit, the body read timeout, CORS (preflights stay with the router),
//! chunked bodies (hyper's), metrics.

mod common;

use std::time::Duration;

use common::raw::{raw_answer, RawConn};
use common::*;
use serde_json::Value;
use sse_channel_protocol::Scope;
use sse_relay::Config;

/// `POST {path}` with these header lines and a `Content-Length` body.
fn post(path: &str, fields: &[(&str, &str)], body: &str) -> String {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: relay\r\n");
    for (k, v) in fields {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    format!("{head}Content-Length: {}\r\n\r\n{body}", body.len())
}

async fn metrics(relay: &TestRelay) -> String {
    relay.get("/metrics").await.body
}

/// The value of a metrics line, 0 when absent.
fn metric(text: &str, line: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

fn body_json(answer: &str) -> Value {
    serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap()
}

/// A request to run against a fresh channel: the route, header fields and
/// body, given the channel.
type Case = (
    &'static str,
    fn(&Channel) -> (String, Vec<(String, String)>, String),
);

fn auth(token: &str) -> (String, String) {
    ("Authorization".into(), format!("Bearer {token}"))
}

fn cases() -> Vec<Case> {
    vec![
        ("message", |c| {
            (
                c.id.clone() + "/messages",
                vec![auth(&c.publ)],
                r#"{"data":{"a":1}}"#.into(),
            )
        }),
        ("batch", |c| {
            (
                c.id.clone() + "/messages",
                vec![auth(&c.publ)],
                r#"{"messages":[1,"two",null]}"#.into(),
            )
        }),
        ("end", |c| {
            (
                c.id.clone() + "/end",
                vec![auth(&c.publ)],
                r#"{"data":"bye"}"#.into(),
            )
        }),
        ("end, empty body", |c| {
            (c.id.clone() + "/end", vec![auth(&c.publ)], String::new())
        }),
        ("lowercase scheme, origin", |c| {
            let v = vec![
                ("authorization".into(), format!("bearer {}", c.publ)),
                ("Origin".into(), "https://app.example".into()),
            ];
            (c.id.clone() + "/messages", v, r#"{"data":1}"#.into())
        }),
        ("origin not allowed", |c| {
            let v = vec![
                auth(&c.publ),
                ("Origin".into(), "https://other.example".into()),
            ];
            (c.id.clone() + "/messages", v, r#"{"data":1}"#.into())
        }),
        ("idempotency key", |c| {
            let v = vec![auth(&c.publ), ("Idempotency-Key".into(), "k-1".into())];
            (c.id.clone() + "/messages", v, r#"{"data":1}"#.into())
        }),
        ("bad idempotency key", |c| {
            let v = vec![auth(&c.publ), ("Idempotency-Key".into(), "a b".into())];
            (c.id.clone() + "/messages", v, r#"{"data":1}"#.into())
        }),
        ("no token", |c| {
            (c.id.clone() + "/messages", vec![], r#"{"data":1}"#.into())
        }),
        ("other scheme", |c| {
            (
                c.id.clone() + "/messages",
                vec![("Authorization".into(), format!("Basic {}", c.publ))],
                "{}".into(),
            )
        }),
        ("forged token", |c| {
            (
                c.id.clone() + "/messages",
                vec![auth(&(c.publ.clone() + "x"))],
                r#"{"data":1}"#.into(),
            )
        }),
        ("subscribe token", |c| {
            (
                c.id.clone() + "/messages",
                vec![auth(&c.sub)],
                r#"{"data":1}"#.into(),
            )
        }),
        ("expired token", |c| {
            let t = mint(&c.id, Scope::Publish, now_secs() - 1);
            (c.id.clone() + "/end", vec![auth(&t)], String::new())
        }),
        ("another channel's token", |c| {
            (
                UNKNOWN_ID.to_owned() + "/messages",
                vec![auth(&c.publ)],
                r#"{"data":1}"#.into(),
            )
        }),
        ("unknown channel", |_| {
            let t = mint(UNKNOWN_ID, Scope::Publish, now_secs() + 60);
            (
                UNKNOWN_ID.to_owned() + "/messages",
                vec![auth(&t)],
                r#"{"data":1}"#.into(),
            )
        }),
        ("bad channel id", |c| {
            (
                "ABC/messages".into(),
                vec![auth(&c.publ)],
                r#"{"data":1}"#.into(),
            )
        }),
        ("not JSON", |c| {
            (
                c.id.clone() + "/messages",
                vec![auth(&c.publ)],
                "{nope".into(),
            )
        }),
        ("an array", |c| {
            (
                c.id.clone() + "/messages",
                vec![auth(&c.publ)],
                "[1]".into(),
            )
        }),
        ("both fields", |c| {
            (
                c.id.clone() + "/messages",
                vec![auth(&c.publ)],
                r#"{"data":1,"messages":[2]}"#.into(),
            )
        }),
        ("empty batch", |c| {
            (
                c.id.clone() + "/messages",
                vec![auth(&c.publ)],
                r#"{"messages":[]}"#.into(),
            )
        }),
        ("batch too long", |c| {
            (
                c.id.clone() + "/messages",
                vec![auth(&c.publ)],
                r#"{"messages":[1,2,3,4,5]}"#.into(),
            )
        }),
        ("message too large", |c| {
            (
                c.id.clone() + "/messages",
                vec![auth(&c.publ)],
                format!(r#"{{"data":"{}"}}"#, "x".repeat(60)),
            )
        }),
        ("end body not an object", |c| {
            (c.id.clone() + "/end", vec![auth(&c.publ)], "3".into())
        }),
    ]
}

fn small() -> Config {
    Config {
        allow_origins: vec!["https://app.example".into()],
        max_message_bytes: 48,
        max_body_bytes: 200,
        max_batch_messages: 4,
        create_burst: 1000,
        create_rate_per_sec: 1000,
        channels_per_address: 1000,
        ..config()
    }
}

#[tokio::test]
async fn every_answer_equals_the_routers_byte_for_byte() {
    let relay = start(small()).await;
    for (name, case) in cases() {
        let mut answers = Vec::new();
        for query in ["", "?via=router"] {
            let ch = relay.create().await;
            let (route, fields, body) = case(&ch);
            let fields: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let raw = post(&format!("/v1/channels/{route}{query}"), &fields, &body);
            answers.push(raw_answer(&relay, &raw).await);
        }
        assert_eq!(answers[0], answers[1], "{name}");
        assert!(
            answers[0].starts_with("HTTP/1.1 "),
            "{name}: {}",
            answers[0]
        );
    }
    // Over the body limit, by its Content-Length: refused before it is read.
    let ch = relay.create().await;
    let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(300));
    let mut answers = Vec::new();
    for query in ["", "?via=router"] {
        let raw = post(
            &format!("/v1/channels/{}/messages{query}", ch.id),
            &[("Authorization", &format!("Bearer {}", ch.publ))],
            &big,
        );
        answers.push(raw_answer(&relay, &raw).await);
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].starts_with("HTTP/1.1 413 "), "{}", answers[0]);
    assert!(answers[0].contains("MESSAGE_TOO_LARGE"));
}

#[tokio::test]
async fn a_publish_answer_is_what_hyper_writes() {
    let relay = start(small()).await;
    let ch = relay.create().await;
    let fields = [
        ("Authorization", format!("Bearer {}", ch.publ)),
        ("Origin", "https://app.example".into()),
        ("Idempotency-Key", "once".into()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let raw = post(
        &format!("/v1/channels/{}/messages", ch.id),
        &fields,
        r#"{"data":7}"#,
    );
    let first = raw_answer(&relay, &raw).await;
    assert_eq!(
        first,
        "HTTP/1.1 200 OK\r\n\
         content-type: application/json\r\n\
         vary: origin, access-control-request-method, access-control-request-headers\r\n\
         access-control-allow-origin: https://app.example\r\n\
         access-control-expose-headers: idempotent-replayed\r\n\
         content-length: 40\r\n\
         date: -\r\n\
         \r\n\
         {\"firstId\":1,\"lastId\":1,\"subscribers\":0}"
    );
    let again = raw_answer(&relay, &raw).await;
    assert!(
        again.contains("\r\nidempotent-replayed: true\r\n"),
        "{again}"
    );
    assert_eq!(body_json(&again)["lastId"], 1);
}

#[tokio::test]
async fn pipelined_and_keep_alive_requests_are_answered_in_order_on_one_connection() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let mut sub = relay.sse(&ch.id, &ch.q(), &[]).await;
    let auth = format!("Bearer {}", ch.publ);
    let path = format!("/v1/channels/{}/messages", ch.id);
    let mut s = RawConn::connect(&relay).await;
    // Three publishes and a health check in one write.
    let mut burst = String::new();
    for d in 1..=3 {
        burst.push_str(&post(
            &path,
            &[("Authorization", &auth)],
            &format!(r#"{{"data":{d}}}"#),
        ));
    }
    burst.push_str("GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n");
    s.send(burst).await;
    for d in 1..=3 {
        let a = s.answer().await;
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert_eq!(body_json(&a)["lastId"], d);
    }
    let health = s.answer().await;
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    // The same connection later: a refusal keeps it, then a publish and an end.
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.send(post(&path, &[], r#"{"data":0}"#).as_bytes()).await;
    let refused = s.answer().await;
    assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
    s.send(post(&path, &[("Authorization", &auth)], r#"{"data":4}"#).as_bytes())
        .await;
    assert_eq!(body_json(&s.answer().await)["lastId"], 4);
    let end = format!("/v1/channels/{}/end", ch.id);
    s.send(post(&end, &[("Authorization", &auth)], "").as_bytes())
        .await;
    assert_eq!(body_json(&s.answer().await)["lastId"], 5);
    let mut got = Vec::new();
    while let Some(e) = sub.next_data().await {
        if e.event == "ready" {
            continue;
        }
        got.push((e.event.clone(), e.data.clone()));
        if e.event == "end" {
            break;
        }
    }
    let want: Vec<(String, String)> = ["1", "2", "3", "4"]
        .iter()
        .map(|d| ("message".to_owned(), (*d).to_owned()))
        .chain([("end".to_owned(), "null".to_owned())])
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_head_and_body_split_across_reads_are_put_together() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let raw = post(
        &format!("/v1/channels/{}/messages", ch.id),
        &[("Authorization", &format!("Bearer {}", ch.publ))],
        r#"{"data":"split"}"#,
    );
    let cut = raw.find("\r\n\r\n").unwrap() + 4;
    let mut s = RawConn::connect(&relay).await;
    for part in [
        &raw[..20],
        &raw[20..cut],
        &raw[cut..cut + 5],
        &raw[cut + 5..],
    ] {
        s.send(part).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let a = s.answer().await;
    assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
    let mut sub = relay
        .sse(&ch.id, &format!("{}&lastEventId=0", ch.q()), &[])
        .await;
    let mut e = sub.next_data().await.unwrap();
    if e.event == "ready" {
        e = sub.next_data().await.unwrap();
    }
    assert_eq!(e.data, r#""split""#);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_unread_and_the_connection_closed() {
    let relay = start(small()).await;
    let ch = relay.create().await;
    let head = format!(
        "POST /v1/channels/{}/messages HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Length: 201\r\n\r\n",
        ch.id, ch.publ
    );
    let mut s = RawConn::connect(&relay).await;
    s.send(head).await;
    let a = s.answer().await;
    assert!(a.starts_with("HTTP/1.1 413 Payload Too Large\r\n"), "{a}");
    assert!(a.contains("\"request body over 200 bytes\""), "{a}");
    assert!(s.closes().await);
    let m = metrics(&relay).await;
    assert_eq!(
        metric(&m, "sse_relay_errors_total{code=\"MESSAGE_TOO_LARGE\"}"),
        1
    );
    assert_eq!(metric(&m, "sse_relay_messages_total"), 0);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused_and_the_connection_closed() {
    let relay = start(Config {
        body_read_timeout_ms: 300,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    let raw = post(
        &format!("/v1/channels/{}/messages", ch.id),
        &[("Authorization", &format!("Bearer {}", ch.publ))],
        r#"{"data":1}"#,
    );
    let mut s = RawConn::connect(&relay).await;
    s.send(&raw.as_bytes()[..raw.len() - 3]).await;
    let a = s.answer().await;
    assert!(a.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{a}");
    assert!(a.contains("request body not received in time"), "{a}");
    // The rest of the body is never read as a request of its own.
    s.send_lossy(b"1}}").await;
    assert!(s.closes().await);
    let m = metrics(&relay).await;
    assert_eq!(
        metric(&m, "sse_relay_errors_total{code=\"BAD_REQUEST\"}"),
        1
    );
}

#[tokio::test]
async fn a_refusal_before_the_body_keeps_the_connection_only_when_the_body_is_there() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let path = format!("/v1/channels/{}/messages", ch.id);
    // The whole body came with the head: skipped, the next request answered.
    let mut s = RawConn::connect(&relay).await;
    let mut both = post(&path, &[("Authorization", "Bearer nope")], r#"{"data":1}"#);
    both.push_str("GET /healthz HTTP/1.1\r\n\r\n");
    s.send(both).await;
    assert!(s.answer().await.starts_with("HTTP/1.1 401 "));
    assert!(s.answer().await.starts_with("HTTP/1.1 200 OK\r\n"));
    // Part of it still to come: answered, then closed.
    let raw = post(&path, &[("Authorization", "Bearer nope")], r#"{"data":1}"#);
    let mut s = RawConn::connect(&relay).await;
    s.send(&raw.as_bytes()[..raw.len() - 4]).await;
    assert!(s.answer().await.starts_with("HTTP/1.1 401 "));
    s.send_lossy(b":1}GET /healthz HTTP/1.1\r\n\r\n").await;
    assert!(s.closes().await);
}

#[tokio::test]
async fn preflights_and_chunked_bodies_go_to_the_router_on_the_same_connection() {
    let relay = start(small()).await;
    let ch = relay.create().await;
    let path = format!("/v1/channels/{}/messages", ch.id);
    let auth = format!("Bearer {}", ch.publ);
    let mut s = RawConn::connect(&relay).await;
    let preflight = format!(
        "OPTIONS {path} HTTP/1.1\r\nHost: relay\r\nOrigin: https://app.example\r\n\
         Access-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: authorization, content-type, idempotency-key\r\n\r\n"
    );
    s.send(preflight).await;
    let a = s.answer().await.to_ascii_lowercase();
    assert!(a.starts_with("http/1.1 200 ok\r\n"), "{a}");
    for field in [
        "access-control-allow-origin: https://app.example",
        "access-control-allow-methods: get,post",
        "access-control-allow-headers: authorization,content-type,idempotency-key,last-event-id",
        "access-control-max-age: 600",
    ] {
        assert!(a.contains(field), "{field} missing in {a}");
    }
    let chunked = format!(
        "POST {path} HTTP/1.1\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\n{{\"dat\r\n5\r\na\":\"c\r\n2\r\n\"}}\r\n0\r\n\r\n"
    );
    s.send(chunked).await;
    let a = s.answer().await;
    assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
    assert_eq!(body_json(&a)["lastId"], 1);
    let raw = post(
        &path,
        &[("Authorization", &auth), ("Origin", "https://app.example")],
        r#"{"data":"d"}"#,
    );
    s.send(raw).await;
    let a = s.answer().await;
    assert!(
        a.contains("\r\naccess-control-allow-origin: https://app.example\r\n"),
        "{a}"
    );
    assert_eq!(body_json(&a)["lastId"], 2);
    let m = metrics(&relay).await;
    assert_eq!(metric(&m, "sse_relay_messages_total"), 2);
}

#[tokio::test]
async fn refusals_here_are_counted_like_the_routers() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    for query in ["", "?via=router"] {
        let raw = post(
            &format!("/v1/channels/{}/messages{query}", ch.id),
            &[],
            "{}",
        );
        assert!(raw_answer(&relay, &raw).await.starts_with("HTTP/1.1 401 "));
        let raw = post(
            &format!("/v1/channels/{}/end{query}", ch.id),
            &[("Authorization", &format!("Bearer {}", ch.sub))],
            "",
        );
        assert!(raw_answer(&relay, &raw).await.starts_with("HTTP/1.1 403 "));
    }
    let m = metrics(&relay).await;
    assert_eq!(
        metric(&m, "sse_relay_errors_total{code=\"UNAUTHORIZED\"}"),
        2
    );
    assert_eq!(metric(&m, "sse_relay_errors_total{code=\"FORBIDDEN\"}"), 2);
}
