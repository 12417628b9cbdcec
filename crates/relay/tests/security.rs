//! Secrets and key rotation, client addresses behind proxies, resume ids out of
//! range: the relay under attack (docs/relay.md, "Threat model").

mod common;

use common::*;
use serde_json::json;
use sse_relay::Config;

const NEW_SECRET: &[u8] = b"the-key-after-the-rollover-32-bytes!";

#[tokio::test]
async fn previous_secret_verifies_old_tokens_during_a_rollover() {
    // Two relays over one broker stand for one relay before and after a restart
    // with a new key (or two nodes mid-rollout).
    let before = config();
    let broker = sse_relay::memory_broker(&before);
    let old = start_with_broker(before, broker.clone()).await;
    let ch = old.create().await;
    assert_eq!(old.publish(&ch, r#"{"data":1}"#).await.status, 200);

    let rotated = start_with_broker(
        Config {
            secret: Some(NEW_SECRET.to_vec()),
            previous_secret: Some(SECRET.to_vec()),
            ..config()
        },
        broker.clone(),
    )
    .await;
    // Tokens signed with the previous key still publish and subscribe.
    let r = rotated.publish(&ch, r#"{"data":2}"#).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"firstId":2,"lastId":2,"subscribers":0}))
    );
    let mut sub = rotated.live(T::Sse, &ch, "").await;
    assert_eq!(sub.next().await.unwrap().data, json!(1));
    // New channels get tokens of the new key, which the old key refuses.
    let fresh = rotated.create().await;
    let r = old.publish(&fresh, r#"{"data":1}"#).await;
    assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));

    // Once the previous key is dropped, its tokens are refused.
    let after = start_with_broker(
        Config {
            secret: Some(NEW_SECRET.to_vec()),
            ..config()
        },
        broker,
    )
    .await;
    let r = after.publish(&ch, r#"{"data":3}"#).await;
    assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"));
    assert_eq!(after.publish(&fresh, r#"{"data":1}"#).await.status, 200);
}

#[tokio::test]
async fn run_refuses_a_short_secret() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config {
        secret: Some(b"0123456789abcdef0123456789abcde".to_vec()),
        ..config()
    };
    let err = sse_relay::run(listener, config, std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains("--secret must be at least 32 bytes (got 31)"),
        "{err}"
    );
}

#[tokio::test]
async fn resume_id_beyond_the_head_or_out_of_range_is_an_in_band_bad_request() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    for i in 1..=3 {
        relay.publish(&ch, &json!({ "data": i }).to_string()).await;
    }
    for t in BOTH {
        for last in ["99", "4", "18446744073709551615"] {
            let q = format!("{}&lastEventId={last}", ch.q());
            let (code, close) = refused(relay.subscribe(t, &ch.id, &q).await).await;
            assert_eq!(code, "BAD_REQUEST", "{t:?} {last}");
            if t == T::Ws {
                assert_eq!(close, Some(4400), "{last}");
            }
        }
    }
    // The header form, as EventSource sends it.
    let mut s = relay
        .sse(
            &ch.id,
            &ch.q(),
            &[("last-event-id", "18446744073709551615")],
        )
        .await;
    assert_eq!(s.status, 200);
    let e = s.next().await.unwrap();
    assert_eq!(e.event, "error");
    let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!(data["code"], "BAD_REQUEST");
    assert!(
        data["message"]
            .as_str()
            .unwrap()
            .contains("beyond the channel's newest event (3)"),
        "{data}"
    );
    assert!(s.next().await.is_none(), "the stream ends after the error");
    // Up to the head is a normal resume.
    let mut subs = Vec::new();
    for t in BOTH {
        subs.push(relay.live(t, &ch, "lastEventId=3").await);
    }
    relay.publish(&ch, r#"{"data":"next"}"#).await;
    for sub in &mut subs {
        assert_eq!(sub.next().await.unwrap().data, json!("next"));
    }
    // Out of the digit range entirely: refused as malformed.
    let (code, _) = refused(
        relay
            .subscribe(
                T::Sse,
                &ch.id,
                &format!("{}&lastEventId=18446744073709551616", ch.q()),
            )
            .await,
    )
    .await;
    assert_eq!(code, "BAD_REQUEST");
}
