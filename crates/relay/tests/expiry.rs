//! The end of a channel's lifetime, against a real relay: live streams get a
//! `CHANNEL_EXPIRED` frame, and the channel's own tokens (which expire with it)
//! meet `CHANNEL_EXPIRED` on every route from then on, whether the cleanup task
//! has run yet or not and whether the channel is still held or already gone.
//! Tokens that are not authentic stay `UNAUTHORIZED` whatever their age.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sse_channel_protocol::{Claims, Scope};
use sse_relay::token::TokenKey;
use sse_relay::Config;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn create_ttl(relay: &TestRelay, ttl_secs: u64) -> Channel {
    let r = relay
        .post("/v1/channels", &[], &format!(r#"{{"ttlSecs":{ttl_secs}}}"#))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    Channel {
        id: v["channelId"].as_str().unwrap().into(),
        sub: v["subscribeToken"].as_str().unwrap().into(),
        publ: v["publishToken"].as_str().unwrap().into(),
        expires_at: v["expiresAt"].as_u64().unwrap(),
    }
}

/// Sleeps until the channel's tokens have expired (`exp` is `expiresAt`
/// rounded up to the second, and is exclusive).
async fn until_tokens_expired(ch: &Channel) {
    let exp_ms = ch.expires_at.div_ceil(1000) * 1000;
    let now = now_ms();
    if now < exp_ms + 50 {
        tokio::time::sleep(Duration::from_millis(exp_ms + 50 - now)).await;
    }
}

/// The error frame a live subscriber gets, and how its stream closes.
async fn expect_expired_frame(sub: &mut Sub, t: T) {
    let e = sub.next().await.expect("an error frame before the close");
    assert_eq!(e.event, "error", "{t:?}: {e:?}");
    assert_eq!(e.id, None);
    assert_eq!(e.data["code"], "CHANNEL_EXPIRED", "{t:?}: {e:?}");
    assert!(e.data["message"].is_string());
    let close = sub.closed().await;
    if t == T::Ws {
        assert_eq!(close, Some(4410));
    }
}

/// Subscribing with `query` is refused in band with `want` (and 4000 + status on WebSocket).
async fn refused_with(relay: &TestRelay, id: &str, query: &str, want: &str, ws_close: u16) {
    for t in BOTH {
        let (code, close) = refused(relay.subscribe(t, id, query).await).await;
        assert_eq!(code, want, "{t:?} {query}");
        if t == T::Ws {
            assert_eq!(close, Some(ws_close), "{t:?} {query}");
        }
    }
}

async fn post_with(relay: &TestRelay, id: &str, route: &str, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    relay
        .post(
            &format!("/v1/channels/{id}/{route}"),
            &[("authorization", &auth)],
            r#"{"data":1}"#,
        )
        .await
}

async fn live_streams_then_expired_tokens(config: Config) {
    let relay = start(config).await;
    let ch = create_ttl(&relay, 1).await;
    let mut sse = relay.live(T::Sse, &ch, "").await;
    let mut ws = relay.live(T::Ws, &ch, "").await;
    assert_eq!(relay.publish(&ch, r#"{"data":1}"#).await.status, 200);
    sse.expect_message(1, json!(1)).await;
    ws.expect_message(1, json!(1)).await;

    // The lifetime passes: both live streams get the frame, then close.
    expect_expired_frame(&mut sse, T::Sse).await;
    expect_expired_frame(&mut ws, T::Ws).await;

    // The client reconnects with its own subscribe token, now expired as well.
    until_tokens_expired(&ch).await;
    let q = format!("{}&lastEventId=1", ch.q());
    refused_with(&relay, &ch.id, &q, "CHANNEL_EXPIRED", 4410).await;
    let r = relay
        .get(&format!("/v1/channels/{}/events?{}", ch.id, ch.q()))
        .await;
    assert_eq!((r.status, r.code().as_str()), (410, "CHANNEL_EXPIRED"));

    // The writer publishes or ends with its own publish token, now expired.
    for route in ["messages", "end"] {
        let r = post_with(&relay, &ch.id, route, &ch.publ).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (410, "CHANNEL_EXPIRED"),
            "{route}: {}",
            r.body
        );
        assert!(!r.body.contains(&ch.publ), "no token echoed");
    }

    // Not authentic, or not this channel's: UNAUTHORIZED, however old.
    let past = now_secs() - 5;
    let forged = |scope| {
        TokenKey::new(b"another secret").sign(&Claims {
            sub: ch.id.clone(),
            scope,
            exp: past,
        })
    };
    let mut altered = ch.sub.clone();
    let flip = if altered.ends_with('A') { "B" } else { "A" };
    altered.replace_range(altered.len() - 1.., flip);
    let other = relay.create().await;
    let others_expired = mint(&other.id, Scope::Subscribe, past);
    for q in [
        format!("token={}", forged(Scope::Subscribe)),
        format!("token={altered}"),
        format!("token={others_expired}"),
    ] {
        refused_with(&relay, &ch.id, &q, "UNAUTHORIZED", 4401).await;
    }
    for token in [
        forged(Scope::Publish),
        mint(&other.id, Scope::Publish, past),
    ] {
        for route in ["messages", "end"] {
            let r = post_with(&relay, &ch.id, route, &token).await;
            assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
        }
    }
    // The channel's own expired token of the other scope: still FORBIDDEN.
    refused_with(
        &relay,
        &ch.id,
        &format!("token={}", ch.publ),
        "FORBIDDEN",
        4403,
    )
    .await;
    let r = post_with(&relay, &ch.id, "messages", &ch.sub).await;
    assert_eq!((r.status, r.code().as_str()), (403, "FORBIDDEN"));
}

#[tokio::test]
async fn live_streams_get_channel_expired_and_expired_tokens_meet_it_too() {
    live_streams_then_expired_tokens(config()).await;
}

/// The relay binary's defaults (sweep every second, expired channels kept as
/// tombstones for 300 s), as the browser tests run it.
#[tokio::test]
async fn same_with_the_default_cleanup_interval() {
    live_streams_then_expired_tokens(Config {
        cleanup_interval_ms: 1000,
        ..config()
    })
    .await;
}

/// The expired channel is forgotten at once (no retention): its own tokens
/// still get CHANNEL_EXPIRED, never CHANNEL_NOT_FOUND.
#[tokio::test]
async fn forgotten_channel_is_still_expired_for_its_tokens() {
    live_streams_then_expired_tokens(Config {
        ended_retention_secs: 0,
        ..config()
    })
    .await;
}

/// Reconnects and publishes at every moment after the lifetime passes: before
/// the cleanup task notices, after it does, once the tokens expire and once
/// the channel is forgotten, the answer is CHANNEL_EXPIRED each time.
#[tokio::test]
async fn the_answer_after_expiry_does_not_depend_on_timing() {
    after_expiry_at_every_moment(700, 1).await;
}

/// As the browser tests' second relay runs (`--ended-retention-secs 0
/// --cleanup-interval-ms 100`): the channel goes as soon as its tokens expire.
#[tokio::test]
async fn the_answer_after_expiry_does_not_depend_on_timing_without_retention() {
    after_expiry_at_every_moment(100, 0).await;
}

async fn after_expiry_at_every_moment(cleanup_interval_ms: u64, ended_retention_secs: u64) {
    let relay = start(Config {
        cleanup_interval_ms,
        ended_retention_secs,
        ..config()
    })
    .await;
    let ch = create_ttl(&relay, 1).await;
    let now = now_ms();
    if now < ch.expires_at {
        tokio::time::sleep(Duration::from_millis(ch.expires_at - now)).await;
    }
    let mut seen = 0;
    // Token expiry + retention + a sweep period, with margin.
    let until = ch.expires_at.div_ceil(1000) * 1000 + 2_500;
    while now_ms() < until {
        let t = if seen % 2 == 0 { T::Sse } else { T::Ws };
        let at = now_ms() as i64 - ch.expires_at as i64;
        let (code, _) = refused(relay.subscribe(t, &ch.id, &ch.q()).await).await;
        assert_eq!(
            code, "CHANNEL_EXPIRED",
            "{t:?} subscribe {at} ms after expiry"
        );
        let r = relay.publish(&ch, r#"{"data":1}"#).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (410, "CHANNEL_EXPIRED"),
            "publish {at} ms after expiry"
        );
        seen += 1;
        tokio::time::sleep(Duration::from_millis(90)).await;
    }
    assert!(seen > 10, "{seen} probes");
    assert_eq!(relay.create().await.id.len(), 32, "the relay still serves");
}
