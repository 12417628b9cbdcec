//! One broker conformance suite, run against both brokers: the in-memory one
//! and the Redis one (a real `redis-server` on a free loopback port per test).
//! Times are real (Redis expires keys on its own clock), with deadlines far
//! above what the scenarios need.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use common::redis_server::RedisServer;
use sse_channel_protocol::{EventId, EventKind};
use sse_relay::broker::{
    event_cost, key_cost, Append, Appended, Broker, BrokerError, ByteBudgets, Head, MemoryBroker,
    MemoryLimits, NewChannel, Phase, ReadBatch, RedisBroker, RedisLimits,
};

/// Limits of the broker under test (mapped onto each broker's own type).
#[derive(Clone, Copy)]
struct Limits {
    max_channels: usize,
    replay_events: usize,
    replay_bytes: usize,
    idempotency_keys: usize,
    ended_retention_ms: u64,
    budgets: ByteBudgets,
}

const LIMITS: Limits = Limits {
    max_channels: 100,
    replay_events: 10,
    replay_bytes: 1 << 20,
    idempotency_keys: 8,
    ended_retention_ms: 300,
    budgets: ByteBudgets::NONE,
};

/// Makes brokers of one kind; all brokers of one backend share their storage
/// (for Redis: one server, as several nodes would).
trait Backend {
    fn broker(&self, limits: Limits) -> impl Future<Output = Arc<dyn Broker>>;
}

struct Memory(std::sync::Mutex<Option<Arc<dyn Broker>>>);

impl Backend for Memory {
    async fn broker(&self, l: Limits) -> Arc<dyn Broker> {
        // One process: "another node" is the same broker.
        self.0
            .lock()
            .unwrap()
            .get_or_insert_with(|| {
                Arc::new(MemoryBroker::new(MemoryLimits {
                    max_channels: l.max_channels,
                    replay_events: l.replay_events,
                    replay_bytes: l.replay_bytes,
                    idempotency_keys: l.idempotency_keys,
                    ended_retention_ms: l.ended_retention_ms,
                    budgets: l.budgets,
                }))
            })
            .clone()
    }
}

impl Backend for RedisServer {
    async fn broker(&self, l: Limits) -> Arc<dyn Broker> {
        Arc::new(
            RedisBroker::connect(
                &self.url(),
                RedisLimits {
                    max_channels: l.max_channels,
                    replay_events: l.replay_events,
                    replay_bytes: l.replay_bytes,
                    idempotency_keys: l.idempotency_keys,
                    ended_retention_ms: l.ended_retention_ms,
                    budgets: l.budgets,
                },
            )
            .await
            .unwrap(),
        )
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn create(b: &dyn Broker, expires_at_ms: u64) -> String {
    create_by(b, expires_at_ms, None).await
}

async fn create_by(b: &dyn Broker, expires_at_ms: u64, creator: Option<&str>) -> String {
    let id = new_id();
    b.create(NewChannel {
        id: id.clone(),
        expires_at_ms,
        creator: creator.map(str::to_owned),
    })
    .await
    .unwrap();
    id
}

async fn append(
    b: &dyn Broker,
    id: &str,
    kind: EventKind,
    data: &[&str],
    key: Option<&str>,
) -> Result<Appended, BrokerError> {
    b.append(
        id,
        Append {
            kind,
            payloads: data.iter().map(|d| (*d).into()).collect(),
            idempotency_key: key.map(str::to_owned),
            now_ms: now(),
            exempt: false,
        },
    )
    .await
}

async fn read(b: &dyn Broker, id: &str, after: EventId, max: usize) -> ReadBatch {
    b.read(id, after, max, now()).await.unwrap()
}

fn ids(r: &ReadBatch) -> Vec<EventId> {
    r.events.iter().map(|e| e.id).collect()
}

fn lost(r: &ReadBatch) -> Option<(EventId, EventId)> {
    r.lost.map(|l| (l.from, l.to))
}

const HOUR: u64 = 3_600_000;

/// Waits (sweeping every 20 ms, up to 10 s) until `done` holds.
async fn eventually<F: Future<Output = bool>>(b: &dyn Broker, mut done: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        b.sweep(now()).await;
        if done().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_head(rx: &mut tokio::sync::watch::Receiver<Head>, f: impl Fn(&Head) -> bool) {
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|h| f(h)))
        .await
        .expect("the watch changes in time")
        .expect("the watch is open");
}

// ---- the scenarios ----

async fn ids_are_consecutive_and_reads_resume(be: &impl Backend) {
    let b = be.broker(LIMITS).await;
    let b = &*b;
    let id = create(b, now() + HOUR).await;
    let a = append(b, &id, EventKind::Message, &["1", "2"], None)
        .await
        .unwrap();
    assert_eq!((a.first_id, a.last_id, a.replayed), (1, 2, false));
    let a = append(b, &id, EventKind::Message, &["3"], None)
        .await
        .unwrap();
    assert_eq!((a.first_id, a.last_id), (3, 3));
    let r = read(b, &id, 0, 10).await;
    assert_eq!(ids(&r), [1, 2, 3]);
    assert_eq!(r.events[2].data.as_ref(), "3");
    assert_eq!(r.events[0].kind, EventKind::Message);
    assert_eq!(
        r.head,
        Head {
            last_id: 3,
            phase: Phase::Open
        }
    );
    assert_eq!(ids(&read(b, &id, 2, 10).await), [3]);
    assert_eq!(ids(&read(b, &id, 0, 2).await), [1, 2]);
    assert!(read(b, &id, 3, 10).await.events.is_empty());
    assert!(read(b, &id, 99, 10).await.events.is_empty());
    assert_eq!(lost(&read(b, &id, 0, 10).await), None);
}

async fn eviction_by_events_and_bytes_reports_the_lost_range(be: &impl Backend) {
    let b = be
        .broker(Limits {
            replay_events: 3,
            replay_bytes: 8,
            ..LIMITS
        })
        .await;
    let b = &*b;
    let id = create(b, now() + HOUR).await;
    append(b, &id, EventKind::Message, &["1", "2", "3", "4", "5"], None)
        .await
        .unwrap();
    let r = read(b, &id, 0, 10).await;
    assert_eq!(ids(&r), [3, 4, 5], "bounded by events");
    assert_eq!(lost(&r), Some((1, 2)));
    assert_eq!(lost(&read(b, &id, 1, 10).await), Some((2, 2)));
    assert_eq!(lost(&read(b, &id, 2, 10).await), None);
    // 3 + 3 bytes fit in 8; the third "333" does not.
    append(b, &id, EventKind::Message, &["333", "444", "555"], None)
        .await
        .unwrap();
    let r = read(b, &id, 0, 10).await;
    assert_eq!(ids(&r), [7, 8], "bounded by bytes");
    assert_eq!(lost(&r), Some((1, 6)));
    // Larger than the whole budget: still kept (the end event must survive).
    append(b, &id, EventKind::End, &["\"0123456789\""], None)
        .await
        .unwrap();
    let r = read(b, &id, 0, 10).await;
    assert_eq!(ids(&r), [9]);
    assert_eq!(r.events[0].kind, EventKind::End);
    assert_eq!(lost(&r), Some((1, 8)));
}

async fn idempotency_keys_are_bounded_and_scoped_by_kind(be: &impl Backend) {
    let b = be
        .broker(Limits {
            idempotency_keys: 2,
            ..LIMITS
        })
        .await;
    let b = &*b;
    let id = create(b, now() + HOUR).await;
    append(b, &id, EventKind::Message, &["1", "2"], Some("a"))
        .await
        .unwrap();
    append(b, &id, EventKind::Message, &["3"], Some("b"))
        .await
        .unwrap();
    let again = append(b, &id, EventKind::Message, &["x"], Some("a"))
        .await
        .unwrap();
    assert_eq!(
        (again.first_id, again.last_id, again.replayed),
        (1, 2, true)
    );
    assert_eq!(
        ids(&read(b, &id, 0, 10).await),
        [1, 2, 3],
        "nothing stored twice"
    );
    append(b, &id, EventKind::Message, &["4"], Some("c"))
        .await
        .unwrap();
    // "a" was the oldest of three keys with room for two: forgotten.
    assert!(
        !append(b, &id, EventKind::Message, &["5"], Some("a"))
            .await
            .unwrap()
            .replayed
    );
    // The same key on end names another request.
    let end = append(b, &id, EventKind::End, &["null"], Some("a"))
        .await
        .unwrap();
    assert_eq!((end.first_id, end.replayed), (6, false));
    let end = append(b, &id, EventKind::End, &["null"], Some("a"))
        .await
        .unwrap();
    assert_eq!((end.first_id, end.replayed), (6, true));
    // A retried publish after the end still answers its first answer.
    let retry = append(b, &id, EventKind::Message, &["5"], Some("a"))
        .await
        .unwrap();
    assert_eq!((retry.first_id, retry.replayed), (5, true));
}

async fn concurrent_appends_from_several_nodes_never_interleave(be: &impl Backend) {
    let nodes = [be.broker(LIMITS).await, be.broker(LIMITS).await];
    let id = create(&*nodes[0], now() + HOUR).await;
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let b = nodes[w % 2].clone();
        let other = nodes[(w + 1) % 2].clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..10 {
                let key = format!("w{w}-{i}");
                let p = [format!("{w}"), format!("{w}")];
                let payloads = p.iter().map(String::as_str).collect::<Vec<_>>();
                let a = append(&*b, &id, EventKind::Message, &payloads, Some(&key))
                    .await
                    .unwrap();
                // A retry through the other node stores nothing.
                let retry = append(&*other, &id, EventKind::Message, &payloads, Some(&key))
                    .await
                    .unwrap();
                assert_eq!(
                    (retry.first_id, retry.last_id, retry.replayed),
                    (a.first_id, a.last_id, true)
                );
                got.push((a.first_id, a.last_id));
            }
            got
        }));
    }
    let mut ranges = Vec::new();
    for t in tasks {
        ranges.extend(t.await.unwrap());
    }
    ranges.sort_unstable();
    let expected: Vec<_> = (0..80).map(|i| (2 * i + 1, 2 * i + 2)).collect();
    assert_eq!(
        ranges, expected,
        "each batch got two consecutive, unused ids"
    );
    let b = be
        .broker(Limits {
            replay_events: 1000,
            ..LIMITS
        })
        .await;
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let r = read(&*b, &id, after, 7).await;
        let Some(last) = r.events.last() else { break };
        after = last.id;
        all.extend(r.events.iter().map(|e| (e.id, e.data.to_string())));
    }
    // Bounded replay (10 events): the newest ten, in pairs of one writer.
    assert_eq!(all.len(), 10);
    for pair in all.chunks(2) {
        assert_eq!(pair[0].1, pair[1].1, "a batch is never split: {all:?}");
    }
}

async fn end_refuses_more_and_wakes_watchers_on_every_node(be: &impl Backend) {
    let a = be.broker(LIMITS).await;
    let b = be.broker(LIMITS).await;
    let id = create(&*a, now() + HOUR).await;
    let mut rx = a.watch(&id).await.unwrap();
    append(&*b, &id, EventKind::Message, &["1"], None)
        .await
        .unwrap();
    wait_head(&mut rx, |h| h.last_id == 1).await;
    append(&*b, &id, EventKind::End, &["{\"done\":true}"], None)
        .await
        .unwrap();
    wait_head(&mut rx, |h| h.phase == Phase::Ended && h.last_id == 2).await;
    assert_eq!(
        append(&*a, &id, EventKind::Message, &["1"], None).await,
        Err(BrokerError::Ended)
    );
    assert_eq!(
        append(&*a, &id, EventKind::End, &["1"], None).await,
        Err(BrokerError::Ended)
    );
    let r = read(&*a, &id, 1, 10).await;
    assert_eq!(r.head.phase, Phase::Ended);
    assert_eq!(r.events[0].kind, EventKind::End);
    assert_eq!(r.events[0].data.as_ref(), "{\"done\":true}");
    // Ended channels are kept for the retention, then go by themselves,
    // and their watches close.
    let (a, id) = (&*a, &id);
    eventually(a, || async move {
        a.read(id, 0, 10, now()).await.err() == Some(BrokerError::NotFound)
    })
    .await;
    let rx = &rx;
    eventually(a, || async move { rx.has_changed().is_err() }).await;
}

async fn ended_channels_outlive_their_expiry_for_the_retention(be: &impl Backend) {
    let b = be
        .broker(Limits {
            ended_retention_ms: 1500,
            ..LIMITS
        })
        .await;
    let b = &*b;
    let id = create(b, now() + 300).await;
    append(b, &id, EventKind::End, &["null"], None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    b.sweep(now()).await;
    let r = read(b, &id, 0, 10).await;
    assert_eq!(ids(&r), [1], "still there after the expiry");
    let id = &id;
    eventually(b, || async move {
        b.read(id, 0, 10, now()).await.err() == Some(BrokerError::NotFound)
    })
    .await;
}

async fn expired_channels_answer_expired_then_go(be: &impl Backend) {
    let b = be.broker(LIMITS).await;
    let b = &*b;
    let id = create(b, now() + 400).await;
    let mut rx = b.watch(&id).await.unwrap();
    append(b, &id, EventKind::Message, &["1"], None)
        .await
        .unwrap();
    let r = &rx;
    eventually(b, || async move { r.borrow().phase == Phase::Expired }).await;
    wait_head(&mut rx, |h| h.phase == Phase::Expired).await;
    assert_eq!(
        append(b, &id, EventKind::Message, &["2"], None).await,
        Err(BrokerError::Expired)
    );
    assert_eq!(
        b.read(&id, 0, 10, now()).await.unwrap_err(),
        BrokerError::Expired,
        "a tombstone, not CHANNEL_NOT_FOUND"
    );
    let id = &id;
    eventually(b, || async move {
        b.read(id, 0, 10, now()).await.err() == Some(BrokerError::NotFound)
    })
    .await;
}

async fn sweep_releases_expired_and_ended_channels(be: &impl Backend) {
    let b = be.broker(LIMITS).await;
    let b = &*b;
    let expiring = create(b, now() + 300).await;
    let ending = create(b, now() + HOUR).await;
    let staying = create(b, now() + HOUR).await;
    append(b, &ending, EventKind::End, &["null"], None)
        .await
        .unwrap();
    let mut released = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(released.contains(&expiring) && released.contains(&ending)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "released: {released:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        released.extend(b.sweep(now()).await);
    }
    assert!(!released.contains(&staying));
}

async fn channel_limit_holds_across_nodes(be: &impl Backend) {
    let l = Limits {
        max_channels: 2,
        ..LIMITS
    };
    let a = be.broker(l).await;
    let b = be.broker(l).await;
    create(&*a, now() + HOUR).await;
    let taken = create(&*b, now() + HOUR).await;
    let third = |b: Arc<dyn Broker>| async move {
        b.create(NewChannel {
            id: new_id(),
            expires_at_ms: now() + HOUR,
            creator: None,
        })
        .await
    };
    assert_eq!(third(a.clone()).await, Err(BrokerError::Full));
    assert_eq!(third(b.clone()).await, Err(BrokerError::Full));
    let again = a
        .create(NewChannel {
            id: taken,
            expires_at_ms: now() + HOUR,
            creator: None,
        })
        .await;
    assert!(matches!(
        again,
        Err(BrokerError::Full | BrokerError::Exists)
    ));
}

async fn unknown_and_malformed_ids_address_nothing(be: &impl Backend) {
    let b = be.broker(LIMITS).await;
    let b = &*b;
    let id = create(b, now() + HOUR).await;
    append(b, &id, EventKind::Message, &["1"], None)
        .await
        .unwrap();
    // Ids that would name (parts of) another channel's keys if they reached
    // a key name, and payloads and keys that look like key names.
    let bad = [
        "00000000000000000000000000000000".to_owned(),
        format!("{id}}}:m"),
        format!("{{{id}}}"),
        format!("{id}:s"),
        id.to_uppercase(),
        format!("{id} "),
        "*".to_owned(),
        String::new(),
    ];
    for other in &bad {
        assert_eq!(
            b.read(other, 0, 10, now()).await.unwrap_err(),
            BrokerError::NotFound,
            "{other:?}"
        );
        assert_eq!(
            append(b, other, EventKind::Message, &["2"], None)
                .await
                .unwrap_err(),
            BrokerError::NotFound,
            "{other:?}"
        );
        assert!(b.watch(other).await.is_err(), "{other:?}");
    }
    let tricky = format!("sse:{{{id}}}:m");
    append(b, &id, EventKind::Message, &["\"x\""], Some(&tricky))
        .await
        .unwrap();
    let r = read(b, &id, 0, 10).await;
    assert_eq!(ids(&r), [1, 2], "only this channel's own appends");
    assert_eq!(r.events[1].data.as_ref(), "\"x\"");
}

async fn readers_of_a_watched_channel_get_what_unwatched_reads_get(be: &impl Backend) {
    let l = Limits {
        replay_events: 5,
        ..LIMITS
    };
    let a = be.broker(l).await;
    let b = be.broker(l).await;
    let id = create(&*a, now() + HOUR).await;
    let mut rx = a.watch(&id).await.unwrap();
    for round in 0..4u64 {
        append(&*b, &id, EventKind::Message, &["1", "2", "3"], None)
            .await
            .unwrap();
        let last = 3 * round + 3;
        wait_head(&mut rx, |h| h.last_id == last).await;
        // Every cursor at once, as readers woken together would ask.
        for max in [10, 2] {
            let reads = (0..=last + 1).map(|after| a.read(&id, after, max, now()));
            let got = futures_util::future::join_all(reads).await;
            let first_kept = last.saturating_sub(4).max(1);
            for (after, r) in (0..=last + 1).zip(got) {
                let r = r.unwrap();
                let from = (after + 1).max(first_kept);
                let want: Vec<EventId> = (from..=last).take(max).collect();
                assert_eq!(ids(&r), want, "after {after}, max {max}");
                let want_lost = (after + 1 < first_kept).then_some((after + 1, first_kept - 1));
                assert_eq!(lost(&r), want_lost, "after {after}");
                assert_eq!(r.head.last_id, last);
                let unwatched = read(&*b, &id, after, max).await;
                assert_eq!((ids(&unwatched), lost(&unwatched)), (want, want_lost));
            }
        }
    }
    append(&*b, &id, EventKind::End, &["null"], None)
        .await
        .unwrap();
    wait_head(&mut rx, |h| h.phase == Phase::Ended).await;
    let r = read(&*a, &id, 12, 10).await;
    assert_eq!((ids(&r), r.head.phase), (vec![13], Phase::Ended));
}

/// A failed or cancelled channel's final `error` event is stored like `end`:
/// it ends the channel on every node, is read and resumed from like any
/// event, survives eviction as the newest event, and is retained.
async fn a_final_error_event_ends_the_channel_like_end(be: &impl Backend) {
    let a = be
        .broker(Limits {
            replay_events: 2,
            ended_retention_ms: 1500,
            ..LIMITS
        })
        .await;
    let b = be
        .broker(Limits {
            replay_events: 2,
            ended_retention_ms: 1500,
            ..LIMITS
        })
        .await;
    for code in ["FUNCTION_FAILED", "CHANNEL_CANCELLED"] {
        let id = create(&*a, now() + HOUR).await;
        let mut rx = a.watch(&id).await.unwrap();
        append(&*b, &id, EventKind::Message, &["1", "2", "3"], None)
            .await
            .unwrap();
        let data = format!(r#"{{"code":"{code}","message":"m","details":{{"reason":"x"}}}}"#);
        let done = append(&*b, &id, EventKind::Error, &[&data], Some("k"))
            .await
            .unwrap();
        assert_eq!((done.first_id, done.last_id, done.replayed), (4, 4, false));
        // A retry of the same request answers the same; anything else is refused.
        let again = append(&*b, &id, EventKind::Error, &[&data], Some("k"))
            .await
            .unwrap();
        assert_eq!((again.last_id, again.replayed), (4, true));
        wait_head(&mut rx, |h| h.phase == Phase::Ended && h.last_id == 4).await;
        for kind in [EventKind::Message, EventKind::End, EventKind::Error] {
            assert_eq!(
                append(&*a, &id, kind, &["1"], None).await,
                Err(BrokerError::Ended)
            );
        }
        // Resume from before it, from it, and from the start (3 evicted).
        for node in [&*a, &*b] {
            let r = read(node, &id, 3, 10).await;
            assert_eq!((ids(&r), r.head.phase), (vec![4], Phase::Ended));
            assert_eq!(r.events[0].kind, EventKind::Error);
            assert_eq!(r.events[0].data.as_ref(), data);
            assert!(read(node, &id, 4, 10).await.events.is_empty());
            let r = read(node, &id, 0, 10).await;
            assert_eq!((lost(&r), ids(&r)), (Some((1, 2)), vec![3, 4]));
        }
        // Retained for the retention, then gone.
        let (a, id) = (&*a, &id);
        eventually(a, || async move {
            a.read(id, 0, 10, now()).await.err() == Some(BrokerError::NotFound)
        })
        .await;
    }
}

/// 100 bytes of payload.
const P100: &str = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";

/// Waits (sweeping) until every broker reports `bytes` buffered.
async fn held_becomes(brokers: &[&dyn Broker], bytes: u64) {
    for &b in brokers {
        eventually(b, || async move { b.buffered_bytes() == bytes }).await;
    }
}

async fn the_byte_budget_refuses_before_storing_and_holds_across_nodes(be: &impl Backend) {
    let cost = event_cost(P100.len());
    let key = key_cost("message k".len());
    let l = Limits {
        budgets: ByteBudgets {
            total: 5 * cost + key,
            per_creator: 0,
        },
        ..LIMITS
    };
    let (a, b) = (be.broker(l).await, be.broker(l).await);
    let (a, b) = (&*a, &*b);
    let short = create(a, now() + 300).await;
    let x = create(b, now() + HOUR).await;
    append(a, &short, EventKind::Message, &[P100, P100], None)
        .await
        .unwrap();
    append(b, &x, EventKind::Message, &[P100, P100], Some("k"))
        .await
        .unwrap();
    append(a, &x, EventKind::Message, &[P100], None)
        .await
        .unwrap();
    // Full, whichever node is asked; nothing of a refused append is stored,
    // and nothing stored is dropped to make room.
    for node in [a, b] {
        assert_eq!(
            append(node, &x, EventKind::Message, &[P100], None).await,
            Err(BrokerError::BufferFull)
        );
        assert_eq!(
            append(node, &x, EventKind::End, &["null"], None).await,
            Err(BrokerError::BufferFull)
        );
    }
    assert_eq!(BrokerError::BufferFull.code().as_str(), "BUFFER_FULL");
    let r = read(b, &x, 0, 10).await;
    assert_eq!(
        (ids(&r), lost(&r), r.head.last_id),
        (vec![1, 2, 3], None, 3)
    );
    assert_eq!(ids(&read(a, &short, 0, 10).await), [1, 2]);
    held_becomes(&[a, b], 5 * cost + key).await;
    // The short channel's bytes are given back once it is gone.
    let x = &x;
    eventually(a, || async move {
        append(b, x, EventKind::Message, &[P100], None)
            .await
            .is_ok()
    })
    .await;
    held_becomes(&[a, b], 4 * cost + key).await;
    // Full again; the relay's own final event (a cancel) is still stored.
    append(a, x, EventKind::Message, &[P100], None)
        .await
        .unwrap();
    assert_eq!(
        append(b, x, EventKind::Message, &[P100], None).await,
        Err(BrokerError::BufferFull)
    );
    let cancel = r#"{"code":"CHANNEL_CANCELLED","message":"m"}"#;
    let done = b
        .append(
            x,
            Append {
                kind: EventKind::Error,
                payloads: vec![cancel.into()],
                idempotency_key: None,
                now_ms: now(),
                exempt: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(done.last_id, 6);
    let r = read(a, x, 5, 10).await;
    assert_eq!((ids(&r), r.head.phase), (vec![6], Phase::Ended));
    held_becomes(&[a, b], 5 * cost + key + event_cost(cancel.len())).await;
}

async fn a_channel_trimmed_by_its_buffer_bounds_stays_within_the_budget(be: &impl Backend) {
    let cost = event_cost(P100.len());
    let b = be
        .broker(Limits {
            replay_events: 2,
            budgets: ByteBudgets {
                total: 3 * cost,
                per_creator: 0,
            },
            ..LIMITS
        })
        .await;
    let b = &*b;
    let id = create(b, now() + HOUR).await;
    // The buffer keeps two events: storing a third frees the oldest.
    for n in 1..=20 {
        let a = append(b, &id, EventKind::Message, &[P100], None).await;
        assert_eq!(a.map(|a| a.last_id), Ok(n));
    }
    held_becomes(&[b], 2 * cost).await;
    let r = read(b, &id, 0, 10).await;
    assert_eq!((ids(&r), lost(&r)), (vec![19, 20], Some((1, 18))));
}

async fn the_byte_budget_of_one_creator_holds_across_nodes(be: &impl Backend) {
    let cost = event_cost(P100.len());
    let l = Limits {
        budgets: ByteBudgets {
            total: u64::MAX,
            per_creator: 3 * cost,
        },
        ..LIMITS
    };
    let (a, b) = (be.broker(l).await, be.broker(l).await);
    let (a, b) = (&*a, &*b);
    let net = "2001:db8:1:2::";
    let c1 = create_by(a, now() + HOUR, Some(net)).await;
    let c2 = create_by(b, now() + HOUR, Some(net)).await;
    let other = create_by(a, now() + HOUR, Some("203.0.113.9")).await;
    let anon = create_by(b, now() + HOUR, None).await;
    for (node, ch) in [(a, &c1), (b, &c2), (b, &c1)] {
        append(node, ch, EventKind::Message, &[P100], None)
            .await
            .unwrap();
    }
    for (node, ch) in [(a, &c2), (b, &c2), (a, &c1)] {
        let refused = append(node, ch, EventKind::Message, &[P100], None).await;
        assert_eq!(refused, Err(BrokerError::CreatorBufferFull));
    }
    assert_eq!(
        BrokerError::CreatorBufferFull.code().as_str(),
        "RATE_LIMITED"
    );
    assert_eq!(ids(&read(a, &c2, 0, 10).await), [1]);
    // Other creators, and channels of none, are not affected.
    for ch in [&other, &anon] {
        for node in [a, b] {
            append(node, ch, EventKind::Message, &[P100], None)
                .await
                .unwrap();
        }
    }
    held_becomes(&[a, b], 7 * cost).await;
}

/// A budget that is full, and a channel whose replay buffer is full: every
/// append to it pushes out as much as it adds, so it is stored (whichever
/// node takes it), while anything that grows what is held is refused.
async fn a_channel_with_a_full_buffer_takes_appends_at_a_full_budget(be: &impl Backend) {
    let cost = event_cost(P100.len());
    let l = Limits {
        replay_events: 2,
        idempotency_keys: 1,
        budgets: ByteBudgets {
            total: 2 * cost + key_cost("message k".len()),
            per_creator: 0,
        },
        ..LIMITS
    };
    let (a, b) = (be.broker(l).await, be.broker(l).await);
    let (a, b) = (&*a, &*b);
    let id = create(a, now() + HOUR).await;
    append(a, &id, EventKind::Message, &[P100], Some("k"))
        .await
        .unwrap();
    append(b, &id, EventKind::Message, &[P100], None)
        .await
        .unwrap();
    for n in 3..=12 {
        let node = if n % 2 == 0 { a } else { b };
        let done = append(node, &id, EventKind::Message, &[P100], None).await;
        assert_eq!(done.map(|d| d.last_id), Ok(n), "append {n}");
    }
    // A batch larger than the buffer; a retry of a stored request (answered
    // as stored); a key that makes it forget the old one.
    let done = append(a, &id, EventKind::Message, &[P100, P100, P100], None).await;
    assert_eq!(done.map(|d| d.last_id), Ok(15));
    for node in [a, b] {
        let again = append(node, &id, EventKind::Message, &[P100], Some("k")).await;
        assert_eq!(again.map(|d| (d.first_id, d.replayed)), Ok((1, true)));
    }
    let done = append(b, &id, EventKind::Message, &[P100], Some("l")).await;
    assert_eq!(done.map(|d| d.last_id), Ok(16));
    let r = read(b, &id, 0, 10).await;
    assert_eq!((ids(&r), lost(&r)), (vec![15, 16], Some((1, 14))));
    // Growth is refused: a larger event, another channel.
    let larger = format!("{P100}x");
    for node in [a, b] {
        assert_eq!(
            append(node, &id, EventKind::Message, &[larger.as_str()], None).await,
            Err(BrokerError::BufferFull)
        );
    }
    let other = create(b, now() + HOUR).await;
    assert_eq!(
        append(a, &other, EventKind::Message, &[P100], None).await,
        Err(BrokerError::BufferFull)
    );
    held_becomes(&[a, b], 2 * cost + key_cost("message l".len())).await;
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&super::Memory(Default::default())).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let server = super::RedisServer::start();
                    super::$name(&server).await;
                }
            )*
        }
    };
}

conformance!(
    ids_are_consecutive_and_reads_resume,
    eviction_by_events_and_bytes_reports_the_lost_range,
    idempotency_keys_are_bounded_and_scoped_by_kind,
    concurrent_appends_from_several_nodes_never_interleave,
    end_refuses_more_and_wakes_watchers_on_every_node,
    ended_channels_outlive_their_expiry_for_the_retention,
    expired_channels_answer_expired_then_go,
    sweep_releases_expired_and_ended_channels,
    channel_limit_holds_across_nodes,
    unknown_and_malformed_ids_address_nothing,
    readers_of_a_watched_channel_get_what_unwatched_reads_get,
    a_final_error_event_ends_the_channel_like_end,
    the_byte_budget_refuses_before_storing_and_holds_across_nodes,
    a_channel_trimmed_by_its_buffer_bounds_stays_within_the_budget,
    the_byte_budget_of_one_creator_holds_across_nodes,
    a_channel_with_a_full_buffer_takes_appends_at_a_full_budget,
);

/// The Redis broker's byte ledger corrects itself: an entry that went wrong
/// (a settlement lost) is re-read from the channel's metadata by the sweep,
/// and the reservations of a node that went silent (died between a
/// reservation and its settlement) are dropped.
#[tokio::test]
async fn the_redis_byte_ledger_corrects_its_drift() {
    let server = RedisServer::start();
    let b = server.broker(LIMITS).await;
    let b = &*b;
    let cost = event_cost(P100.len());
    let id = create(b, now() + HOUR).await;
    append(b, &id, EventKind::Message, &[P100, P100], None)
        .await
        .unwrap();
    held_becomes(&[b], 2 * cost).await;
    let entry = server
        .command(&format!("HGET sse:{{bytes}}:c {id}"))
        .unwrap();
    let entry = entry.lines().nth(1).unwrap().to_owned();
    let until = entry.split(' ').nth(3).unwrap();
    // A lost settlement: the entry and the sum say 5 bytes, version 0.
    let set = |held: u64, pending: u64, sum: u64| {
        let e = format!("HSET sse:{{bytes}}:c {id} \"{held} 0 {pending} {until} -\"");
        assert!(server.command(&e).unwrap().starts_with(':'));
        let s = format!("HSET sse:{{bytes}}:sum * {sum}");
        assert!(server.command(&s).unwrap().starts_with(':'));
    };
    set(5, 0, 5);
    held_becomes(&[b], 2 * cost).await;
    // A node that reserved 1,000 bytes, then went silent long ago.
    set(2 * cost, 1000, 2 * cost + 1000);
    let dead = format!("HSET sse:{{bytes}}:r \"0badc0de {id}\" 1000");
    assert!(server.command(&dead).unwrap().starts_with(':'));
    assert!(server
        .command("ZADD sse:{bytes}:nodes 1 0badc0de")
        .unwrap()
        .starts_with(':'));
    held_becomes(&[b], 2 * cost).await;
    let left = server.command("HLEN sse:{bytes}:r").unwrap();
    assert!(left.starts_with(":0"), "{left}");
    // A reservation of this live node still unsettled when the sweep audits
    // the channel: the audit settles nothing of it (and takes back 0 bytes,
    // which must not reach Redis as "-0").
    let node = server.command("ZRANGE sse:{bytes}:nodes 0 -1").unwrap();
    let node = node.lines().nth(2).unwrap().to_owned();
    set(2 * cost, 7, 2 * cost + 7);
    let mine = format!("HSET sse:{{bytes}}:r \"{node} {id}\" 7");
    assert!(server.command(&mine).unwrap().starts_with(':'));
    held_becomes(&[b], 2 * cost + 7).await;
    for _ in 0..3 {
        b.sweep(now()).await;
    }
    assert_eq!(b.buffered_bytes(), 2 * cost + 7);
    assert!(server.command(&mine).unwrap().starts_with(':'));
    assert_eq!(b.status().errors, 0, "every ledger call succeeded");
    server
        .command(&format!("HDEL sse:{{bytes}}:r \"{node} {id}\""))
        .unwrap();
    set(2 * cost, 0, 2 * cost);
    // The channel still takes appends within the budget.
    append(b, &id, EventKind::Message, &[P100], None)
        .await
        .unwrap();
    held_becomes(&[b], 3 * cost).await;
}
