//! Subscriber streams over EventSource and WebSocket against a real relay.

mod common;

use common::*;
use serde_json::json;
use sse_channel_protocol::Scope;

#[tokio::test]
async fn create_subscribe_publish_end_on_both_transports() {
    let relay = start(config()).await;
    for t in BOTH {
        let ch = relay.create().await;
        assert_eq!(ch.id.len(), 32);
        assert!(ch.expires_at > now_secs() * 1000);
        let (mut sub, ready) = relay.subscribe(t, &ch.id, &ch.q()).await.ready().await;
        assert_eq!(ready, json!({"heartbeatMs": 60000}));
        let r = relay.publish(&ch, r#"{"data":"step 1"}"#).await;
        assert_eq!(
            (r.status, r.json()),
            (200, json!({"firstId":1,"lastId":1,"subscribers":1}))
        );
        let r = relay
            .publish(&ch, r#"{"messages":[{"a":1},null,[1,2]]}"#)
            .await;
        assert_eq!(r.json(), json!({"firstId":2,"lastId":4,"subscribers":1}));
        let r = relay.end(&ch, r#"{"data":{"result":42}}"#).await;
        assert_eq!(r.json(), json!({"firstId":5,"lastId":5,"subscribers":1}));
        sub.expect_message(1, json!("step 1")).await;
        sub.expect_message(2, json!({"a":1})).await;
        sub.expect_message(3, json!(null)).await;
        sub.expect_message(4, json!([1, 2])).await;
        let end = sub.next().await.unwrap();
        assert_eq!(
            (end.id, end.event.as_str(), end.data),
            (Some(5), "end", json!({"result":42}))
        );
        let code = sub.closed().await;
        if t == T::Ws {
            assert_eq!(code, Some(1000));
        }
    }
}

#[tokio::test]
async fn sse_headers() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let s = relay.sse(&ch.id, &ch.q(), &[]).await;
    assert_eq!(s.headers["content-type"], "text/event-stream");
    assert_eq!(s.headers["cache-control"], "no-cache");
    assert_eq!(s.headers["x-accel-buffering"], "no");
}

#[tokio::test]
async fn concurrent_publishers_keep_order_and_ids_contiguous() {
    let relay = std::sync::Arc::new(start(config()).await);
    let ch = std::sync::Arc::new(relay.create().await);
    let mut subs = Vec::new();
    for t in BOTH {
        subs.push(relay.live(t, &ch, "").await);
    }
    const P: u64 = 8;
    const N: u64 = 40;
    let mut tasks = Vec::new();
    for p in 0..P {
        let (relay, ch) = (relay.clone(), ch.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..N {
                let body = if i % 4 == 0 {
                    json!({"messages": [{"p":p,"i":i}, {"p":p,"i":i,"b":1}]}).to_string()
                } else {
                    json!({"data": {"p":p,"i":i}}).to_string()
                };
                let r = relay.publish(&ch, &body).await;
                assert_eq!(r.status, 200);
                let v = r.json();
                if i % 4 == 0 {
                    assert_eq!(
                        v["lastId"].as_u64().unwrap(),
                        v["firstId"].as_u64().unwrap() + 1
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = P * N + P * N / 4;
    for mut sub in subs {
        let mut last = vec![None::<u64>; P as usize];
        let mut pending_batch = None;
        for id in 1..=total {
            let e = sub.next().await.unwrap();
            assert_eq!(e.id, Some(id), "ids are contiguous");
            let p = e.data["p"].as_u64().unwrap() as usize;
            let i = e.data["i"].as_u64().unwrap();
            if let Some((bp, bi)) = pending_batch.take() {
                // The second message of a batch directly follows the first.
                assert_eq!((p, i, e.data["b"].as_u64()), (bp, bi, Some(1)));
                continue;
            }
            assert!(last[p].is_none_or(|l| l < i), "publisher {p} order");
            last[p] = Some(i);
            if i % 4 == 0 {
                pending_batch = Some((p, i));
            }
        }
    }
}

#[tokio::test]
async fn resume_by_header_and_by_query_parameter() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    for i in 1..=5 {
        relay.publish(&ch, &json!({"data": i}).to_string()).await;
    }
    // Header (what the browser's EventSource sends on its own reconnects).
    let s = relay.sse(&ch.id, &ch.q(), &[("last-event-id", "3")]).await;
    let (mut sub, _) = Sub::Sse(s).ready().await;
    sub.expect_message(4, json!(4)).await;
    sub.expect_message(5, json!(5)).await;
    // Query parameter, both transports.
    for t in BOTH {
        let mut sub = relay.live(t, &ch, "lastEventId=2").await;
        sub.expect_message(3, json!(3)).await;
    }
    // Both: the larger wins.
    let s = relay
        .sse(
            &ch.id,
            &format!("{}&lastEventId=1", ch.q()),
            &[("last-event-id", "4")],
        )
        .await;
    let (mut sub, _) = Sub::Sse(s).ready().await;
    sub.expect_message(5, json!(5)).await;
    // Empty means 0.
    let mut sub = relay.live(T::Ws, &ch, "lastEventId=").await;
    sub.expect_message(1, json!(1)).await;
    // Garbage is a bad request.
    for t in BOTH {
        let sub = relay
            .subscribe(t, &ch.id, &format!("{}&lastEventId=-1", ch.q()))
            .await;
        let (code, close) = refused(sub).await;
        assert_eq!(code, "BAD_REQUEST");
        if t == T::Ws {
            assert_eq!(close, Some(4400));
        }
    }
}

#[tokio::test]
async fn lost_range_frame_then_the_stream_goes_on() {
    let relay = start(Config {
        replay_buffer_events: 3,
        ..config()
    })
    .await;
    for t in BOTH {
        let ch = relay.create().await;
        for i in 1..=10 {
            relay.publish(&ch, &json!({"data": i}).to_string()).await;
        }
        let mut sub = relay.live(t, &ch, "lastEventId=2").await;
        let e = sub.next().await.unwrap();
        assert_eq!(e.event, "error");
        assert_eq!(e.data["code"], "MESSAGES_LOST");
        assert_eq!(
            (e.data["from"].as_u64(), e.data["to"].as_u64()),
            (Some(3), Some(7))
        );
        for i in 8..=10 {
            sub.expect_message(i, json!(i)).await;
        }
        relay.publish(&ch, r#"{"data":11}"#).await;
        sub.expect_message(11, json!(11)).await;
        // Nothing lost when resuming inside the buffer.
        let mut sub = relay.live(t, &ch, "lastEventId=9").await;
        sub.expect_message(10, json!(10)).await;
    }
}

use sse_relay::Config;

#[tokio::test]
async fn reconnect_after_end_still_receives_end() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    relay.publish(&ch, r#"{"data":"a"}"#).await;
    relay.end(&ch, r#"{"data":"bye"}"#).await;
    for t in BOTH {
        for from in ["lastEventId=1", ""] {
            let mut sub = relay.live(t, &ch, from).await;
            if from.is_empty() {
                sub.expect_message(1, json!("a")).await;
            }
            let e = sub.next().await.unwrap();
            assert_eq!(
                (e.id, e.event.as_str(), e.data),
                (Some(2), "end", json!("bye"))
            );
            let code = sub.closed().await;
            if t == T::Ws {
                assert_eq!(code, Some(1000));
            }
        }
    }
}

#[tokio::test]
async fn every_stream_auth_refusal_is_in_band() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let other = relay.create().await;
    let future = now_secs() + 600;
    let mut altered = ch.sub.clone();
    let flip = if altered.ends_with('A') { "B" } else { "A" };
    altered.replace_range(altered.len() - 1.., flip);
    let forged =
        sse_relay::token::TokenKey::new(b"another secret").sign(&sse_channel_protocol::Claims {
            sub: ch.id.clone(),
            scope: Scope::Subscribe,
            exp: future,
        });
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "UNAUTHORIZED"),
        ("token=".into(), "UNAUTHORIZED"),
        ("token=not.a.jwt".into(), "UNAUTHORIZED"),
        (format!("token={forged}"), "UNAUTHORIZED"),
        (format!("token={altered}"), "UNAUTHORIZED"),
        (
            format!("token={}", mint(&ch.id, Scope::Subscribe, now_secs() - 1)),
            "CHANNEL_EXPIRED",
        ),
        (format!("token={}", other.sub), "UNAUTHORIZED"),
        (format!("token={}", ch.publ), "FORBIDDEN"),
    ];
    for t in BOTH {
        for (q, want) in &cases {
            let (code, close) = refused(relay.subscribe(t, &ch.id, q).await).await;
            assert_eq!(&code, want, "{t:?} {q}");
            if t == T::Ws {
                let status = match *want {
                    "FORBIDDEN" => 4403,
                    "CHANNEL_EXPIRED" => 4410,
                    _ => 4401,
                };
                assert_eq!(close, Some(status));
            }
        }
    }
    // Not a stream request: the ordinary JSON error with its status.
    let r = relay
        .get(&format!("/v1/channels/{}/events?token={}", ch.id, ch.publ))
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "FORBIDDEN"));
    let r = relay
        .get(&format!("/v1/channels/{}/ws?token={}", ch.id, ch.sub))
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "BAD_REQUEST"));
}

#[tokio::test]
async fn unknown_channel_and_bad_id() {
    let relay = start(config()).await;
    let tok = mint(UNKNOWN_ID, Scope::Subscribe, now_secs() + 60);
    for t in BOTH {
        let (code, close) = refused(
            relay
                .subscribe(t, UNKNOWN_ID, &format!("token={tok}"))
                .await,
        )
        .await;
        assert_eq!(code, "CHANNEL_NOT_FOUND");
        if t == T::Ws {
            assert_eq!(close, Some(4404));
        }
        let (code, _) = refused(
            relay
                .subscribe(t, "NOT-AN-ID", &format!("token={tok}"))
                .await,
        )
        .await;
        assert_eq!(code, "BAD_REQUEST");
    }
    let r = relay
        .get(&format!("/v1/channels/{UNKNOWN_ID}/events?token={tok}"))
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "CHANNEL_NOT_FOUND"));
}

#[tokio::test]
async fn heartbeats_and_websocket_ping_pong() {
    let relay = start(Config {
        heartbeat_ms: 100,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    for t in BOTH {
        let (mut sub, ready) = relay.subscribe(t, &ch.id, &ch.q()).await.ready().await;
        assert_eq!(ready["heartbeatMs"], 100);
        for _ in 0..2 {
            let e = sub.next_any().await.unwrap();
            assert_eq!(
                (e.id, e.event.as_str(), e.data),
                (None, "ping", json!(null))
            );
        }
    }
    let mut ws = relay.ws(&ch.id, &ch.q()).await;
    assert_eq!(ws.frame().await["event"], "ready");
    ws.send(r#"{"event":"ping"}"#).await;
    ws.send("not json: ignored").await;
    loop {
        let f = ws.frame().await;
        if f["event"] == "pong" {
            assert_eq!(f, json!({"event":"pong","data":null}));
            break;
        }
        assert_eq!(f["event"], "ping");
    }
}

#[tokio::test]
async fn payloads_cannot_inject_sse_fields() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let mut sub = relay.live(T::Sse, &ch, "").await;
    // Raw line breaks in JSON whitespace, and SSE syntax inside strings.
    let body = "{\"data\":\n{\"a\":\r\n\"\\n\\nevent: end\\ndata: 1\\n\\n\",\n\"id\": 99}\r}";
    assert_eq!(relay.publish(&ch, body).await.status, 200);
    relay.publish(&ch, r#"{"data":"second"}"#).await;
    sub.expect_message(1, json!({"a": "\n\nevent: end\ndata: 1\n\n", "id": 99}))
        .await;
    sub.expect_message(2, json!("second")).await;
}

#[tokio::test]
async fn test_hook_drops_streams_and_pauses_subscriptions() {
    let relay = start(Config {
        test_hooks: true,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    let s = relay.sse(&ch.id, &ch.q(), &[]).await;
    let (mut sse, _) = Sub::Sse(s).ready().await;
    let mut ws = relay.live(T::Ws, &ch, "").await;
    relay.publish(&ch, r#"{"data":1}"#).await;
    sse.expect_message(1, json!(1)).await;
    ws.expect_message(1, json!(1)).await;
    let r = relay
        .post(
            &format!("/v1/test/channels/{}/disconnect?pauseMs=400", ch.id),
            &[],
            "",
        )
        .await;
    assert_eq!(r.json(), json!({"dropped": 2}));
    // Abrupt: no end, no error frame; the SSE body breaks, the socket closes without a close frame.
    let Sub::Sse(mut raw) = sse else {
        unreachable!()
    };
    assert!(raw.try_next().await.is_err(), "SSE connection aborted");
    assert_eq!(ws.closed().await, None);
    // Paused: plain 503, no stream.
    let paused = relay.sse(&ch.id, &ch.q(), &[]).await;
    assert_eq!(paused.status, 503);
    relay.publish(&ch, r#"{"data":2}"#).await;
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let mut sub = relay.live(T::Sse, &ch, "lastEventId=1").await;
    sub.expect_message(2, json!(2)).await;
    // Bounded inputs: a pause of at most a minute, channels that exist.
    for q in [
        "pauseMs=60001",
        "pauseMs=18446744073709551615",
        "pauseMs=-1",
    ] {
        let r = relay
            .post(
                &format!("/v1/test/channels/{}/disconnect?{q}", ch.id),
                &[],
                "",
            )
            .await;
        assert_eq!((r.status, r.code().as_str()), (400, "BAD_REQUEST"), "{q}");
    }
    let r = relay
        .post(
            &format!("/v1/test/channels/{UNKNOWN_ID}/disconnect"),
            &[],
            "",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "CHANNEL_NOT_FOUND"));
    // Without --test-hooks the route does not exist.
    let plain = start(config()).await;
    let r = plain
        .post(&format!("/v1/test/channels/{}/disconnect", ch.id), &[], "")
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn slow_subscriber_gets_the_lost_range_mid_stream() {
    let relay = start(Config {
        replay_buffer_events: 2,
        ..config()
    })
    .await;
    let ch = relay.create().await;
    let mut sub = relay.live(T::Ws, &ch, "").await;
    // The subscriber does not read while far more than the socket buffers can
    // hold is published.
    const N: u64 = 400;
    let big = "x".repeat(60_000);
    for i in 1..=N {
        let r = relay
            .publish(&ch, &json!({"data": format!("{i}{big}")}).to_string())
            .await;
        assert_eq!(r.status, 200);
    }
    let mut expected = 1;
    let mut lost = 0;
    while expected <= N {
        let e = sub.next().await.unwrap();
        if e.event == "error" {
            assert_eq!(e.data["code"], "MESSAGES_LOST");
            assert_eq!(e.data["from"].as_u64(), Some(expected));
            let to = e.data["to"].as_u64().unwrap();
            assert!(to >= expected && to < N);
            lost += to - expected + 1;
            expected = to + 1;
            continue;
        }
        assert_eq!(e.id, Some(expected), "no gap without a MESSAGES_LOST frame");
        assert!(e.data.as_str().unwrap().starts_with(&expected.to_string()));
        expected += 1;
    }
    assert!(lost > 0, "the slow subscriber was told what it lost");
}

#[tokio::test]
async fn websocket_client_close_is_answered_with_the_same_code() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;

    let relay = start(config()).await;
    let ch = relay.create().await;
    for code in [1000u16, 4001] {
        let mut ws = relay.ws(&ch.id, &ch.q()).await;
        assert_eq!(ws.frame().await["event"], "ready");
        ws.socket
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "bye".into(),
            })))
            .await
            .unwrap();
        // A browser sees wasClean=true only if the relay answers with a close
        // frame before the TCP connection ends.
        let reply = tokio::time::timeout(WAIT, ws.socket.next())
            .await
            .expect("close reply in time");
        match reply {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), code),
            other => panic!("expected the relay's close frame with {code}, got {other:?}"),
        }
        // Then the connection ends cleanly (no reset, no further frame).
        let end = tokio::time::timeout(WAIT, ws.socket.next())
            .await
            .expect("connection ends in time");
        assert!(end.is_none(), "{end:?}");
    }
    // The subscriber slots were released.
    let m = relay.get("/metrics").await.body;
    assert!(
        m.contains("sse_relay_connections{transport=\"ws\"} 0"),
        "{m}"
    );
}

#[tokio::test]
async fn websocket_batch_frames_carry_bursts_as_arrays_in_order() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let mut ws = relay.ws(&ch.id, &format!("{}&batch=1", ch.q())).await;
    assert_eq!(
        ws.frame().await["event"],
        "ready",
        "control frames stay objects"
    );
    // 300 messages in one publish: the subscriber reads them in bursts.
    let messages: Vec<_> = (1..=300).map(|i| json!({ "n": i })).collect();
    let r = relay
        .publish(&ch, &json!({ "messages": messages }).to_string())
        .await;
    assert_eq!(r.json()["lastId"], 300);
    relay.end(&ch, r#"{"data":"bye"}"#).await;
    let mut events = Vec::new();
    let mut largest = 0;
    loop {
        match ws.next().await {
            WsItem::Frame(serde_json::Value::Array(list)) => {
                largest = largest.max(list.len());
                events.extend(list);
            }
            WsItem::Frame(one) => events.push(one),
            WsItem::Closed(code) => {
                assert_eq!(code, Some(1000));
                break;
            }
        }
    }
    assert!(largest > 1, "a burst went out as one array frame");
    let mut want: Vec<_> = (1..=300)
        .map(|i| json!({"id": i, "event": "message", "data": {"n": i}}))
        .collect();
    want.push(json!({"id": 301, "event": "end", "data": "bye"}));
    assert_eq!(events, want);

    // Without `batch=1`, every frame is one event object.
    let mut ws = relay.ws(&ch.id, &ch.q()).await;
    assert_eq!(ws.frame().await["event"], "ready");
    for i in 1..=300 {
        assert_eq!(ws.frame().await["id"], i);
    }
    assert_eq!(ws.frame().await["event"], "end");

    let sub = relay
        .subscribe(T::Ws, &ch.id, &format!("{}&batch=yes", ch.q()))
        .await;
    assert_eq!(refused(sub).await, ("BAD_REQUEST".to_owned(), Some(4400)));
}

/// Every event of an SSE stream, a `batch` event counting as its members
/// (checking that its `id:` is its last member's), until the stream ends.
/// Also returns the `id:` of every batch event and its size.
async fn sse_events_unbatched(s: &mut Sse) -> (Vec<serde_json::Value>, Vec<(u64, usize)>) {
    let (mut events, mut batches) = (Vec::new(), Vec::new());
    while let Some(e) = s.next().await {
        let id = e.id.as_deref().map(|i| i.parse::<u64>().unwrap());
        let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        match e.event.as_str() {
            "ping" => {}
            "batch" => {
                let list = data.as_array().expect("a batch is an array").clone();
                assert!(list.len() > 1, "a single event is never a batch");
                assert_eq!(id, list.last().unwrap()["id"].as_u64(), "id: is the last");
                batches.push((id.unwrap(), list.len()));
                events.extend(list);
            }
            name => {
                let mut one = json!({"event": name, "data": data});
                if let Some(id) = id {
                    one["id"] = json!(id);
                }
                events.push(one);
            }
        }
    }
    (events, batches)
}

#[tokio::test]
async fn sse_batch_events_carry_bursts_as_arrays_and_resume_exactly() {
    let relay = start(config()).await;
    let ch = relay.create().await;
    let q = format!("{}&batch=1", ch.q());
    let (sub, _) = Sub::Sse(relay.sse(&ch.id, &q, &[]).await).ready().await;
    let Sub::Sse(mut s) = sub else { unreachable!() };
    // 300 messages in one publish (one with line breaks in its JSON, which
    // become `data:` lines of the batch), then the end: read in bursts.
    let messages: Vec<_> = (1..=300)
        .map(|i| {
            if i == 150 {
                "{\"n\":\r\n150}".to_owned()
            } else {
                json!({ "n": i }).to_string()
            }
        })
        .collect();
    let body = format!("{{\"messages\":[{}]}}", messages.join(","));
    let r = relay.publish(&ch, &body).await;
    assert_eq!(r.json()["lastId"], 300);
    relay.end(&ch, r#"{"data":"bye"}"#).await;
    let (events, batches) = sse_events_unbatched(&mut s).await;
    assert!(!batches.is_empty(), "a burst went out as a batch event");
    let mut want: Vec<_> = (1..=300)
        .map(|i| json!({"id": i, "event": "message", "data": {"n": i}}))
        .collect();
    want.push(json!({"id": 301, "event": "end", "data": "bye"}));
    assert_eq!(events, want);

    // Resuming from a batch's id (what the browser's Last-Event-ID holds after
    // it) and from within a batch: exactly the events after it.
    let (first, _) = batches[0];
    for after in [first, first - 1] {
        let h = after.to_string();
        let mut s = relay.sse(&ch.id, &q, &[("last-event-id", &h)]).await;
        assert_eq!(s.next().await.unwrap().event, "ready");
        let (events, _) = sse_events_unbatched(&mut s).await;
        assert_eq!(events, want[after as usize..], "resumed after {after}");
    }

    // Without `batch=1` (or with `batch=0`), every event is its own.
    for extra in ["", "&batch=0"] {
        let mut s = relay.sse(&ch.id, &format!("{}{extra}", ch.q()), &[]).await;
        assert_eq!(s.next().await.unwrap().event, "ready");
        let (events, batches) = sse_events_unbatched(&mut s).await;
        assert_eq!((events, batches), (want.clone(), vec![]));
    }

    let sub = relay
        .subscribe(T::Sse, &ch.id, &format!("{}&batch=yes", ch.q()))
        .await;
    assert_eq!(refused(sub).await.0, "BAD_REQUEST");
}
