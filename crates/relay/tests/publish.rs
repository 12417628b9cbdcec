//! Publish, end, idempotency, validation and the plain HTTP routes.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::json;
use sse_channel_protocol::Scope;

#[tokio::test]
async fn malformed_bodies_are_bad_requests() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let auth = format!("Bearer {}", ch.publ);
    let path = format!("/v1/channels/{}/messages", ch.id);
    for body in [
        "",
        "{",
        "not json",
        r#"{"data":1,"messages":[2]}"#,
        r#"{"messages":[]}"#,
        r#"{"messages":1}"#,
        r#"{"other":1}"#,
        r#"{"data":1,"extra":2}"#,
        "[1]",
    ] {
        let r = relay.post(&path, &[("authorization", &auth)], body).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "BAD_REQUEST"),
            "{body}"
        );
    }
    // Invalid UTF-8.
    let r = relay
        .request(
            "POST",
            &path,
            &[("authorization", &auth)],
            Bytes::from_static(b"{\"data\":\"\xff\xfe\"}"),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "BAD_REQUEST"));
    assert!(r.body.contains("UTF-8"), "{}", r.body);
    // End and create validate too.
    let r = relay.end(&ch, "{\"data\":").await;
    assert_eq!(r.code(), "BAD_REQUEST");
    let r = relay
        .request(
            "POST",
            &format!("/v1/channels/{}/end", ch.id),
            &[("authorization", &auth)],
            Bytes::from_static(b"\xc3\x28"),
        )
        .await;
    assert_eq!(r.code(), "BAD_REQUEST");
    for body in [
        "{",
        r#"{"ttl":5}"#,
        r#"{"ttlSecs":0}"#,
        r#"{"ttlSecs":999999999}"#,
    ] {
        let r = relay.post("/v1/channels", &[], body).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "BAD_REQUEST"),
            "{body}"
        );
    }
    // Error bodies are JSON with a content type.
    assert_eq!(r.headers["content-type"], "application/json");
    // Nothing was stored by any of the refused requests.
    assert_eq!(
        relay.publish(&ch, r#"{"data":null}"#).await.json(),
        json!({"firstId":1,"lastId":1,"subscribers":0})
    );
}

#[tokio::test]
async fn every_publish_auth_refusal() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let other = relay.create().await;
    let mut altered = ch.publ.clone();
    let flip = if altered.ends_with('A') { "B" } else { "A" };
    altered.replace_range(altered.len() - 1.., flip);
    let forged = sse_relay::token::TokenKey::new(b"other").sign(&sse_channel_protocol::Claims {
        sub: ch.id.clone(),
        scope: Scope::Publish,
        exp: now_secs() + 60,
    });
    let expired = mint(&ch.id, Scope::Publish, now_secs() - 1);
    let cases: Vec<(Option<String>, u16, &str)> = vec![
        (None, 401, "UNAUTHORIZED"),
        (Some(ch.publ.clone()), 401, "UNAUTHORIZED"), // no "Bearer " prefix
        (Some("Bearer ".into()), 401, "UNAUTHORIZED"),
        (Some("Bearer x.y.z".into()), 401, "UNAUTHORIZED"),
        (Some(format!("Bearer {forged}")), 401, "UNAUTHORIZED"),
        (Some(format!("Bearer {altered}")), 401, "UNAUTHORIZED"),
        // Authentic, this channel's, only its exp passed: the relay's tokens
        // expire with their channel.
        (Some(format!("Bearer {expired}")), 410, "CHANNEL_EXPIRED"),
        (Some(format!("Bearer {}", other.publ)), 401, "UNAUTHORIZED"),
        (Some(format!("Bearer {}", ch.sub)), 403, "FORBIDDEN"),
    ];
    for path in [
        format!("/v1/channels/{}/messages", ch.id),
        format!("/v1/channels/{}/end", ch.id),
    ] {
        for (auth, status, code) in &cases {
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("authorization", a.as_str())).collect();
            let r = relay.post(&path, &headers, r#"{"data":1}"#).await;
            assert_eq!((r.status, r.code().as_str()), (*status, *code), "{auth:?}");
            assert!(
                !r.body.contains(&ch.publ) && !r.body.contains(&ch.sub),
                "no token echoed"
            );
        }
    }
    // Nothing was stored, the channel is not ended.
    assert_eq!(
        relay.publish(&ch, r#"{"data":1}"#).await.json()["firstId"],
        1
    );
}

#[tokio::test]
async fn unknown_channel_and_bad_id_on_publish() {
    let relay = start(config()).await;
    let tok = format!(
        "Bearer {}",
        mint(UNKNOWN_ID, Scope::Publish, now_secs() + 60)
    );
    for tail in ["messages", "end"] {
        let r = relay
            .post(
                &format!("/v1/channels/{UNKNOWN_ID}/{tail}"),
                &[("authorization", &tok)],
                r#"{"data":1}"#,
            )
            .await;
        assert_eq!((r.status, r.code().as_str()), (404, "CHANNEL_NOT_FOUND"));
        let r = relay
            .post(
                &format!("/v1/channels/ABC/{tail}"),
                &[("authorization", &tok)],
                r#"{"data":1}"#,
            )
            .await;
        assert_eq!((r.status, r.code().as_str()), (400, "BAD_REQUEST"));
    }
}

#[tokio::test]
async fn idempotent_retry_never_duplicates() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let mut sub = relay.live(T::Ws, &ch, "").await;
    let auth = format!("Bearer {}", ch.publ);
    let path = format!("/v1/channels/{}/messages", ch.id);
    let send = |key: &'static str, body: &'static str| {
        let (relay, auth, path) = (&relay, auth.clone(), path.clone());
        async move {
            relay
                .post(
                    &path,
                    &[("authorization", &auth), ("idempotency-key", key)],
                    body,
                )
                .await
        }
    };
    let first = send("k-1", r#"{"messages":["a","b"]}"#).await;
    assert_eq!(
        first.json(),
        json!({"firstId":1,"lastId":2,"subscribers":1})
    );
    assert!(first.headers.get("idempotent-replayed").is_none());
    let retry = send("k-1", r#"{"messages":["a","b"]}"#).await;
    assert_eq!(
        (retry.status, retry.json()),
        (200, json!({"firstId":1,"lastId":2,"subscribers":1}))
    );
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let next = send("k-2", r#"{"data":"c"}"#).await;
    assert_eq!(next.json(), json!({"firstId":3,"lastId":3,"subscribers":1}));
    for bad in ["", "has space", &"x".repeat(129)] {
        let r = relay
            .post(
                &path,
                &[("authorization", &auth), ("idempotency-key", bad)],
                r#"{"data":1}"#,
            )
            .await;
        assert_eq!(r.code(), "BAD_REQUEST", "{bad:?}");
    }
    // End is idempotent too; a second end without the key is CHANNEL_ENDED.
    let end_path = format!("/v1/channels/{}/end", ch.id);
    let e1 = relay
        .post(
            &end_path,
            &[("authorization", &auth), ("idempotency-key", "end")],
            "",
        )
        .await;
    assert_eq!(e1.json(), json!({"firstId":4,"lastId":4,"subscribers":1}));
    let e2 = relay
        .post(
            &end_path,
            &[("authorization", &auth), ("idempotency-key", "end")],
            "",
        )
        .await;
    assert_eq!(
        (e2.status, e2.json()),
        (200, json!({"firstId":4,"lastId":4,"subscribers":1}))
    );
    assert_eq!(e2.headers["idempotent-replayed"], "true");
    // A retried publish from before the end still answers its first answer.
    assert_eq!(
        send("k-2", r#"{"data":"c"}"#).await.json(),
        json!({"firstId":3,"lastId":3,"subscribers":1})
    );
    let e3 = relay.end(&ch, "").await;
    assert_eq!((e3.status, e3.code().as_str()), (409, "CHANNEL_ENDED"));
    let p = relay.publish(&ch, r#"{"data":1}"#).await;
    assert_eq!((p.status, p.code().as_str()), (409, "CHANNEL_ENDED"));
    // The subscriber saw every message exactly once, then end with data null.
    sub.expect_message(1, json!("a")).await;
    sub.expect_message(2, json!("b")).await;
    sub.expect_message(3, json!("c")).await;
    let e = sub.next().await.unwrap();
    assert_eq!(
        (e.id, e.event.as_str(), e.data),
        (Some(4), "end", json!(null))
    );
    assert_eq!(sub.closed().await, Some(1000));
}

#[tokio::test]
async fn health_metrics_routes_and_cors() {
    let relay = start(sse_relay::Config {
        allow_origins: vec!["https://app.example.com".into()],
        ..config()
    })
    .await;
    let r = relay.get("/healthz").await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"status":"ok","broker":"memory"}))
    );
    let ch = relay.create().await;
    relay.publish(&ch, r#"{"data":"12345"}"#).await;
    relay.publish(&ch, "{").await;
    let _sub = relay.live(T::Sse, &ch, "").await;
    let m = relay.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    for line in [
        "sse_relay_channels 1",
        "sse_relay_channels_created_total 1",
        "sse_relay_connections{transport=\"sse\"} 1",
        "sse_relay_messages_total 1",
        "sse_relay_message_bytes_total 7",
        "sse_relay_errors_total{code=\"BAD_REQUEST\"} 1",
    ] {
        assert!(
            m.body.lines().any(|l| l == line),
            "missing {line:?} in\n{}",
            m.body
        );
    }
    assert!(!m.body.contains(&ch.publ));
    let r = relay.get("/nope").await;
    assert_eq!(r.status, 404);
    let r = relay.get("/v1/channels").await;
    assert_eq!((r.status, r.code().as_str()), (405, "METHOD_NOT_ALLOWED"));
    // CORS preflight for a publish from the allowed origin.
    let r = relay
        .request(
            "OPTIONS",
            &format!("/v1/channels/{}/messages", ch.id),
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type, idempotency-key",
                ),
            ],
            Bytes::new(),
        )
        .await;
    assert!(r.status < 300, "{}", r.status);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed = r.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "idempotency-key",
        "last-event-id",
    ] {
        assert!(allowed.contains(h), "{allowed}");
    }
    let r = relay
        .request(
            "POST",
            "/v1/channels",
            &[("origin", "https://evil.example.com")],
            Bytes::new(),
        )
        .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let r = relay
        .request(
            "POST",
            "/v1/channels",
            &[("origin", "https://app.example.com")],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    // `*` allows any origin.
    let any = start(sse_relay::Config {
        allow_origins: vec!["*".into()],
        ..config()
    })
    .await;
    let r = any
        .request(
            "GET",
            "/healthz",
            &[("origin", "http://127.0.0.1:1234")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.headers["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn idempotency_keys_are_scoped_per_route() {
    let relay = start(config()).await;
    let post = |ch: &Channel, route: &str, key: &str, body: &str| {
        let auth = format!("Bearer {}", ch.publ);
        let path = format!("/v1/channels/{}/{route}", ch.id);
        let (key, body) = (key.to_owned(), body.to_owned());
        let relay = &relay;
        async move {
            relay
                .post(
                    &path,
                    &[("authorization", &auth), ("idempotency-key", &key)],
                    &body,
                )
                .await
        }
    };

    // Publish with a key, then end with the same key: the end is a new
    // request, stored and delivered; the channel is ended.
    let ch = relay.create().await;
    let mut sub = relay.live(T::Sse, &ch, "").await;
    let p = post(&ch, "messages", "same", r#"{"data":"a"}"#).await;
    assert_eq!(
        (p.status, p.json()),
        (200, json!({"firstId":1,"lastId":1,"subscribers":1}))
    );
    let e = post(&ch, "end", "same", r#"{"data":"done"}"#).await;
    assert_eq!(
        (e.status, e.json()),
        (200, json!({"firstId":2,"lastId":2,"subscribers":1}))
    );
    assert!(e.headers.get("idempotent-replayed").is_none());
    sub.expect_message(1, json!("a")).await;
    let ev = sub.next().await.unwrap();
    assert_eq!(
        (ev.id, ev.event.as_str(), ev.data),
        (Some(2), "end", json!("done"))
    );
    // Each route still replays its own answer (ids; the live count moves
    // as the stream closes after `end`).
    let p2 = post(&ch, "messages", "same", r#"{"data":"a"}"#).await;
    assert_eq!(
        (
            p2.status,
            p2.json()["firstId"].clone(),
            p2.json()["lastId"].clone()
        ),
        (200, json!(1), json!(1))
    );
    assert_eq!(p2.headers["idempotent-replayed"], "true");
    let e2 = post(&ch, "end", "same", r#"{"data":"done"}"#).await;
    assert_eq!(
        (
            e2.status,
            e2.json()["firstId"].clone(),
            e2.json()["lastId"].clone()
        ),
        (200, json!(2), json!(2))
    );
    assert_eq!(e2.headers["idempotent-replayed"], "true");

    // End with a key, then publish with the same key: the publish is a new
    // request, refused because the channel has ended (not a replayed 200 that
    // would claim a message was stored).
    let ch = relay.create().await;
    let e = post(&ch, "end", "k", "").await;
    assert_eq!(
        (e.status, e.json()),
        (200, json!({"firstId":1,"lastId":1,"subscribers":0}))
    );
    let p = post(&ch, "messages", "k", r#"{"data":"late"}"#).await;
    assert_eq!((p.status, p.code().as_str()), (409, "CHANNEL_ENDED"));
    assert!(p.headers.get("idempotent-replayed").is_none());
}
