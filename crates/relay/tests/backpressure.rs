//! Backpressure: publish answers wait for readers behind the high-water mark,
//! for a bounded time, at the relay's default settings.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sse_channel_protocol::limits::BACKPRESSURE_MAX_WAIT_MS;
use sse_relay::Config;

/// Payload of each message: ~4 KiB, so that a stuck reader's socket buffers
/// fill in a few MiB.
const PAYLOAD: usize = 4000;
/// Messages per publish (~800 KB, under the 1 MiB body limit).
const BATCH: u64 = 200;
/// Batches published (~16 MB in all: far past what the stuck reader's socket
/// buffers and the replay buffer hold together).
const BATCHES: u64 = 20;

fn batch(first: u64) -> String {
    let pad = "x".repeat(PAYLOAD);
    let messages: Vec<Value> = (first..first + BATCH)
        .map(|i| json!({ "i": i, "pad": pad }))
        .collect();
    json!({ "messages": messages }).to_string()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in metrics"))
}

/// Reads every event up to `end`: message ids with their `i`, and the
/// `MESSAGES_LOST` ranges in between, in order.
async fn drain(mut sub: Sub) -> Vec<Result<u64, (u64, u64)>> {
    let mut got = Vec::new();
    loop {
        let e = sub.next().await.expect("the stream goes on until end");
        match e.event.as_str() {
            "message" => {
                let id = e.id.unwrap();
                assert_eq!(e.data["i"].as_u64(), Some(id), "payload matches its id");
                got.push(Ok(id));
            }
            "error" => {
                assert_eq!(e.data["code"], "MESSAGES_LOST", "{e:?}");
                got.push(Err((
                    e.data["from"].as_u64().unwrap(),
                    e.data["to"].as_u64().unwrap(),
                )));
            }
            "end" => return got,
            "ready" if got.is_empty() => {}
            other => panic!("unexpected event {other}: {e:?}"),
        }
    }
}

/// Defaults, but heartbeats every second so that the readers' per-event
/// timeouts see traffic while the writer is held.
fn defaults() -> Config {
    Config {
        heartbeat_ms: 1000,
        ..config()
    }
}

#[tokio::test]
async fn a_stuck_reader_holds_the_writer_at_most_the_longest_wait_and_a_healthy_reader_loses_nothing(
) {
    stuck_and_healthy_readers(start(defaults()).await).await;
}

/// The same with the Redis broker: positions are kept beside the broker, so
/// the rule holds whatever stores the events.
#[tokio::test]
async fn the_same_over_the_redis_broker() {
    let redis = redis_server::RedisServer::start();
    let broker = sse_relay::redis_broker(&redis.url(), &defaults())
        .await
        .unwrap();
    stuck_and_healthy_readers(start_with_broker(defaults(), broker).await).await;
}

async fn stuck_and_healthy_readers(relay: TestRelay) {
    let ch = relay.create().await;
    let total = BATCH * BATCHES;

    // The stuck reader: subscribed, then not read at all, over a connection
    // with a small receive buffer, so the relay soon cannot write to it.
    let stuck = relay.sse_with(&ch.id, &ch.q(), &[], Some(16 * 1024)).await;
    assert_eq!(stuck.status, 200);
    // The healthy reader reads everything as it comes.
    let healthy = relay.live(T::Ws, &ch, "").await;
    let healthy = tokio::spawn(drain(healthy));

    let mut slowest = Duration::ZERO;
    let mut held_long = 0;
    for b in 0..BATCHES {
        let first = b * BATCH + 1;
        let t0 = Instant::now();
        let r = relay.publish(&ch, &batch(first)).await;
        let took = t0.elapsed();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["lastId"], first + BATCH - 1);
        slowest = slowest.max(took);
        if took >= Duration::from_millis(BACKPRESSURE_MAX_WAIT_MS) {
            held_long += 1;
        }
    }
    relay.end(&ch, r#"{"data":"bye"}"#).await;

    // The writer was held back by the stuck reader for the longest wait, once:
    // then the reader was released and the writer went on.
    let m = relay.get("/metrics").await.body;
    assert_eq!(metric(&m, "sse_relay_readers_released_total"), 1, "{m}");
    assert!(metric(&m, "sse_relay_publish_hold_ms_total") >= BACKPRESSURE_MAX_WAIT_MS);
    assert!(
        slowest >= Duration::from_millis(BACKPRESSURE_MAX_WAIT_MS),
        "one publish waited the longest wait ({slowest:?})"
    );
    assert_eq!(held_long, 1, "only one publish waited the longest wait");

    // The healthy reader lost nothing.
    let got = tokio::time::timeout(Duration::from_secs(60), healthy)
        .await
        .expect("the healthy reader gets the end")
        .unwrap();
    let want: Vec<_> = (1..=total).map(Ok).collect();
    assert!(got == want, "healthy reader: every message once, in order");

    // The stuck reader reads again: what its connection held, then exactly
    // the ids it missed as MESSAGES_LOST, then the rest.
    let got = tokio::time::timeout(Duration::from_secs(60), drain(Sub::Sse(stuck)))
        .await
        .expect("the stuck reader gets the end");
    let lost: Vec<_> = got.iter().filter_map(|g| g.err()).collect();
    assert_eq!(lost.len(), 1, "one MESSAGES_LOST frame");
    let (from, to) = lost[0];
    assert!(from > 1 && to >= from && to < total, "{from}..={to}");
    let mut want: Vec<_> = (1..from).map(Ok).collect();
    want.push(Err((from, to)));
    want.extend((to + 1..=total).map(Ok));
    assert!(
        got == want,
        "stuck reader: ids 1..{from}, MESSAGES_LOST {from}..={to}, then ids {}..={total}",
        to + 1
    );
}

#[tokio::test]
async fn a_reader_within_the_high_water_mark_never_holds_the_writer() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let sub = relay.live(T::Sse, &ch, "").await;
    let reader = tokio::spawn(drain(sub));
    for b in 0..5 {
        let r = relay.publish(&ch, &batch(b * BATCH + 1)).await;
        assert_eq!(r.status, 200);
    }
    relay.end(&ch, "").await;
    let got = reader.await.unwrap();
    assert_eq!(got, (1..=5 * BATCH).map(Ok).collect::<Vec<_>>());
    let m = relay.get("/metrics").await.body;
    assert_eq!(metric(&m, "sse_relay_readers_released_total"), 0);
}

#[tokio::test]
async fn backpressure_off_never_holds() {
    let relay = start(Config {
        backpressure_max_wait_ms: 0,
        replay_buffer_events: 10,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    // A subscriber that never reads: without backpressure the writer is not held.
    let _stuck = relay.sse_with(&ch.id, &ch.q(), &[], Some(16 * 1024)).await;
    for b in 0..5 {
        let r = relay.publish(&ch, &batch(b * BATCH + 1)).await;
        assert_eq!(r.status, 200);
    }
    let m = relay.get("/metrics").await.body;
    assert_eq!(metric(&m, "sse_relay_publish_holds_total"), 0);
}

/// A replay buffer of 20,000 events (`--replay-buffer-events 20000`, ~1 KiB
/// messages, so its 4 MiB of payload bound it first), and an address budget
/// just above what one such channel can hold. Once the channel's buffer is
/// full, a second channel of the same address spends the rest of the budget:
/// the first keeps taking publishes (each pushes out as much as it adds), and
/// its readers on both transports get every message once, in order.
#[tokio::test]
async fn a_big_replay_buffer_keeps_taking_publishes_when_its_address_budget_is_spent() {
    let cfg = big_buffer();
    big_buffer_at_a_full_budget(start(cfg).await).await;
}

/// The same with the Redis broker.
#[tokio::test]
async fn the_big_replay_buffer_over_the_redis_broker() {
    let redis = redis_server::RedisServer::start();
    let cfg = big_buffer();
    let broker = sse_relay::redis_broker(&redis.url(), &cfg).await.unwrap();
    big_buffer_at_a_full_budget(start_with_broker(cfg, broker).await).await;
}

/// `--replay-buffer-events 20000`, and a budget per address 1 MiB above what
/// one channel can hold.
fn big_buffer() -> Config {
    let mut cfg = Config {
        replay_buffer_events: 20_000,
        ..defaults()
    };
    cfg.max_buffered_bytes_per_address = cfg.channel_cost_max() + (1 << 20);
    cfg
}

async fn big_buffer_at_a_full_budget(relay: TestRelay) {
    const PER: u64 = 500;
    const BATCHES: u64 = 40;
    let batch = |first: u64| {
        let pad = "x".repeat(1000);
        let messages: Vec<Value> = (first..first + PER)
            .map(|i| json!({ "i": i, "pad": pad }))
            .collect();
        json!({ "messages": messages }).to_string()
    };
    let ch = relay.create().await;
    let sse = tokio::spawn(drain(relay.live(T::Sse, &ch, "").await));
    let ws = tokio::spawn(drain(relay.live(T::Ws, &ch, "").await));
    for b in 0..BATCHES {
        if b == BATCHES / 2 {
            // The channel's buffer is full (20 MB written, 4 MiB kept):
            // another channel of this address takes the rest of its budget.
            let other = relay.create().await;
            let refused = loop {
                let r = relay.publish(&other, &batch(1)).await;
                if r.status != 200 {
                    break r;
                }
            };
            assert_eq!(
                (refused.status, refused.code().as_str()),
                (429, "RATE_LIMITED")
            );
        }
        let r = relay.publish(&ch, &batch(b * PER + 1)).await;
        assert_eq!(r.status, 200, "batch {b}: {}", r.body);
    }
    assert_eq!(relay.end(&ch, "").await.status, 200);
    let want: Vec<_> = (1..=BATCHES * PER).map(Ok).collect();
    for (t, reader) in [("sse", sse), ("websocket", ws)] {
        let got = tokio::time::timeout(Duration::from_secs(120), reader)
            .await
            .expect("the reader gets the end")
            .unwrap();
        assert!(got == want, "{t}: every message once, in order");
    }
}

/// With `--replay-buffer-events 20000` the mark is 10,000 events: a reader
/// can be more than 4,096 single-message publishes behind (the marks kept
/// per channel) and still within it. Such a reader (here one whose
/// connection went away: it counts at its last position) holds no publish,
/// and when it comes back it gets every message once, in order.
#[tokio::test]
async fn a_reader_more_small_publishes_behind_than_the_marks_kept_holds_nobody() {
    // Heartbeats every minute: the reader that goes away counts for 150 s.
    let relay = start(Config {
        replay_buffer_events: 20_000,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    // 3 MB that the reader takes: the channel's byte count passes the 2 MiB mark.
    let reader = {
        let mut sub = relay.live(T::Sse, &ch, "").await;
        tokio::spawn(async move {
            loop {
                let e = sub.next().await.expect("the stream goes on");
                if e.id == Some(50) {
                    return;
                }
            }
        })
    };
    let pad = "x".repeat(60_000);
    for i in 1..=50 {
        let body = json!({ "data": { "i": i, "pad": pad } }).to_string();
        assert_eq!(relay.publish(&ch, &body).await.status, 200);
    }
    tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the reader took the 50 large messages")
        .unwrap();
    let before = metric(
        &relay.get("/metrics").await.body,
        "sse_relay_publish_holds_total",
    );
    // The reader is gone, counted at 50 for the grace; 6,000 small messages.
    const SMALL: u64 = 6_000;
    for i in 51..=50 + SMALL {
        let r = relay
            .publish(&ch, &json!({ "data": { "i": i } }).to_string())
            .await;
        assert_eq!(r.status, 200);
    }
    let m = relay.get("/metrics").await.body;
    assert_eq!(
        metric(&m, "sse_relay_publish_holds_total"),
        before,
        "no publish waited"
    );
    assert_eq!(metric(&m, "sse_relay_readers_released_total"), 0);
    relay.end(&ch, "").await;
    let back = relay.live(T::Sse, &ch, "lastEventId=50").await;
    let got = tokio::time::timeout(Duration::from_secs(60), drain(back))
        .await
        .expect("the reader gets the end");
    assert!(
        got == (51..=50 + SMALL).map(Ok).collect::<Vec<_>>(),
        "every message once, in order"
    );
}
