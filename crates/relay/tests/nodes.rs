//! Several relay processes sharing one Redis (`--broker redis://…`): a channel
//! created on one node is served by every node; a node killed with `kill -9`
//! mid-stream and a Redis stopped mid-stream lose nothing that was answered
//! with 200, and deliver nothing twice.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::redis_server::RedisServer;
use common::*;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_sse-relay");

/// A relay process on `127.0.0.1:0`, killed when dropped.
struct Node {
    child: Child,
    relay: TestRelay,
}

impl Node {
    fn spawn(redis: &RedisServer) -> Self {
        Self::spawn_with(redis, &[])
    }

    fn spawn_with(redis: &RedisServer, args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--broker", &redis.url()])
            .args(["--heartbeat-ms", "500", "--cleanup-interval-ms", "100"])
            .args(args)
            .args(["--log", "warn"])
            .env("SSE_RELAY_SECRET", std::str::from_utf8(SECRET).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("address line, got {line:?}"))
            .parse()
            .unwrap();
        Self {
            child,
            relay: TestRelay::remote(addr),
        }
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_9();
    }
}

impl std::ops::Deref for Node {
    type Target = TestRelay;
    fn deref(&self) -> &TestRelay {
        &self.relay
    }
}

fn data(i: u64) -> String {
    format!(r#"{{"data":{{"n":{i}}}}}"#)
}

/// Publishes with an idempotency key, retrying `503 BROKER_UNAVAILABLE` (as the
/// writer does) until answered 200.
async fn publish_until_stored(node: &TestRelay, ch: &Channel, i: u64) {
    let auth = format!("Bearer {}", ch.publ);
    let key = format!("k{i}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = node
            .post(
                &format!("/v1/channels/{}/messages", ch.id),
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                    ("idempotency-key", &key),
                ],
                &data(i),
            )
            .await;
        match r.status {
            200 => {
                assert_eq!(r.json()["lastId"], json!(i), "message {i} got id {i}");
                return;
            }
            503 => assert_eq!(r.code(), "BROKER_UNAVAILABLE", "{}", r.body),
            s => panic!("publish {i}: {s} {}", r.body),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "publish {i} never stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a reader saw across its reconnections.
#[derive(Default, Debug)]
struct Seen {
    /// Message payloads `n`, in arrival order.
    messages: Vec<u64>,
    ended: bool,
    /// In-band error codes, in order.
    errors: Vec<String>,
    connections: usize,
}

/// Reads the channel over SSE from the first reachable node of `nodes` (in
/// turn), reconnecting with `Last-Event-ID` after an error frame or a broken
/// stream, as the SDK does, until `end`.
async fn read_until_end(nodes: Vec<SocketAddr>, ch_id: String, sub: String) -> Seen {
    let mut seen = Seen::default();
    let mut last = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut turn = 0;
    while !seen.ended {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no end in time: {seen:?}"
        );
        let addr = nodes[turn % nodes.len()];
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            turn += 1;
            continue;
        }
        let relay = TestRelay::remote(addr);
        let mut s = relay
            .sse(&ch_id, &format!("token={sub}&lastEventId={last}"), &[])
            .await;
        seen.connections += 1;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no end in time: {seen:?}"
            );
            let e = match s.try_next().await {
                Ok(Some(e)) => e,
                // Closed or broken: reconnect (to the next node if this one is gone).
                Ok(None) | Err(_) => {
                    turn += 1;
                    break;
                }
            };
            match e.event.as_str() {
                "message" | "end" => {
                    let id: u64 = e.id.as_deref().unwrap().parse().unwrap();
                    assert_eq!(id, last + 1, "ids in order, none twice: {seen:?}");
                    last = id;
                    if e.event == "end" {
                        seen.ended = true;
                        break;
                    }
                    let v: Value = serde_json::from_str(&e.data).unwrap();
                    seen.messages.push(v["n"].as_u64().unwrap());
                }
                "error" => {
                    let v: Value = serde_json::from_str(&e.data).unwrap();
                    seen.errors.push(v["code"].as_str().unwrap().to_owned());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    turn += 1;
                    break;
                }
                _ => {}
            }
        }
    }
    seen
}

#[tokio::test]
async fn a_channel_created_on_one_node_is_served_by_every_node() {
    let redis = RedisServer::start();
    let a = Node::spawn(&redis);
    let b = Node::spawn(&redis);
    let ch = a.create().await;
    let mut on_a = a.live(T::Sse, &ch, "").await;
    let mut on_b = b.live(T::Ws, &ch, "").await;
    for i in 1..=3 {
        let r = b.publish(&ch, &data(i)).await;
        assert_eq!((r.status, r.json()["firstId"].clone()), (200, json!(i)));
    }
    let r = a.publish(&ch, r#"{"messages":[{"n":4},{"n":5}]}"#).await;
    assert_eq!(
        (r.json()["firstId"].clone(), r.json()["lastId"].clone()),
        (json!(4), json!(5))
    );
    for i in 1..=5 {
        on_a.expect_message(i, json!({ "n": i })).await;
        on_b.expect_message(i, json!({ "n": i })).await;
    }
    assert_eq!(b.end(&ch, r#"{"data":"bye"}"#).await.status, 200);
    for sub in [&mut on_a, &mut on_b] {
        let e = sub.next().await.unwrap();
        assert_eq!((e.id, e.event.as_str()), (Some(6), "end"));
        sub.closed().await;
    }
    // A late reader on the other node still gets the whole story.
    let mut late = a.live(T::Sse, &ch, "lastEventId=3").await;
    late.expect_message(4, json!({"n": 4})).await;
    late.expect_message(5, json!({"n": 5})).await;
    assert_eq!(late.next().await.unwrap().event, "end");
    // An idempotent retry through the other node stores nothing.
    let auth = format!("Bearer {}", ch.publ);
    let h = [("authorization", auth.as_str()), ("idempotency-key", "x")];
    let ch2 = b.create().await;
    let auth2 = format!("Bearer {}", ch2.publ);
    let h2 = [("authorization", auth2.as_str()), ("idempotency-key", "x")];
    let path = format!("/v1/channels/{}/messages", ch2.id);
    let first = a.post(&path, &h2, &data(1)).await;
    let again = b.post(&path, &h2, &data(1)).await;
    assert_eq!((first.status, again.status), (200, 200));
    assert_eq!(first.json(), again.json());
    assert_eq!(
        again.headers.get("idempotent-replayed").unwrap(),
        "true",
        "answered from the first node's answer"
    );
    // The first channel's key space is not the second's.
    let r = a
        .post(&format!("/v1/channels/{}/messages", ch.id), &h, &data(1))
        .await;
    assert_eq!(r.code(), "CHANNEL_ENDED");
    let health = a.get("/healthz").await;
    assert_eq!(health.json(), json!({"status": "ok", "broker": "redis"}));
}

#[tokio::test]
async fn kill_9_of_a_node_mid_stream_resumes_on_another_exactly_once() {
    let redis = RedisServer::start();
    let mut a = Node::spawn(&redis);
    let b = Node::spawn(&redis);
    let ch = a.create().await;
    let reader = tokio::spawn(read_until_end(
        vec![a.addr, b.addr],
        ch.id.clone(),
        ch.sub.clone(),
    ));
    const N: u64 = 400;
    for i in 1..=N {
        publish_until_stored(&b, &ch, i).await;
        if i == N / 2 {
            // Let the reader get some of it from A, then kill A outright.
            tokio::time::sleep(Duration::from_millis(200)).await;
            a.kill_9();
        }
    }
    assert_eq!(b.end(&ch, "").await.status, 200);
    let seen = reader.await.unwrap();
    assert_eq!(seen.messages, (1..=N).collect::<Vec<_>>(), "{seen:?}");
    assert!(seen.connections >= 2, "resumed on B: {seen:?}");
}

#[tokio::test]
async fn redis_stopped_mid_stream_loses_nothing_acknowledged() {
    let dir = std::env::temp_dir().join(format!("sse-relay-aof-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = RedisServer::start_persistent(&dir);
    let a = Node::spawn(&redis);
    let b = Node::spawn(&redis);
    let ch = a.create().await;
    let reader = tokio::spawn(read_until_end(
        vec![a.addr, b.addr],
        ch.id.clone(),
        ch.sub.clone(),
    ));
    const N: u64 = 200;
    let mut health_during_outage = None;
    for i in 1..=N {
        if i == N / 2 {
            // kill -9: with appendfsync always, every answered write is on disk.
            redis.kill();
            let r = b
                .post(&format!("/v1/channels/{}/messages", ch.id), &[], "")
                .await;
            assert_eq!(r.status, 401, "token checks need no Redis");
            let first = a
                .post(
                    &format!("/v1/channels/{}/messages", ch.id),
                    &[
                        ("authorization", &format!("Bearer {}", ch.publ)),
                        ("idempotency-key", "probe"),
                    ],
                    &data(0),
                )
                .await;
            assert_eq!(
                (first.status, first.code().as_str()),
                (503, "BROKER_UNAVAILABLE")
            );
            health_during_outage = Some(wait_health(&a, 503).await);
            // The reader keeps being refused in band meanwhile.
            tokio::time::sleep(Duration::from_millis(500)).await;
            redis.restart();
        }
        publish_until_stored(&b, &ch, i).await;
    }
    assert_eq!(b.end(&ch, "").await.status, 200);
    let seen = reader.await.unwrap();
    assert_eq!(seen.messages, (1..=N).collect::<Vec<_>>(), "{seen:?}");
    assert!(
        seen.errors.iter().any(|c| c == "BROKER_UNAVAILABLE"),
        "the stream was told: {seen:?}"
    );
    assert_eq!(
        health_during_outage.unwrap()["error"]["code"],
        "BROKER_UNAVAILABLE"
    );
    wait_health(&a, 200).await;
    let metrics = a.get("/metrics").await.body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sse_relay_broker_errors_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(
        metrics.contains("sse_relay_broker_round_trip_seconds "),
        "{metrics}"
    );
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Polls `/healthz` until it answers `status`; returns its body.
async fn wait_health(node: &TestRelay, status: u16) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = node.get("/healthz").await;
        if r.status == status {
            return r.json();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "healthz never {status}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sigterm_of_a_node_mid_stream_sends_its_readers_to_another() {
    let redis = RedisServer::start();
    let mut a = Node::spawn(&redis);
    let b = Node::spawn(&redis);
    let ch = a.create().await;
    let reader = tokio::spawn(read_until_end(
        vec![a.addr, b.addr],
        ch.id.clone(),
        ch.sub.clone(),
    ));
    const N: u64 = 2000;
    let batch = |from: u64| {
        let list: Vec<String> = (from..from + 10)
            .map(|i| format!(r#"{{"n":{i}}}"#))
            .collect();
        format!(r#"{{"messages":[{}]}}"#, list.join(","))
    };
    for from in (1..=N).step_by(10) {
        let r = b.publish(&ch, &batch(from)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if from == 1001 {
            let ok = Command::new("kill")
                .args(["-TERM", &a.child.id().to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
    }
    assert_eq!(b.end(&ch, "").await.status, 200);
    let seen = reader.await.unwrap();
    assert_eq!(seen.messages, (1..=N).collect::<Vec<_>>(), "{seen:?}");
    assert!(seen.errors.iter().any(|c| c == "SHUTTING_DOWN"), "{seen:?}");
    assert!(a.child.wait().unwrap().success(), "A drained and exited 0");
}

#[tokio::test]
async fn per_address_creation_limits_hold_across_nodes() {
    let redis = RedisServer::start();
    let live = ["--channels-per-address", "3", "--ended-retention-secs", "1"];
    let a = Node::spawn_with(&redis, &live);
    let b = Node::spawn_with(&redis, &live);
    // Refused creations (a bad body) leave no slot taken.
    for _ in 0..5 {
        let r = a.post("/v1/channels", &[], r#"{"ttlSecs":0}"#).await;
        assert_eq!(r.code(), "BAD_REQUEST", "{}", r.body);
    }
    let first = a.create().await;
    b.create().await;
    a.create().await;
    for node in [&a, &b] {
        let r = node.post("/v1/channels", &[], "").await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (429, "RATE_LIMITED"),
            "{}",
            r.body
        );
        assert!(r.body.contains("maximum of live channels"), "{}", r.body);
    }
    // An ended channel stops counting after the retention, whichever node ended it.
    assert_eq!(b.end(&first, "").await.status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = b.post("/v1/channels", &[], "").await;
        if r.status == 201 {
            break;
        }
        assert_eq!(r.code(), "RATE_LIMITED");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The creation rate: one bucket for both nodes.
    let redis = RedisServer::start();
    let rate = ["--create-burst", "3", "--create-rate-per-sec", "1"];
    let a = Node::spawn_with(&redis, &rate);
    let b = Node::spawn_with(&redis, &rate);
    let mut created = 0;
    for node in [&a, &b, &a, &b] {
        if node.post("/v1/channels", &[], "").await.status == 201 {
            created += 1;
        }
    }
    // 3 of the burst, maybe one more refilled if a second passed meanwhile.
    assert!(
        (3..=4).contains(&created),
        "{created} created across two nodes"
    );
    let r = b.post("/v1/channels", &[], "").await;
    if r.status != 201 {
        assert!(r.body.contains("creation rate"), "{}", r.body);
    }
}

/// Waits until `node` counts `n` subscribers of `ch` on every node (the
/// count reaches Redis in the background).
async fn until_subscribers(node: &Node, ch: &Channel, n: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = node.wait(ch, "?timeoutMs=0", &ch.publ).await;
        if r.json()["subscribers"] == json!(n) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn subscribers_cancel_and_abandon_across_nodes() {
    let redis = RedisServer::start();
    let a = Node::spawn(&redis);
    let b = Node::spawn(&redis);
    // Publish answers count the readers of every node.
    let ch = a.create().await;
    let on_a = a.live(T::Sse, &ch, "").await;
    let _on_b = b.live(T::Ws, &ch, "").await;
    until_subscribers(&a, &ch, 2).await;
    let r = a.publish(&ch, &data(1)).await;
    assert_eq!(r.json()["subscribers"], json!(2));
    drop(on_a);
    until_subscribers(&b, &ch, 1).await;
    assert_eq!(
        b.publish(&ch, &data(2)).await.json()["subscribers"],
        json!(1)
    );
    // A cancel on one node reaches a publisher waiting on the other.
    let waiting = a.wait(&ch, "?timeoutMs=30000", &ch.publ);
    let cancelling = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        b.cancel(&ch, r#"{"reason":"gave up"}"#).await
    };
    let (w, c) = tokio::time::timeout(WAIT, async { tokio::join!(waiting, cancelling) })
        .await
        .expect("the wait answers once the channel is cancelled");
    assert_eq!((c.status, c.json()), (200, json!({"id": 3})));
    assert_eq!(w.json(), json!({"state":"cancelled","reason":"gave up"}));
    let p = a.publish(&ch, &data(3)).await;
    assert_eq!(
        (p.status, p.json()),
        (
            409,
            json!({"error":{"code":"CHANNEL_CANCELLED","message":"gave up"}})
        )
    );
    // Abandon counts the readers of every node: a channel created on `a`
    // whose only reader is on `b` stays open, and is cancelled once it goes.
    let ab = a.create_with(r#"{"abandonAfterMs":1000}"#).await;
    let reader = b.live(T::Sse, &ab, "").await;
    until_subscribers(&a, &ab, 1).await;
    let r = a.wait(&ab, "?timeoutMs=2500", &ab.publ).await;
    assert_eq!(r.json(), json!({"state":"open","subscribers":1}));
    drop(reader);
    let r = tokio::time::timeout(Duration::from_secs(10), a.wait(&ab, "", &ab.publ))
        .await
        .expect("abandoned within 10 s");
    assert_eq!(r.json(), json!({"state":"cancelled","reason":"ABANDONED"}));
}

#[tokio::test]
async fn byte_budgets_hold_across_nodes() {
    let redis = RedisServer::start();
    let cost = sse_relay::broker::event_cost(1002); // a 1,000-character JSON string
    let total = (cost * 6).to_string();
    let per = (cost * 4).to_string();
    let args = [
        "--max-buffered-bytes",
        &total,
        "--max-buffered-bytes-per-address",
        &per,
        "--trusted-proxy-hops",
        "1",
        // A channel must be able to fill its buffer within the budgets.
        "--replay-buffer-events",
        "3",
        "--max-message-bytes",
        "1100",
        "--idempotency-keys",
        "4",
    ];
    let a = Node::spawn_with(&redis, &args);
    let b = Node::spawn_with(&redis, &args);
    let create = |node: &'static str, ip: &'static str| {
        let n = if node == "a" { &a } else { &b };
        async move {
            let v = n
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
    // One client's two channels (one /64, created on either node), another's one.
    let (c1, c2) = (
        create("a", "2001:db8::1").await,
        create("b", "2001:db8::2").await,
    );
    let other = create("a", "203.0.113.9").await;
    let msg = |i: u64| json!({ "data": format!("{i:04}{}", "x".repeat(996)) }).to_string();
    for (node, ch, i) in [(&a, &c1, 1), (&b, &c2, 2), (&b, &c1, 3), (&a, &c2, 4)] {
        let r = node.publish(ch, &msg(i)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // The client's budget (4 events) is spent, through whichever node.
    for (node, ch) in [(&a, &c1), (&b, &c2)] {
        let r = node.publish(ch, &msg(9)).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (429, "RATE_LIMITED"),
            "{}",
            r.body
        );
    }
    // The relay-wide budget (6 events): the other client gets 2.
    for i in 5..=6 {
        assert_eq!(b.publish(&other, &msg(i)).await.status, 200);
    }
    for node in [&a, &b] {
        let r = node.publish(&other, &msg(9)).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (503, "BUFFER_FULL"),
            "{}",
            r.body
        );
    }
    // Every node's /metrics shows the bytes held in Redis.
    for node in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while node.metric("sse_relay_buffered_bytes").await != cost * 6 {
            assert!(tokio::time::Instant::now() < deadline, "the gauge");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(node.metric("sse_relay_buffered_bytes_max").await, cost * 6);
    }
    // Nothing stored was lost.
    for (ch, want) in [(&c1, [1, 3]), (&c2, [2, 4]), (&other, [5, 6])] {
        let mut sub = b.live(T::Sse, ch, "").await;
        for (id, n) in (1..).zip(want) {
            let e = sub.next().await.unwrap();
            assert_eq!((e.event.as_str(), e.id), ("message", Some(id)));
            assert!(e.data.as_str().unwrap().starts_with(&format!("{n:04}")));
        }
    }
}
