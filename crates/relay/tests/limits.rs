//! Every limit, with its error code, against a real relay.

mod common;

use std::time::Duration;

use common::raw::RawConn;
use common::*;
use serde_json::json;
use sse_relay::Config;

#[tokio::test]
async fn message_body_and_batch_sizes() {
    let relay = start(Config {
        max_message_bytes: 100,
        max_body_bytes: 1000,
        max_batch_messages: 5,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    let ok = json!({"data": "x".repeat(98)}).to_string(); // 100 bytes of JSON text
    assert_eq!(relay.publish(&ch, &ok).await.status, 200);
    let big = json!({"data": "x".repeat(99)}).to_string();
    let r = relay.publish(&ch, &big).await;
    assert_eq!((r.status, r.code().as_str()), (413, "MESSAGE_TOO_LARGE"));
    let r = relay.end(&ch, &big).await;
    assert_eq!((r.status, r.code().as_str()), (413, "MESSAGE_TOO_LARGE"));
    let batch = json!({"messages": [ "x".repeat(98), "x".repeat(99) ]}).to_string();
    assert_eq!(relay.publish(&ch, &batch).await.code(), "MESSAGE_TOO_LARGE");
    let body = json!({"messages": vec!["x".repeat(90); 12]}).to_string();
    assert_eq!(relay.publish(&ch, &body).await.code(), "MESSAGE_TOO_LARGE");
    let many = json!({"messages": [1, 2, 3, 4, 5, 6]}).to_string();
    assert_eq!(relay.publish(&ch, &many).await.code(), "MESSAGE_TOO_LARGE");
    let five = json!({"messages": [1, 2, 3, 4, 5]}).to_string();
    assert_eq!(
        relay.publish(&ch, &five).await.json(),
        json!({"firstId":2,"lastId":6,"subscribers":0})
    );
}

#[tokio::test]
async fn replay_buffer_bytes_bound() {
    let relay = start(Config {
        replay_buffer_bytes: 250,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    for i in 0..5 {
        let body = json!({"data": format!("{i}{}", "x".repeat(98))}).to_string();
        relay.publish(&ch, &body).await;
    }
    // 102-byte payloads: only the last two fit in 250 bytes.
    let mut sub = relay.live(T::Sse, &ch, "").await;
    let e = sub.next().await.unwrap();
    assert_eq!(e.data["code"], "MESSAGES_LOST");
    assert_eq!(
        (e.data["from"].as_u64(), e.data["to"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(sub.next().await.unwrap().id, Some(4));
}

#[tokio::test]
async fn channels_per_address() {
    let relay = start(Config {
        channels_per_address: 3,
        ..config()
    })
    .await;
    for _ in 0..3 {
        relay.create().await;
    }
    let r = relay.post("/v1/channels", &[], "").await;
    assert_eq!((r.status, r.code().as_str()), (429, "RATE_LIMITED"));
}

#[tokio::test]
async fn address_slots_are_freed_when_channels_go() {
    let relay = start(Config {
        channels_per_address: 1,
        ended_retention_secs: 0,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    assert_eq!(relay.post("/v1/channels", &[], "").await.status, 429);
    relay.end(&ch, "").await;
    // Swept within a few cleanup intervals (50 ms in tests).
    let mut created = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if relay.post("/v1/channels", &[], "").await.status == 201 {
            created = true;
            break;
        }
    }
    assert!(created, "the ended channel's slot was freed");
}

#[tokio::test]
async fn creation_rate() {
    let relay = start(Config {
        create_burst: 3,
        create_rate_per_sec: 1,
        ..config()
    })
    .await;
    for _ in 0..3 {
        relay.create().await;
    }
    let r = relay.post("/v1/channels", &[], "").await;
    assert_eq!((r.status, r.code().as_str()), (429, "RATE_LIMITED"));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("rate"));
}

#[tokio::test]
async fn total_channels() {
    let relay = start(Config {
        max_channels: 2,
        ..config()
    })
    .await;
    relay.create().await;
    relay.create().await;
    let r = relay.post("/v1/channels", &[], "").await;
    assert_eq!((r.status, r.code().as_str()), (503, "TOO_MANY_CHANNELS"));
}

#[tokio::test]
async fn connections_per_channel() {
    let relay = start(Config {
        connections_per_channel: 2,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    let a = relay.live(T::Sse, &ch, "").await;
    let _b = relay.live(T::Ws, &ch, "").await;
    for t in BOTH {
        let (code, close) = refused(relay.subscribe(t, &ch.id, &ch.q()).await).await;
        assert_eq!(code, "TOO_MANY_CONNECTIONS");
        if t == T::Ws {
            assert_eq!(close, Some(4429));
        }
    }
    drop(a);
    // The dropped stream's slot frees once the relay notices the closed socket.
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut sub = relay.subscribe(T::Sse, &ch.id, &ch.q()).await;
        if sub.next().await.unwrap().event == "ready" {
            ok = true;
            break;
        }
    }
    assert!(ok, "slot freed after a subscriber left");
}

#[tokio::test]
async fn header_read_timeout_closes_slow_clients() {
    let relay = start(Config {
        header_read_timeout_ms: 200,
        ..config()
    })
    .await;
    let mut s = RawConn::open(&relay, "GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    // Closed by the relay in time (read_to_close asserts it).
    let text = s.read_to_close().await;
    assert!(!text.contains("200 OK"), "{text}");
    // A prompt client on the same relay is served.
    assert_eq!(relay.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn channel_ttl_expiry_closes_streams() {
    let relay = start(config()).await;
    let r = relay.post("/v1/channels", &[], r#"{"ttlSecs":1}"#).await;
    assert_eq!(r.status, 201);
    let v = r.json();
    let ch = Channel {
        id: v["channelId"].as_str().unwrap().into(),
        sub: v["subscribeToken"].as_str().unwrap().into(),
        publ: v["publishToken"].as_str().unwrap().into(),
        expires_at: v["expiresAt"].as_u64().unwrap(),
    };
    let mut sse = relay.live(T::Sse, &ch, "").await;
    let mut ws = relay.live(T::Ws, &ch, "").await;
    relay.publish(&ch, r#"{"data":1}"#).await;
    sse.expect_message(1, json!(1)).await;
    ws.expect_message(1, json!(1)).await;
    for sub in [&mut sse, &mut ws] {
        let e = sub.next().await.unwrap();
        assert_eq!(
            (e.event.as_str(), e.data["code"].as_str()),
            ("error", Some("CHANNEL_EXPIRED"))
        );
    }
    sse.closed().await;
    assert_eq!(ws.closed().await, Some(4410));
    // Its own tokens expire with it and meet CHANNEL_EXPIRED (tests/expiry.rs);
    // a longer-lived token minted with the secret meets the expired channel:
    // 410 on publish, CHANNEL_EXPIRED on subscribe.
    let r = relay.publish(&ch, r#"{"data":2}"#).await;
    assert_eq!((r.status, r.code().as_str()), (410, "CHANNEL_EXPIRED"));
    let long = Channel {
        sub: mint(
            &ch.id,
            sse_channel_protocol::Scope::Subscribe,
            now_secs() + 600,
        ),
        publ: mint(
            &ch.id,
            sse_channel_protocol::Scope::Publish,
            now_secs() + 600,
        ),
        ..ch
    };
    let r = relay.publish(&long, r#"{"data":2}"#).await;
    assert_eq!((r.status, r.code().as_str()), (410, "CHANNEL_EXPIRED"));
    for t in BOTH {
        let (code, close) = refused(relay.subscribe(t, &long.id, &long.q()).await).await;
        assert_eq!(code, "CHANNEL_EXPIRED");
        if t == T::Ws {
            assert_eq!(close, Some(4410));
        }
    }
}

#[tokio::test]
async fn ended_channels_are_kept_for_the_retention_then_removed() {
    let relay = start(Config {
        ended_retention_secs: 1,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    relay.end(&ch, r#"{"data":"done"}"#).await;
    let mut sub = relay.live(T::Sse, &ch, "").await;
    assert_eq!(sub.next().await.unwrap().event, "end");
    // Still there just after the end (a late reconnect gets `end`) ...
    let mut late = relay.live(T::Ws, &ch, "").await;
    assert_eq!(late.next().await.unwrap().event, "end");
    // ... and gone once the retention is over (polled: the sweep runs every 50 ms).
    let mut code = String::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        code = refused_or_ready(relay.subscribe(T::Sse, &ch.id, &ch.q()).await).await;
        if code == "CHANNEL_NOT_FOUND" {
            break;
        }
    }
    assert_eq!(code, "CHANNEL_NOT_FOUND");
}

/// The first frame's event, or the error code when it is an error frame.
async fn refused_or_ready(mut sub: Sub) -> String {
    let e = sub.next().await.expect("a first frame");
    match e.event.as_str() {
        "error" => e.data["code"].as_str().unwrap().to_owned(),
        other => other.to_owned(),
    }
}

#[tokio::test]
async fn body_read_timeout_refuses_slow_bodies() {
    let relay = start(Config {
        body_read_timeout_ms: 200,
        ..config()
    })
    .await;
    let mut s = RawConn::open(
        &relay,
        "POST /v1/channels HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ttl",
    )
    .await;
    let text = s.answer().await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("BAD_REQUEST"), "{text}");
}

/// Creates a channel with these `X-Forwarded-For` lines; the status.
async fn create_via(relay: &TestRelay, xff: &[&str]) -> u16 {
    let headers: Vec<(&str, &str)> = xff.iter().map(|v| ("x-forwarded-for", *v)).collect();
    relay.post("/v1/channels", &headers, "").await.status
}

#[tokio::test]
async fn per_address_limits_behind_proxies_take_the_nth_entry_from_the_right() {
    // One balancer: the client is the entry it appended, the last one.
    let relay = start(Config {
        channels_per_address: 1,
        trusted_proxy_hops: 1,
        ..config()
    })
    .await;
    assert_eq!(create_via(&relay, &["203.0.113.7, 10.0.0.1"]).await, 201);
    // Entries a client writes itself stay to the left: no escape from its bucket.
    assert_eq!(create_via(&relay, &["198.51.100.1, 10.0.0.1"]).await, 429);
    assert_eq!(
        create_via(&relay, &["10.0.0.9, 10.0.0.1", "10.0.0.2"]).await,
        201
    );
    assert_eq!(create_via(&relay, &["10.0.0.1", "10.0.0.2"]).await, 429);
    // Without the header: the TCP peer address, a third client.
    assert_eq!(relay.post("/v1/channels", &[], "").await.status, 201);

    // A CDN and a balancer: the client is the second entry from the right (the
    // balancer appended the CDN's address, the CDN the client's).
    let relay = start(Config {
        channels_per_address: 1,
        trusted_proxy_hops: 2,
        client_ip_header: Some("x-forwarded-for".into()),
        ..config()
    })
    .await;
    assert_eq!(create_via(&relay, &["203.0.113.7, 192.0.2.1"]).await, 201);
    assert_eq!(create_via(&relay, &["203.0.113.8, 192.0.2.1"]).await, 201);
    assert_eq!(
        create_via(&relay, &["1.1.1.1, 203.0.113.7, 192.0.2.1"]).await,
        429
    );

    // Without proxies (the default) the header is ignored: a direct client
    // cannot pick its address.
    let plain = start(Config {
        channels_per_address: 1,
        ..config()
    })
    .await;
    assert_eq!(create_via(&plain, &["10.0.0.3"]).await, 201);
    assert_eq!(create_via(&plain, &["10.0.0.4"]).await, 429);
}

#[tokio::test]
async fn ipv6_clients_of_one_prefix_share_one_bucket() {
    let relay = start(Config {
        channels_per_address: 2,
        trusted_proxy_hops: 1,
        ..config()
    })
    .await;
    // Three addresses of 2001:db8:1:2::/64: one client for the limits.
    assert_eq!(create_via(&relay, &["2001:db8:1:2::1"]).await, 201);
    assert_eq!(
        create_via(&relay, &["2001:db8:1:2:ffff:ffff:ffff:fffe"]).await,
        201
    );
    let r = relay
        .post(
            "/v1/channels",
            &[("x-forwarded-for", "2001:db8:1:2:abcd::7")],
            "",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (429, "RATE_LIMITED"));
    // The next /64 is another client.
    assert_eq!(create_via(&relay, &["2001:db8:1:3::1"]).await, 201);

    // --ipv6-prefix-len 128: every address alone.
    let exact = start(Config {
        channels_per_address: 1,
        trusted_proxy_hops: 1,
        ipv6_prefix_len: 128,
        ..config()
    })
    .await;
    for ip in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"] {
        assert_eq!(create_via(&exact, &[ip]).await, 201, "{ip}");
    }
    assert_eq!(create_via(&exact, &["2001:db8:1:2::3"]).await, 429);
}

#[tokio::test]
async fn expiry_with_test_hooks_on_is_still_channel_expired() {
    let relay = start(Config {
        test_hooks: true,
        ..config()
    })
    .await;
    let r = relay.post("/v1/channels", &[], r#"{"ttlSecs":1}"#).await;
    let v = r.json();
    let ch = Channel {
        id: v["channelId"].as_str().unwrap().into(),
        sub: v["subscribeToken"].as_str().unwrap().into(),
        publ: v["publishToken"].as_str().unwrap().into(),
        expires_at: v["expiresAt"].as_u64().unwrap(),
    };
    let sse = relay.live(T::Sse, &ch, "").await;
    let mut ws = relay.live(T::Ws, &ch, "").await;
    let e = ws.next().await.unwrap();
    assert_eq!(e.data["code"], "CHANNEL_EXPIRED");
    assert_eq!(ws.closed().await, Some(4410));
    let Sub::Sse(mut raw) = sse else {
        unreachable!()
    };
    let e = raw.try_next().await.expect("not aborted").unwrap();
    assert!(e.data.contains("CHANNEL_EXPIRED"), "{e:?}");
}

#[tokio::test]
async fn idle_sockets_over_max_connections_leave_healthz_answering() {
    let relay = start(Config {
        max_connections: 64,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    // 100 sockets that never send a byte: 64 fill the cap, the rest overflow.
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(RawConn::connect(&relay).await);
    }
    // Let the accept loop take them all before the fresh requests below.
    tokio::time::timeout(WAIT, async {
        loop {
            let m = relay.get("/metrics").await.body;
            if m.contains("sse_relay_http_connections 101") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the relay accepted the idle sockets");
    for _ in 0..3 {
        let r = relay.get("/healthz").await;
        assert_eq!((r.status, &r.json()["status"]), (200, &json!("ok")));
    }
    let r = relay.post("/v1/channels", &[], "").await;
    assert_eq!((r.status, r.code().as_str()), (429, "TOO_MANY_CONNECTIONS"));
    let r = relay.publish(&ch, r#"{"data":1}"#).await;
    assert_eq!(r.code(), "TOO_MANY_CONNECTIONS");
    // Sockets closed: the relay serves everything again.
    drop(idle);
    tokio::time::timeout(WAIT, async {
        while relay.post("/v1/channels", &[], "").await.status != 201 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("creation works again once the idle sockets are gone");
    assert_eq!(relay.publish(&ch, r#"{"data":1}"#).await.status, 200);
}

#[tokio::test]
async fn creation_rate_limit_answers_before_the_body_and_the_body_is_small() {
    let relay = start(Config {
        create_burst: 1,
        create_rate_per_sec: 1,
        body_read_timeout_ms: 60_000,
        ..config()
    })
    .await;
    let r = relay
        .post(
            "/v1/channels",
            &[],
            &format!("{{\"ttlSecs\":60{}}}", " ".repeat(1100)),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (413, "MESSAGE_TOO_LARGE"));
    assert!(r.body.contains("over 1024 bytes"), "{}", r.body);
    // The bucket is empty now: a request that announces a body and never
    // sends it is refused at once, not after the body read timeout.
    let mut raw = RawConn::open(
        &relay,
        "POST /v1/channels HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n",
    )
    .await;
    // Answered without the body (within the wait).
    let text = raw.answer().await;
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(text.contains("RATE_LIMITED"), "{text}");
}

/// An EventSource request for `ch`, as raw bytes.
fn sse_request(ch: &Channel) -> String {
    format!(
        "GET /v1/channels/{}/events?{} HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n",
        ch.id,
        ch.q()
    )
}

/// `sse_relay_connections{transport=…}` as /metrics reports it.
async fn open_streams(relay: &TestRelay, transport: &str) -> u64 {
    relay
        .metric(&format!(
            "sse_relay_connections{{transport=\"{transport}\"}}"
        ))
        .await
}

#[tokio::test]
async fn subscribers_that_stop_reading_are_dropped_after_the_write_timeout() {
    let relay = start(Config {
        write_timeout_ms: 1000,
        max_message_bytes: 600 * 1024,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    // Two EventSource readers and one WebSocket reader that never read a byte.
    let mut stuck = Vec::new();
    for _ in 0..2 {
        stuck.push(RawConn::open(&relay, sse_request(&ch)).await);
    }
    let ws = relay.ws(&ch.id, &ch.q()).await;
    // And one reader that keeps up.
    let mut healthy = relay.live(T::Sse, &ch, "").await;
    tokio::time::timeout(WAIT, async {
        while open_streams(&relay, "sse").await < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("all streams open");
    let big = json!({ "data": "x".repeat(512 * 1024) }).to_string();
    let mut sent = 0;
    // 512 KiB messages until the stuck readers are gone (their socket buffers
    // fill after a few MiB, then the write timeout runs).
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while let Some(e) = healthy.next().await {
            if e.event == "message" {
                n += 1;
            }
            if n == 20 {
                break;
            }
        }
        (healthy, n)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert_eq!(relay.publish(&ch, &big).await.status, 200);
        sent += 1;
        if sent >= 20
            && open_streams(&relay, "sse").await == 1
            && open_streams(&relay, "ws").await == 0
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stuck readers still connected after {sent} messages"
        );
        if sent >= 20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (_healthy, n) = reader.await.unwrap();
    assert_eq!(n, 20, "the reader that keeps up got every message");
    // The stuck connections were closed by the relay.
    for mut raw in stuck {
        assert!(
            raw.drains_to_close().await,
            "the relay closed the stuck connection"
        );
    }
    drop(ws);
}

#[tokio::test]
async fn the_relay_wide_byte_budget_refuses_publishes_and_loses_nothing() {
    let cost = sse_relay::broker::event_cost(1002); // a 1,000-character JSON string
    let relay = start(Config {
        max_buffered_bytes: cost * 10,
        // A channel must be able to fill its buffer within the budget.
        replay_buffer_events: 4,
        max_message_bytes: 1100,
        idempotency_keys: 4,
        ..config()
    })
    .await;
    let short = relay
        .post("/v1/channels", &[], r#"{"ttlSecs":1}"#)
        .await
        .json();
    let short = Channel {
        id: short["channelId"].as_str().unwrap().to_owned(),
        sub: short["subscribeToken"].as_str().unwrap().to_owned(),
        publ: short["publishToken"].as_str().unwrap().to_owned(),
        expires_at: 0,
    };
    let (a, b) = (relay.create().await, relay.create().await);
    let msg = |i: usize| json!({ "data": format!("{i:04}{}", "x".repeat(996)) }).to_string();
    for i in 0..4 {
        assert_eq!(relay.publish(&short, &msg(i)).await.status, 200);
    }
    let mut stored = 0;
    let refused = loop {
        let ch = if stored % 2 == 0 { &a } else { &b };
        let r = relay.publish(ch, &msg(stored)).await;
        if r.status != 200 {
            break r;
        }
        stored += 1;
        assert!(stored < 10, "the budget was not enforced");
    };
    assert_eq!(stored, 6, "10 events fit: 4 + 6");
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (503, "BUFFER_FULL")
    );
    assert_eq!(relay.metric("sse_relay_buffered_bytes").await, cost * 10);
    assert_eq!(
        relay.metric("sse_relay_buffered_bytes_max").await,
        cost * 10
    );
    // Nothing already stored was dropped to make room.
    for (ch, n) in [(&a, 3), (&b, 3)] {
        let mut sub = relay.live(T::Sse, ch, "").await;
        for id in 1..=n {
            let e = sub.next().await.unwrap();
            assert_eq!((e.event.as_str(), e.id), ("message", Some(id)));
        }
    }
    // The short channel expires: its bytes are given back, publishing works.
    tokio::time::timeout(Duration::from_secs(10), async {
        while relay.publish(&a, &msg(99)).await.status != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the expired channel's bytes are released");
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_byte_budget() {
    let cost = sse_relay::broker::event_cost(1002);
    let relay = start(Config {
        max_buffered_bytes_per_address: cost * 3,
        trusted_proxy_hops: 1,
        // A channel must be able to fill its buffer within the budget.
        replay_buffer_events: 2,
        max_message_bytes: 1100,
        idempotency_keys: 4,
        ..config()
    })
    .await;
    let create = |ip: &'static str| {
        let relay = &relay;
        async move {
            let v = relay
                .post("/v1/channels", &[("x-forwarded-for", ip)], "")
                .await
                .json();
            Channel {
                id: v["channelId"].as_str().unwrap().to_owned(),
                sub: v["subscribeToken"].as_str().unwrap().to_owned(),
                publ: v["publishToken"].as_str().unwrap().to_owned(),
                expires_at: 0,
            }
        }
    };
    // Two channels of one /64, one of another client.
    let (a1, a2) = (create("2001:db8::1").await, create("2001:db8::2").await);
    let other = create("203.0.113.9").await;
    let msg = json!({ "data": "y".repeat(1000) }).to_string();
    assert_eq!(relay.publish(&a1, &msg).await.status, 200);
    assert_eq!(relay.publish(&a2, &msg).await.status, 200);
    assert_eq!(relay.publish(&a1, &msg).await.status, 200);
    let r = relay.publish(&a2, &msg).await;
    assert_eq!((r.status, r.code().as_str()), (429, "RATE_LIMITED"));
    // Another client is not affected.
    for _ in 0..3 {
        assert_eq!(relay.publish(&other, &msg).await.status, 200);
    }
}

#[tokio::test]
async fn shutdown_reaches_a_subscriber_that_stopped_reading() {
    let mut relay = start(Config {
        write_timeout_ms: 600_000,
        shutdown_grace_ms: 600_000,
        backpressure_max_wait_ms: 0,
        max_message_bytes: 600 * 1024,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    let mut raw = RawConn::open(&relay, sse_request(&ch)).await;
    tokio::time::timeout(WAIT, async {
        while open_streams(&relay, "sse").await < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stream is open");
    // 10 MiB for a reader that reads nothing: far more than the socket buffers.
    let big = json!({ "data": "x".repeat(512 * 1024) }).to_string();
    for _ in 0..20 {
        assert_eq!(relay.publish(&ch, &big).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Neither the write timeout nor the grace period (10 minutes each) ends
    // it: the shutdown does, at once.
    relay.shutdown().await;
    assert!(
        raw.drains_to_close().await,
        "the relay closed the stuck connection"
    );
}
