//! Fail, cancel, abandon and the publisher's wait, over the HTTP API of a
//! real relay (in-memory broker; `nodes.rs` runs them across Redis nodes).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

async fn call(relay: &TestRelay, ch: &Channel, route: &str, token: &str, body: &str) -> Resp {
    relay.call(ch, route, token, body).await
}

async fn fail(relay: &TestRelay, ch: &Channel, body: &str) -> Resp {
    relay.fail(ch, body).await
}

async fn cancel(relay: &TestRelay, ch: &Channel, body: &str) -> Resp {
    relay.cancel(ch, body).await
}

async fn wait(relay: &TestRelay, ch: &Channel, query: &str, token: &str) -> Resp {
    relay.wait(ch, query, token).await
}

async fn create_with(relay: &TestRelay, body: &str) -> Channel {
    relay.create_with(body).await
}

/// The final `error` event: it has an id, and the stream closes after it.
async fn expect_final(sub: &mut Sub, id: u64, data: Value) {
    let e = sub.next().await.expect("the final error event");
    assert_eq!(
        e,
        Ev {
            id: Some(id),
            event: "error".into(),
            data
        }
    );
    sub.closed().await;
}

#[tokio::test]
async fn fail_stores_a_final_error_event_that_is_resumable() {
    let relay = start(config()).await;
    for t in BOTH {
        let ch = relay.create().await;
        let mut sub = relay.live(t, &ch, "").await;
        assert_eq!(relay.publish(&ch, r#"{"data":"step 1"}"#).await.status, 200);
        let r = fail(
            &relay,
            &ch,
            r#"{"message":"quota \"x\" exceeded","details":{"step":2}}"#,
        )
        .await;
        assert_eq!(
            (r.status, r.json()),
            (200, json!({"firstId":2,"lastId":2,"subscribers":1}))
        );
        let want =
            json!({"code":"FUNCTION_FAILED","message":"quota \"x\" exceeded","details":{"step":2}});
        sub.expect_message(1, json!("step 1")).await;
        expect_final(&mut sub, 2, want.clone()).await;
        // A reconnect from before the final event gets it again; one from it
        // gets nothing more and closes.
        let mut again = relay.live(t, &ch, "lastEventId=1").await;
        expect_final(&mut again, 2, want.clone()).await;
        let mut after = relay.live(t, &ch, "lastEventId=2").await;
        after.closed().await;
        // The channel is ended: publish, end and fail answer CHANNEL_ENDED.
        for r in [
            relay.publish(&ch, r#"{"data":1}"#).await,
            relay.end(&ch, "").await,
            fail(&relay, &ch, r#"{"message":"again"}"#).await,
        ] {
            assert_eq!((r.status, r.code().as_str()), (409, "CHANNEL_ENDED"));
        }
        // Cancelling a failed channel: CHANNEL_ENDED too.
        let r = cancel(&relay, &ch, "").await;
        assert_eq!((r.status, r.code().as_str()), (409, "CHANNEL_ENDED"));
    }
}

#[tokio::test]
async fn fail_without_details_and_idempotent_retry() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let auth = format!("Bearer {}", ch.publ);
    let path = format!("/v1/channels/{}/fail", ch.id);
    let headers = [("authorization", auth.as_str()), ("idempotency-key", "f-1")];
    let first = relay.post(&path, &headers, r#"{"message":"boom"}"#).await;
    assert_eq!(first.json()["lastId"], json!(1));
    let retry = relay.post(&path, &headers, r#"{"message":"boom"}"#).await;
    assert_eq!(
        (retry.status, retry.json()["lastId"].clone()),
        (200, json!(1))
    );
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let mut sub = relay.live(T::Sse, &ch, "").await;
    expect_final(
        &mut sub,
        1,
        json!({"code":"FUNCTION_FAILED","message":"boom"}),
    )
    .await;
}

#[tokio::test]
async fn cancel_reaches_readers_and_refuses_the_publisher_with_the_reason() {
    let relay = start(config()).await;
    for t in BOTH {
        let ch = relay.create().await;
        let mut sub = relay.live(t, &ch, "").await;
        relay.publish(&ch, r#"{"data":"a"}"#).await;
        let r = cancel(&relay, &ch, r#"{"reason":"user pressed stop"}"#).await;
        assert_eq!((r.status, r.json()), (200, json!({"id": 2})));
        sub.expect_message(1, json!("a")).await;
        let want = json!({"code":"CHANNEL_CANCELLED","message":"user pressed stop"});
        expect_final(&mut sub, 2, want.clone()).await;
        for r in [
            relay.publish(&ch, r#"{"data":1}"#).await,
            relay.end(&ch, "").await,
            fail(&relay, &ch, r#"{"message":"late"}"#).await,
        ] {
            assert_eq!(
                (r.status, r.json()),
                (
                    409,
                    json!({"error":{"code":"CHANNEL_CANCELLED","message":"user pressed stop"}})
                )
            );
        }
        // Idempotent: the same id again, whatever the reason.
        let again = cancel(&relay, &ch, r#"{"reason":"twice"}"#).await;
        assert_eq!((again.status, again.json()), (200, json!({"id": 2})));
        let mut late = relay.live(t, &ch, "lastEventId=1").await;
        expect_final(&mut late, 2, want).await;
    }
    // Without a body: the default message.
    let ch = relay.create().await;
    assert_eq!(cancel(&relay, &ch, "").await.json(), json!({"id": 1}));
    let mut sub = relay.live(T::Ws, &ch, "").await;
    expect_final(
        &mut sub,
        1,
        json!({"code":"CHANNEL_CANCELLED","message":"cancelled by the reader"}),
    )
    .await;
    // An ended channel cannot be cancelled.
    let ch = relay.create().await;
    relay.end(&ch, "").await;
    let r = cancel(&relay, &ch, "").await;
    assert_eq!((r.status, r.code().as_str()), (409, "CHANNEL_ENDED"));
}

#[tokio::test]
async fn every_refusal_has_its_code() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let other = relay.create().await;
    let cases: Vec<(Resp, u16, &str)> = vec![
        // Cancel takes the subscribe token, fail and wait the publish token.
        (
            call(&relay, &ch, "cancel", &ch.publ, "").await,
            403,
            "FORBIDDEN",
        ),
        (
            call(&relay, &ch, "cancel", &other.sub, "").await,
            401,
            "UNAUTHORIZED",
        ),
        (
            relay
                .post(&format!("/v1/channels/{}/cancel", ch.id), &[], "")
                .await,
            401,
            "UNAUTHORIZED",
        ),
        (
            call(&relay, &ch, "fail", &ch.sub, r#"{"message":"m"}"#).await,
            403,
            "FORBIDDEN",
        ),
        (
            wait(&relay, &ch, "?timeoutMs=0", &ch.sub).await,
            403,
            "FORBIDDEN",
        ),
        // Bodies.
        (
            cancel(
                &relay,
                &ch,
                &format!(r#"{{"reason":"{}"}}"#, "r".repeat(257)),
            )
            .await,
            400,
            "BAD_REQUEST",
        ),
        (
            cancel(&relay, &ch, r#"{"why":"x"}"#).await,
            400,
            "BAD_REQUEST",
        ),
        (cancel(&relay, &ch, "[1]").await, 400, "BAD_REQUEST"),
        (
            cancel(&relay, &ch, &" ".repeat(4096)).await,
            413,
            "MESSAGE_TOO_LARGE",
        ),
        (fail(&relay, &ch, "").await, 400, "BAD_REQUEST"),
        (
            fail(&relay, &ch, r#"{"details":1}"#).await,
            400,
            "BAD_REQUEST",
        ),
        (
            fail(
                &relay,
                &ch,
                &format!(r#"{{"message":"{}"}}"#, "m".repeat(1025)),
            )
            .await,
            400,
            "BAD_REQUEST",
        ),
        (
            fail(&relay, &ch, r#"{"message":"m","extra":1}"#).await,
            400,
            "BAD_REQUEST",
        ),
        (
            wait(&relay, &ch, "?timeoutMs=60001", &ch.publ).await,
            400,
            "BAD_REQUEST",
        ),
        (
            wait(&relay, &ch, "?timeoutMs=soon", &ch.publ).await,
            400,
            "BAD_REQUEST",
        ),
        // Creation.
        (
            relay
                .post("/v1/channels", &[], r#"{"abandonAfterMs":999}"#)
                .await,
            400,
            "BAD_REQUEST",
        ),
        (
            relay
                .post("/v1/channels", &[], r#"{"abandonAfterMs":3600001}"#)
                .await,
            400,
            "BAD_REQUEST",
        ),
    ];
    for (i, (r, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "case {i}: {}",
            r.body
        );
    }
    // A well-formed fail with a message of exactly 1,024 characters is fine.
    let r = fail(
        &relay,
        &ch,
        &format!(r#"{{"message":"{}"}}"#, "é".repeat(1024)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let unknown = Channel {
        id: UNKNOWN_ID.into(),
        sub: mint(
            UNKNOWN_ID,
            sse_channel_protocol::Scope::Subscribe,
            now_secs() + 60,
        ),
        publ: mint(
            UNKNOWN_ID,
            sse_channel_protocol::Scope::Publish,
            now_secs() + 60,
        ),
        expires_at: 0,
    };
    for r in [
        cancel(&relay, &unknown, "").await,
        fail(&relay, &unknown, r#"{"message":"m"}"#).await,
        wait(&relay, &unknown, "", &unknown.publ).await,
    ] {
        assert_eq!((r.status, r.code().as_str()), (404, "CHANNEL_NOT_FOUND"));
    }
}

#[tokio::test]
async fn wait_answers_on_cancel_end_fail_and_timeout() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let r = wait(&relay, &ch, "?timeoutMs=100", &ch.publ).await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"state":"open","subscribers":0}))
    );
    let _sub = relay.live(T::Sse, &ch, "").await;
    let r = wait(&relay, &ch, "?timeoutMs=0", &ch.publ).await;
    assert_eq!(r.json(), json!({"state":"open","subscribers":1}));
    // A waiting publisher hears of the cancel long before its timeout.
    let started = Instant::now();
    let waiting = {
        let (relay, ch) = (&relay, &ch);
        async move { wait(relay, ch, "?timeoutMs=60000", &ch.publ).await }
    };
    let canceller = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel(&relay, &ch, r#"{"reason":"stop"}"#).await
    };
    let (r, c) = tokio::time::timeout(WAIT, async { tokio::join!(waiting, canceller) })
        .await
        .expect("the wait answers once the channel is cancelled");
    assert_eq!(c.status, 200);
    assert_eq!(r.json(), json!({"state":"cancelled","reason":"stop"}));
    assert!(started.elapsed() < WAIT);
    // Already cancelled, ended or failed: at once.
    let r = wait(&relay, &ch, "", &ch.publ).await;
    assert_eq!(r.json(), json!({"state":"cancelled","reason":"stop"}));
    let ended = relay.create().await;
    relay.end(&ended, "").await;
    let failed = relay.create().await;
    fail(&relay, &failed, r#"{"message":"m"}"#).await;
    for c in [&ended, &failed] {
        let r = tokio::time::timeout(WAIT, wait(&relay, c, "", &c.publ))
            .await
            .unwrap();
        assert_eq!(r.json(), json!({"state":"ended"}));
    }
}

#[tokio::test]
async fn abandon_cancels_once_the_last_reader_has_been_gone_long_enough() {
    let relay = start(config()).await;
    let ch = create_with(&relay, r#"{"abandonAfterMs":1000}"#).await;
    // A connected reader keeps the channel: still open after 1.5 s.
    let sub = relay.live(T::Ws, &ch, "").await;
    let r = wait(&relay, &ch, "?timeoutMs=1500", &ch.publ).await;
    assert_eq!(r.json(), json!({"state":"open","subscribers":1}));
    // Once it goes, the relay cancels after about abandonAfterMs.
    drop(sub);
    let r = tokio::time::timeout(WAIT, wait(&relay, &ch, "", &ch.publ))
        .await
        .expect("abandoned within the wait bound");
    assert_eq!(r.json(), json!({"state":"cancelled","reason":"ABANDONED"}));
    let p = relay.publish(&ch, r#"{"data":1}"#).await;
    assert_eq!(
        (p.status, p.json()),
        (
            409,
            json!({"error":{"code":"CHANNEL_CANCELLED","message":"ABANDONED"}})
        )
    );
    let mut late = relay.live(T::Sse, &ch, "").await;
    expect_final(
        &mut late,
        1,
        json!({"code":"CHANNEL_CANCELLED","message":"ABANDONED","details":{"reason":"ABANDONED"}}),
    )
    .await;
    // Without abandonAfterMs nothing is cancelled.
    let kept = relay.create().await;
    let r = wait(&relay, &kept, "?timeoutMs=1500", &kept.publ).await;
    assert_eq!(r.json(), json!({"state":"open","subscribers":0}));
}

#[tokio::test]
async fn an_abandon_clock_starts_at_creation() {
    let relay = start(config()).await;
    let ch = create_with(&relay, r#"{"abandonAfterMs":1000,"ttlSecs":60}"#).await;
    let r = tokio::time::timeout(WAIT, wait(&relay, &ch, "", &ch.publ))
        .await
        .expect("abandoned without any reader");
    assert_eq!(r.json(), json!({"state":"cancelled","reason":"ABANDONED"}));
}
