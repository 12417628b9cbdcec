//! Browser tests of the `SSEChannel` SDK (wasm-bindgen-test, headless Chromium and Firefox)
//! against a real `sse-relay` on loopback, started by `scripts/test-wasm.sh`
//! (`--test-hooks --heartbeat-ms 1000 --replay-buffer-events 16`).
//!
//! Every scenario runs over both transports: `scenarios!` makes one test per
//! scenario and transport. The tests publish with plain `fetch` and the
//! descriptor's publish token, as a cloud function would.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect, JSON};
use sse_channel::SseChannel;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

mod support;
use support::{fetch, get, obj, relay, sleep};

wasm_bindgen_test_configure!(run_in_browser);

fn json(v: &JsValue) -> String {
    JSON::stringify(v).unwrap().as_string().unwrap()
}

fn code_of(err: &JsValue) -> String {
    get(err, "code").as_string().unwrap_or_default()
}

/// Options for a test channel: the test relay, `transport`, fast retries.
fn options(transport: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let o = obj(&[
        ("relay", relay().into()),
        ("transport", transport.into()),
        (
            "reconnect",
            obj(&[("minDelayMs", 50.into()), ("maxDelayMs", 200.into())]),
        ),
    ]);
    for (k, v) in extra {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o
}

const EVENTS: [&str; 7] = [
    "open",
    "message",
    "end",
    "close",
    "error",
    "reconnecting",
    "state",
];

/// Records every event of a channel, in order.
struct Recorder {
    log: Rc<RefCell<Vec<(String, JsValue)>>>,
    _closures: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl Recorder {
    fn attach(ch: &SseChannel) -> Self {
        let log: Rc<RefCell<Vec<(String, JsValue)>>> = Rc::default();
        let mut closures = Vec::new();
        for ev in EVENTS {
            let log = log.clone();
            let c = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
                log.borrow_mut().push((ev.to_owned(), v))
            });
            ch.on(ev, c.as_ref().clone()).unwrap();
            closures.push(c);
        }
        Self {
            log,
            _closures: closures,
        }
    }

    fn count(&self, ev: &str) -> usize {
        self.log.borrow().iter().filter(|(e, _)| e == ev).count()
    }

    fn values(&self, ev: &str) -> Vec<JsValue> {
        self.log
            .borrow()
            .iter()
            .filter(|(e, _)| e == ev)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Messages as JSON text, in arrival order.
    fn messages(&self) -> Vec<String> {
        self.values("message").iter().map(json).collect()
    }

    /// The event names without `state`, `reconnecting` and `message` repeats
    /// collapsed: the lifecycle skeleton.
    fn skeleton(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (e, _) in self.log.borrow().iter() {
            if e == "state" || e == "reconnecting" {
                continue;
            }
            if e == "message" && out.last().is_some_and(|l| l == "message*") {
                continue;
            }
            out.push(if e == "message" {
                "message*".into()
            } else {
                e.clone()
            });
        }
        out
    }

    fn states(&self) -> Vec<String> {
        self.values("state")
            .iter()
            .map(|s| {
                let mut t = get(s, "from").as_string().unwrap();
                t.push('>');
                t.push_str(&get(s, "to").as_string().unwrap());
                t
            })
            .collect()
    }

    async fn wait(&self, what: &str, timeout_ms: i32, cond: impl Fn(&Self) -> bool) {
        let mut waited = 0;
        while !cond(self) {
            if waited >= timeout_ms {
                panic!(
                    "timed out after {timeout_ms} ms waiting for {what}; events so far: {:?}",
                    self.log
                        .borrow()
                        .iter()
                        .map(|(e, v)| format!(
                            "{e}:{}",
                            JSON::stringify(v)
                                .ok()
                                .and_then(|s| s.as_string())
                                .unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                );
            }
            sleep(20).await;
            waited += 20;
        }
    }
}

async fn open(ch: &SseChannel) -> Result<(), JsValue> {
    JsFuture::from(ch.open()).await.map(|_| ())
}

/// A channel of `transport`, opened, with a recorder attached before open().
async fn opened(transport: &str, extra: &[(&str, JsValue)]) -> (SseChannel, Recorder) {
    let ch = SseChannel::new(options(transport, extra)).unwrap();
    let rec = Recorder::attach(&ch);
    open(&ch).await.expect("open() resolves");
    assert_eq!(ch.transport().as_string().as_deref(), Some(transport));
    (ch, rec)
}

fn small_relay() -> &'static str {
    match option_env!("SSE_SMALL_RELAY_URL") {
        Some(url) => url,
        None => panic!("SSE_SMALL_RELAY_URL is unset: run scripts/test-wasm.sh"),
    }
}

/// The test proxy in front of the main relay (`/no-ws/…`, `/bad-token/…`).
fn proxy() -> &'static str {
    match option_env!("SSE_PROXY_URL") {
        Some(url) => url,
        None => panic!("SSE_PROXY_URL is unset: run scripts/test-wasm.sh"),
    }
}

async fn post(base: &str, path: &str, token: Option<&str>, body: &JsValue) -> (u16, JsValue) {
    let mut url = base.to_owned();
    url.push_str(path);
    let headers = obj(&[("content-type", "application/json".into())]);
    if let Some(t) = token {
        let mut auth = "Bearer ".to_owned();
        auth.push_str(t);
        Reflect::set(&headers, &"authorization".into(), &auth.into()).unwrap();
    }
    let init = obj(&[
        ("method", "POST".into()),
        ("headers", headers),
        ("body", JSON::stringify(body).unwrap().into()),
    ]);
    let resp: web_sys::Response = JsFuture::from(fetch(&url, &init))
        .await
        .expect("fetch to the relay")
        .unchecked_into();
    let status = resp.status();
    let body = JsFuture::from(resp.json().unwrap())
        .await
        .unwrap_or(JsValue::NULL);
    (status, body)
}

/// (relay, channelId, publishToken) of the descriptor.
fn descriptor(ch: &SseChannel) -> (String, String, String) {
    let d = ch.to_json().expect("toJSON after open");
    (
        get(&d, "relay").as_string().unwrap(),
        get(&d, "channelId").as_string().unwrap(),
        get(&d, "publishToken").as_string().unwrap(),
    )
}

/// Publishes `values` as one batch (the writer's way), asserting 200.
async fn publish(ch: &SseChannel, values: &[JsValue]) {
    publish_to(&descriptor(ch), values).await
}

async fn publish_to((base, id, token): &(String, String, String), values: &[JsValue]) {
    let batch: Array = values.iter().collect();
    let mut path = "/v1/channels/".to_owned();
    path.push_str(id);
    path.push_str("/messages");
    let (status, body) = post(
        base,
        &path,
        Some(token),
        &obj(&[("messages", batch.into())]),
    )
    .await;
    assert_eq!(status, 200, "publish answered {}", json(&body));
}

async fn publish_range(ch: &SseChannel, from: u32, to: u32) {
    let values: Vec<JsValue> = (from..=to).map(JsValue::from).collect();
    publish(ch, &values).await;
}

async fn end(ch: &SseChannel, data: &JsValue) {
    let (base, id, token) = descriptor(ch);
    let mut path = "/v1/channels/".to_owned();
    path.push_str(&id);
    path.push_str("/end");
    let (status, body) = post(&base, &path, Some(&token), &obj(&[("data", data.clone())])).await;
    assert_eq!(status, 200, "end answered {}", json(&body));
}

/// The relay's test hook: drop every subscriber stream now, refuse new ones for `pause_ms`.
async fn cut(ch: &SseChannel, pause_ms: u32) {
    let (base, id, _) = descriptor(ch);
    let mut path = "/v1/test/channels/".to_owned();
    path.push_str(&id);
    path.push_str("/disconnect?pauseMs=");
    path.push_str(&pause_ms.to_string());
    let (status, body) = post(&base, &path, None, &JsValue::NULL).await;
    assert_eq!(status, 200, "disconnect hook answered {}", json(&body));
}

fn numbers(from: u32, to: u32) -> Vec<String> {
    (from..=to).map(|i| i.to_string()).collect()
}

// ---------------------------------------------------------------- scenarios

/// Messages of every JSON type arrive once, in order; then end, then close.
async fn message_order(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    assert_eq!(ch.state(), "open");
    let values: Vec<JsValue> = vec![
        "step 1".into(),
        2.into(),
        JsValue::TRUE,
        JsValue::NULL,
        obj(&[(
            "nested",
            obj(&[("a", Array::of2(&1.into(), &"x".into()).into())]),
        )]),
        "line\nbreak \u{1F680}".into(),
    ];
    publish(&ch, &values).await;
    publish_range(&ch, 7, 30).await;
    for i in 31..=40 {
        publish_range(&ch, i, i).await; // one request per message, without waiting
    }
    end(&ch, &obj(&[("result", 42.into())])).await;
    rec.wait("close", 5_000, |r| r.count("close") == 1).await;

    let mut want: Vec<String> = values.iter().map(json).collect();
    want.extend(numbers(7, 40));
    assert_eq!(rec.messages(), want);
    assert_eq!(rec.skeleton(), ["open", "message*", "end", "close"]);
    assert_eq!(json(&rec.values("end")[0]), r#"{"result":42}"#);
    assert_eq!(
        rec.states(),
        ["idle>connecting", "connecting>open", "open>closed"]
    );
    assert_eq!(ch.state(), "closed");
    assert_eq!(ch.last_event_id(), 41.0);
    sleep(300).await;
    assert_eq!(rec.count("close"), 1);
    assert_eq!(rec.count("error"), 0);
}

/// close() is idempotent; open() twice or after close rejects INVALID_STATE.
async fn close_once(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    let again = open(&ch).await.expect_err("second open() rejects");
    assert_eq!(code_of(&again), "INVALID_STATE");
    ch.close();
    ch.close();
    assert_eq!(ch.state(), "closed");
    let after = open(&ch).await.expect_err("open() after close rejects");
    assert_eq!(code_of(&after), "INVALID_STATE");
    publish_range(&ch, 1, 3).await;
    sleep(400).await;
    assert_eq!(rec.skeleton(), ["open", "close"], "nothing after close");
    assert_eq!(rec.count("close"), 1);

    // close() before open(): closed at once, once; open() then rejects.
    let idle = SseChannel::new(options(transport, &[])).unwrap();
    let rec2 = Recorder::attach(&idle);
    idle.close();
    idle.close();
    assert_eq!(rec2.skeleton(), ["close"]);
    assert_eq!(rec2.states(), ["idle>closed"]);
    let err = open(&idle).await.expect_err("open() after close rejects");
    assert_eq!(code_of(&err), "INVALID_STATE");

    // close() while open() is pending: open() rejects, close once.
    let pending = SseChannel::new(options(transport, &[])).unwrap();
    let rec3 = Recorder::attach(&pending);
    let p = pending.open();
    pending.close();
    let err = JsFuture::from(p).await.expect_err("pending open() rejects");
    assert_eq!(code_of(&err), "INVALID_STATE");
    sleep(300).await;
    assert_eq!(rec3.skeleton(), ["close"]);
}

/// The stream is cut while messages are published: the client reconnects with
/// its last id and gets every message exactly once, in order.
async fn reconnect_resume(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    publish_range(&ch, 1, 3).await;
    rec.wait("3 messages", 5_000, |r| r.count("message") == 3)
        .await;

    cut(&ch, 600).await;
    publish_range(&ch, 4, 6).await;
    publish_range(&ch, 7, 10).await;
    rec.wait("10 messages", 10_000, |r| r.count("message") == 10)
        .await;
    assert!(rec.count("reconnecting") >= 1, "a reconnecting event");
    let first = &rec.values("reconnecting")[0];
    assert_eq!(get(first, "attempt").as_f64(), Some(1.0));
    assert!(get(first, "delayMs").as_f64().unwrap() >= 50.0);
    assert_eq!(get(first, "code").as_string().unwrap(), "NETWORK_ERROR");

    // A second cut without pause, with messages published right after.
    cut(&ch, 0).await;
    publish_range(&ch, 11, 12).await;
    rec.wait("12 messages", 10_000, |r| r.count("message") == 12)
        .await;
    rec.wait("open again", 5_000, |r| {
        r.states().last().map(String::as_str) == Some("reconnecting>open")
    })
    .await;
    end(&ch, &"done".into()).await;
    rec.wait("close", 5_000, |r| r.count("close") == 1).await;

    assert_eq!(rec.messages(), numbers(1, 12));
    assert_eq!(rec.skeleton(), ["open", "message*", "end", "close"]);
    let states = rec.states();
    assert_eq!(states[..2], ["idle>connecting", "connecting>open"]);
    assert!(
        states.iter().filter(|s| *s == "open>reconnecting").count() >= 2,
        "{states:?}"
    );
    assert_eq!(states.last().unwrap(), "open>closed");
    assert_eq!(rec.count("error"), 0, "transient failures are not errors");
    assert_eq!(
        ch.transport().as_string().as_deref(),
        Some(transport),
        "no fallback after a cut"
    );
}

/// The channel ends while the client is cut off: the reconnect replays what
/// it missed, then `end`, then `close` (an ended channel is retained).
async fn end_while_cut_off(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    publish_range(&ch, 1, 2).await;
    rec.wait("2 messages", 5_000, |r| r.count("message") == 2)
        .await;
    cut(&ch, 500).await;
    publish_range(&ch, 3, 4).await;
    end(&ch, &obj(&[("result", "late".into())])).await;
    rec.wait("close", 10_000, |r| r.count("close") == 1).await;
    assert_eq!(rec.messages(), numbers(1, 4));
    assert_eq!(rec.skeleton(), ["open", "message*", "end", "close"]);
    assert_eq!(json(&rec.values("end")[0]), r#"{"result":"late"}"#);
    assert_eq!(rec.count("error"), 0);
    assert_eq!(
        rec.states().last().map(String::as_str),
        Some("open>closed"),
        "{:?}",
        rec.states()
    );
}

/// Cut off longer than the replay buffer holds: MESSAGES_LOST with the range,
/// then the stream goes on.
async fn lost_range(transport: &str) {
    let (ch, rec) = opened(transport, &[("relay", small_relay().into())]).await;
    publish_range(&ch, 1, 1).await;
    rec.wait("1 message", 5_000, |r| r.count("message") == 1)
        .await;
    cut(&ch, 500).await;
    publish_range(&ch, 2, 31).await; // ids 2..=31; the relay keeps the last 16
    rec.wait("messages 16..31", 10_000, |r| r.count("message") == 17)
        .await;
    let errs = rec.values("error");
    assert_eq!(errs.len(), 1, "one MESSAGES_LOST error");
    assert_eq!(code_of(&errs[0]), "MESSAGES_LOST");
    assert_eq!(get(&errs[0], "from").as_f64(), Some(2.0));
    assert_eq!(get(&errs[0], "to").as_f64(), Some(15.0));
    assert!(errs[0].is_instance_of::<js_sys::Error>());
    let mut want = numbers(1, 1);
    want.extend(numbers(16, 31));
    assert_eq!(rec.messages(), want);
    assert_eq!(ch.state(), "open", "the stream goes on");
    publish_range(&ch, 32, 32).await;
    end(&ch, &JsValue::NULL).await;
    rec.wait("close", 5_000, |r| r.count("close") == 1).await;
    assert_eq!(rec.messages().last().unwrap(), "32");
    assert_eq!(rec.count("close"), 1);
}

/// A final code (the channel's lifetime is over) ends with error then close,
/// and no further attempt. The relay sends CHANNEL_EXPIRED in band to the live
/// stream, and answers any reconnect with the channel's expired token with
/// CHANNEL_EXPIRED too (crates/relay/tests/expiry.rs), so the code is exact.
async fn final_error(transport: &str) {
    let (ch, rec) = opened(transport, &[("ttlSecs", 1.into())]).await;
    rec.wait("close", 10_000, |r| r.count("close") == 1).await;
    let errs = rec.values("error");
    assert_eq!(errs.len(), 1);
    let code = code_of(&errs[0]);
    assert_eq!(code, "CHANNEL_EXPIRED", "final code");
    console_log!(
        "final_error({}): {} {:?} {:?}",
        transport,
        code,
        rec.states(),
        rec.values("reconnecting")
            .iter()
            .map(json)
            .collect::<Vec<_>>()
    );
    assert_eq!(rec.skeleton(), ["open", "error", "close"]);
    let n = rec.count("reconnecting");
    sleep(500).await;
    assert_eq!(
        rec.count("reconnecting"),
        n,
        "no attempt after a final error"
    );
    assert_eq!(ch.state(), "closed");
}

/// A subscribe token the relay refuses: open() rejects with UNAUTHORIZED,
/// after `error` then `close`, and nothing is retried. (The test proxy alters
/// the token on the way to the real relay, which answers in band.)
async fn bad_token(transport: &str) {
    let mut base = proxy().to_owned();
    base.push_str("/bad-token");
    let ch = SseChannel::new(options(transport, &[("relay", base.into())])).unwrap();
    let rec = Recorder::attach(&ch);
    let err = open(&ch).await.expect_err("open() rejects");
    assert_eq!(code_of(&err), "UNAUTHORIZED");
    assert!(err.is_instance_of::<js_sys::Error>());
    assert!(!get(&err, "message").as_string().unwrap().is_empty());
    assert_eq!(rec.skeleton(), ["error", "close"]);
    assert_eq!(code_of(&rec.values("error")[0]), "UNAUTHORIZED");
    assert_eq!(rec.states(), ["idle>connecting", "connecting>closed"]);
    sleep(300).await;
    assert_eq!(rec.count("reconnecting"), 0);
    assert_eq!(rec.count("close"), 1);
}

/// The channel ends and is forgotten (retention 0) while the client is cut
/// off: its reconnect meets CHANNEL_NOT_FOUND, a final code: error, then close.
async fn unknown_channel(transport: &str) {
    let (ch, rec) = opened(transport, &[("relay", small_relay().into())]).await;
    publish_range(&ch, 1, 1).await;
    rec.wait("1 message", 5_000, |r| r.count("message") == 1)
        .await;
    cut(&ch, 1_000).await;
    end(&ch, &"unseen".into()).await;
    rec.wait("close", 10_000, |r| r.count("close") == 1).await;
    let errs = rec.values("error");
    assert_eq!(errs.len(), 1);
    assert_eq!(code_of(&errs[0]), "CHANNEL_NOT_FOUND");
    assert_eq!(rec.skeleton(), ["open", "message*", "error", "close"]);
    assert_eq!(
        rec.states().last().map(String::as_str),
        Some("reconnecting>closed")
    );
    assert_eq!(ch.state(), "closed");
}

/// Cut off for good with maxAttempts 2: RECONNECT_EXHAUSTED, then close.
async fn reconnect_exhausted(transport: &str) {
    let extra = [(
        "reconnect",
        obj(&[
            ("minDelayMs", 50.into()),
            ("maxDelayMs", 100.into()),
            ("maxAttempts", 2.into()),
        ]),
    )];
    let (ch, rec) = opened(transport, &extra).await;
    cut(&ch, 5_000).await;
    rec.wait("close", 5_000, |r| r.count("close") == 1).await;
    let errs = rec.values("error");
    assert_eq!(errs.len(), 1);
    assert_eq!(code_of(&errs[0]), "RECONNECT_EXHAUSTED");
    assert_eq!(rec.count("reconnecting"), 2);
    assert_eq!(rec.skeleton(), ["open", "error", "close"]);
    assert_eq!(
        rec.states(),
        [
            "idle>connecting",
            "connecting>open",
            "open>reconnecting",
            "reconnecting>closed"
        ]
    );
}

/// A quiet channel stays open: heartbeats (1 s) keep the default watchdog
/// (2.5 s) quiet. A watchdog shorter than the heartbeat replaces the
/// connection (HEARTBEAT_TIMEOUT) and nothing is lost.
async fn heartbeat(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    sleep(3_500).await;
    assert_eq!(rec.count("reconnecting"), 0, "heartbeats are seen");
    assert_eq!(ch.state(), "open");
    ch.close();

    let (ch, rec) = opened(transport, &[("heartbeatTimeoutMs", 300.into())]).await;
    rec.wait("a heartbeat timeout", 5_000, |r| {
        r.values("reconnecting")
            .iter()
            .any(|v| get(v, "code").as_string().as_deref() == Some("HEARTBEAT_TIMEOUT"))
    })
    .await;
    publish_range(&ch, 1, 5).await;
    rec.wait("5 messages", 10_000, |r| r.count("message") == 5)
        .await;
    assert_eq!(rec.messages(), numbers(1, 5));
    ch.close();
}

/// Listener semantics: once, off (also of a function never added), removeAll*,
/// a throwing listener, a listener that closes the channel.
async fn listeners(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let mk = |tag: &'static str| {
        let seen = seen.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
            let mut s = tag.to_owned();
            s.push(':');
            s.push_str(&json(&v));
            seen.borrow_mut().push(s)
        })
    };
    let thrower = Closure::<dyn FnMut(JsValue)>::new(|_: JsValue| {
        wasm_bindgen::throw_str("listener failure (expected by the test)")
    });
    let a = mk("a");
    let b = mk("b");
    let never = mk("never");
    ch.on("message", thrower.as_ref().clone()).unwrap();
    ch.on("message", a.as_ref().clone()).unwrap();
    ch.once("message", b.as_ref().clone()).unwrap();
    ch.off("message", never.as_ref().clone()); // never added: removes nothing
    ch.off("end", a.as_ref().clone()); // not on this event: nothing
    assert_eq!(
        code_of(
            &ch.on("message", JsValue::from(3))
                .expect_err("not a function")
        ),
        "INVALID_OPTIONS"
    );
    publish_range(&ch, 1, 2).await;
    rec.wait("2 messages", 5_000, |r| r.count("message") == 2)
        .await;
    assert_eq!(*seen.borrow(), ["a:1", "b:1", "a:2"]);

    ch.off("message", a.as_ref().clone());
    publish_range(&ch, 3, 3).await;
    rec.wait("3 messages", 5_000, |r| r.count("message") == 3)
        .await;
    assert_eq!(seen.borrow().len(), 3, "a was removed");

    ch.on("message", a.as_ref().clone()).unwrap();
    ch.remove_all_listeners(Some("message".into()));
    publish_range(&ch, 4, 4).await;
    sleep(300).await;
    assert_eq!(seen.borrow().len(), 3, "removeAllListeners(event)");
    assert_eq!(ch.state(), "open", "a throwing listener broke nothing");

    // A listener that closes the channel from inside `message`.
    let closer_target: Rc<RefCell<Option<SseChannel>>> = Rc::default();
    let ch2 = SseChannel::new(options(transport, &[])).unwrap();
    let rec2 = Recorder::attach(&ch2);
    open(&ch2).await.unwrap();
    let closer = {
        let target = closer_target.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
            if let Some(c) = target.borrow().as_ref() {
                c.close();
            }
        })
    };
    ch2.on("message", closer.as_ref().clone()).unwrap();
    let desc2 = descriptor(&ch2);
    *closer_target.borrow_mut() = Some(ch2);
    let five: Vec<JsValue> = (1..=5).map(JsValue::from).collect();
    publish_to(&desc2, &five).await;
    rec2.wait("close", 5_000, |r| r.count("close") == 1).await;
    sleep(200).await;
    assert_eq!(rec2.skeleton(), ["open", "message*", "close"]);
    assert_eq!(
        rec2.count("message"),
        1,
        "nothing after close() in a listener"
    );

    // removeAllListeners() with no event: nothing is heard any more.
    ch.remove_all_listeners(None);
    ch.close();
    assert_eq!(rec.count("close"), 0);
}

/// Inside a `message` listener the getters report that message's id, also
/// amid a burst that arrived in one frame (delivered to the listeners by the
/// JS reader, whose ids the wasm reads back); a `once` listener added amid the
/// burst hears the next message only; the resume point after a cut is the
/// last id delivered, so nothing is repeated or lost.
async fn ids_in_listeners(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    let ch = Rc::new(ch);
    let seen: Rc<RefCell<Vec<(f64, f64, f64)>>> = Rc::default();
    let once_seen: Rc<RefCell<Vec<f64>>> = Rc::default();
    let once = {
        let once_seen = once_seen.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
            once_seen.borrow_mut().push(v.as_f64().unwrap())
        })
    };
    let f = {
        let (ch, seen, once) = (Rc::downgrade(&ch), seen.clone(), once.as_ref().clone());
        Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
            let ch = ch.upgrade().unwrap();
            let sub = ch.to_subscription().unwrap();
            let v = v.as_f64().unwrap();
            seen.borrow_mut().push((
                v,
                ch.last_event_id(),
                get(&sub, "lastEventId").as_f64().unwrap(),
            ));
            if v == 10.0 {
                ch.once("message", once.clone()).unwrap();
            }
        })
    };
    ch.on("message", f.as_ref().clone()).unwrap();
    publish_range(&ch, 1, 20).await;
    rec.wait("20 messages", 5_000, |r| r.count("message") == 20)
        .await;
    let want: Vec<(f64, f64, f64)> = (1..=20).map(|i| (i.into(), i.into(), i.into())).collect();
    assert_eq!(*seen.borrow(), want);
    assert_eq!(*once_seen.borrow(), [11.0]);
    assert_eq!(ch.last_event_id(), 20.0);

    cut(&ch, 200).await;
    rec.wait("reconnecting", 5_000, |r| r.count("reconnecting") >= 1)
        .await;
    publish_range(&ch, 21, 30).await;
    rec.wait("30 messages", 10_000, |r| r.count("message") == 30)
        .await;
    assert_eq!(rec.messages(), numbers(1, 30));
    assert_eq!(seen.borrow().len(), 30);
    ch.close();
}

/// toJSON: refused before open() resolved; after, the descriptor of
/// docs/protocol.md, which JSON.stringify uses.
async fn serialization(transport: &str) {
    let ch = SseChannel::new(options(transport, &[])).unwrap();
    assert_eq!(ch.state(), "idle");
    assert!(ch.channel_id().is_undefined(), "channelId before creation");
    assert!(
        ch.transport().is_undefined(),
        "transport before a connection"
    );
    assert_eq!(
        code_of(&ch.to_json().expect_err("before open")),
        "INVALID_STATE"
    );
    let p = ch.open();
    assert_eq!(ch.state(), "connecting");
    assert_eq!(
        code_of(&ch.to_json().expect_err("while opening")),
        "INVALID_STATE"
    );
    JsFuture::from(p).await.unwrap();

    let d = ch.to_json().unwrap();
    let keys: Vec<String> = Object::keys(d.unchecked_ref::<Object>())
        .iter()
        .map(|k| k.as_string().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "type",
            "version",
            "relay",
            "channelId",
            "publishToken",
            "expiresAt"
        ]
    );
    assert_eq!(get(&d, "type").as_string().unwrap(), "SSEChannel");
    assert_eq!(get(&d, "version").as_f64(), Some(1.0));
    assert_eq!(get(&d, "relay").as_string().unwrap(), relay());
    let id = get(&d, "channelId").as_string().unwrap();
    assert_eq!(Some(id.clone()), ch.channel_id().as_string());
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert!(get(&d, "expiresAt").as_f64().unwrap() > js_sys::Date::now());
    assert!(
        !json(&d).contains("subscribe"),
        "the subscribe token stays in the browser"
    );

    // What callFunction sends: JSON.stringify of the data that holds the channel.
    let js_ch = JsValue::from(ch);
    let payload = obj(&[("sseChannel", js_ch.clone())]);
    let text = json(&payload);
    let back = JSON::parse(&text).unwrap();
    assert_eq!(json(&get(&back, "sseChannel")), json(&d));
    let close: Function = get(&js_ch, "close").unchecked_into();
    close.call0(&js_ch).unwrap();
    assert_eq!(get(&js_ch, "state").as_string().unwrap(), "closed");
    // Still serializable after close (the descriptor does not change).
    assert_eq!(json(&js_ch), json(&d));
}

/// The browser's `online` event skips the rest of a backoff delay: with a
/// 60 s delay, the channel is back only because of the event.
async fn online_skips_backoff(transport: &str) {
    let slow = obj(&[("minDelayMs", 60_000.into()), ("maxDelayMs", 60_000.into())]);
    let (ch, rec) = opened(transport, &[("reconnect", slow)]).await;
    cut(&ch, 0).await;
    rec.wait("reconnecting", 5_000, |r| r.count("reconnecting") == 1)
        .await;
    assert_eq!(ch.state(), "reconnecting");
    publish_range(&ch, 1, 2).await;
    let online = web_sys::Event::new("online").unwrap();
    js_sys::global()
        .unchecked_into::<web_sys::EventTarget>()
        .dispatch_event(&online)
        .unwrap();
    rec.wait("open again", 10_000, |r| {
        r.states().last().map(String::as_str) == Some("reconnecting>open")
    })
    .await;
    rec.wait("2 messages", 5_000, |r| r.count("message") == 2)
        .await;
    assert_eq!(rec.messages(), numbers(1, 2));
    assert_eq!(rec.count("reconnecting"), 1);
    ch.close();
}

fn dispatch(name: &str) {
    let e = web_sys::Event::new(name).unwrap();
    js_sys::global()
        .unchecked_into::<web_sys::EventTarget>()
        .dispatch_event(&e)
        .unwrap();
}

/// `offline` then `online` while live: the connection is replaced at once
/// (it may be dead after a network change) and nothing is lost or repeated.
/// `online` alone leaves a live connection alone.
async fn offline_online_replaces(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    publish_range(&ch, 1, 2).await;
    rec.wait("2 messages", 5_000, |r| r.count("message") == 2)
        .await;
    dispatch("online");
    sleep(100).await;
    assert_eq!(rec.count("reconnecting"), 0, "online alone changes nothing");
    dispatch("offline");
    sleep(50).await;
    assert_eq!(ch.state(), "open", "offline alone changes nothing");
    dispatch("online");
    assert_eq!(ch.state(), "reconnecting");
    let r = &rec.values("reconnecting")[0];
    assert_eq!(get(r, "delayMs").as_f64(), Some(0.0));
    publish_range(&ch, 3, 4).await;
    rec.wait("open again", 5_000, |r| {
        r.states().last().map(String::as_str) == Some("reconnecting>open")
    })
    .await;
    publish_range(&ch, 5, 5).await;
    rec.wait("5 messages", 5_000, |r| r.count("message") == 5)
        .await;
    sleep(100).await;
    assert_eq!(rec.messages(), numbers(1, 5));
    assert_eq!(rec.count("reconnecting"), 1);
    assert_eq!(rec.count("error"), 0);
    ch.close();
}

/// A closed channel leaves nothing behind: 60 channels, each opened, given
/// messages and `end`, closed and dropped, grow neither the wasm memory nor
/// the allocator's bytes in use; 40 more whose handles are
/// still held keep no JS value alive in wasm (wasm-bindgen's count of live
/// externrefs: listeners, closures, timers, connections, promises), as a
/// page's listener that closes over its channel holds it: listeners are
/// released after `close`, so no cycle through wasm keeps a channel's JS
/// object alive.
async fn nothing_left_behind(transport: &str) {
    async fn one(transport: &str) -> SseChannel {
        let (ch, rec) = opened(transport, &[]).await;
        publish_range(&ch, 1, 3).await;
        end(&ch, &JsValue::from(7)).await;
        rec.wait("close", 5_000, |r| r.count("close") == 1).await;
        assert_eq!(rec.count("message"), 3);
        ch
    }
    // Warm up: the first channels allocate what later ones reuse.
    for _ in 0..5 {
        one(transport).await;
    }
    sleep(50).await;
    // Dropped one by one: the wasm memory does not grow (it never shrinks, so
    // this comes before holding many at once below), and the allocator's bytes
    // in use do not either. Those are exact (a leak of one 8-byte block per
    // channel shows long before a new page), but what other tests left running
    // (a channel closing later, a timer) may free or allocate meanwhile: a
    // leak grows every round of 20 channels, such noise one round at most.
    let pages = wasm_memory_bytes();
    let mut in_use = vec![heap_in_use()];
    for _ in 0..3 {
        for _ in 0..20 {
            one(transport).await;
        }
        in_use.push(heap_in_use());
    }
    assert_eq!(wasm_memory_bytes(), pages, "wasm memory grew");
    let grew = in_use.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(
        grew <= 1,
        "bytes in use in wasm after each 20 more closed channels: {in_use:?}"
    );
    // Held: no JS value stays alive in wasm but the test's own handles (each
    // `SseChannel` here is a reference to the JS object).
    let refs = wasm_bindgen::externref_heap_live_count();
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(one(transport).await);
    }
    // A listener added after close is not kept either.
    let f = Closure::<dyn FnMut(JsValue)>::new(|_| {});
    held[0]
        .on("message", f.as_ref().clone())
        .expect("on() after close is accepted");
    drop(f);
    // Transport callbacks that were already queued run and find nothing.
    sleep(50).await;
    assert_eq!(
        wasm_bindgen::externref_heap_live_count(),
        refs + held.len() as u32,
        "live JS values held by wasm after 40 closed channels"
    );
    drop(held);
    assert_eq!(
        wasm_bindgen::externref_heap_live_count(),
        refs,
        "live JS values held by wasm once the handles are dropped"
    );
}

/// `POST /v1/channels/{id}/{route}` with the publish token (`fail`).
async fn post_channel(ch: &SseChannel, route: &str, body: &JsValue) -> (u16, JsValue) {
    let (base, id, token) = descriptor(ch);
    let mut path = "/v1/channels/".to_owned();
    path.push_str(&id);
    path.push('/');
    path.push_str(route);
    post(&base, &path, Some(&token), body).await
}

/// `writer.fail` on the wire: the stored FUNCTION_FAILED event gives `error`
/// (code, message, details) after every message, then `close`, no reconnect.
async fn function_failed(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    publish_range(&ch, 1, 3).await;
    let details = obj(&[("step", 3.into())]);
    let (status, body) = post_channel(
        &ch,
        "fail",
        &obj(&[("message", "step 3 broke".into()), ("details", details)]),
    )
    .await;
    assert_eq!(status, 200, "fail answered {}", json(&body));
    rec.wait("close", 10_000, |r| r.count("close") == 1).await;
    assert_eq!(rec.messages(), numbers(1, 3));
    assert_eq!(rec.skeleton(), ["open", "message*", "error", "close"]);
    let err = &rec.values("error")[0];
    assert_eq!(code_of(err), "FUNCTION_FAILED");
    assert_eq!(get(err, "message").as_string().unwrap(), "step 3 broke");
    assert_eq!(json(&get(err, "details")), r#"{"step":3}"#);
    assert_eq!(ch.last_event_id(), 4.0, "the final event's id is recorded");
    let n = rec.count("reconnecting");
    sleep(500).await;
    assert_eq!(
        rec.count("reconnecting"),
        n,
        "no attempt after FUNCTION_FAILED"
    );
}

/// The function fails while the page is cut off: the resumed stream replays
/// the missed messages, then the final event, then `close`.
async fn function_failed_after_reconnect(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    publish_range(&ch, 1, 2).await;
    rec.wait("2 messages", 5_000, |r| r.count("message") == 2)
        .await;
    cut(&ch, 800).await;
    publish_range(&ch, 3, 4).await;
    let (status, body) = post_channel(&ch, "fail", &obj(&[("message", "gone".into())])).await;
    assert_eq!(status, 200, "fail answered {}", json(&body));
    rec.wait("close", 15_000, |r| r.count("close") == 1).await;
    assert!(rec.count("reconnecting") >= 1, "it was cut off");
    assert_eq!(rec.messages(), numbers(1, 4));
    assert_eq!(rec.skeleton(), ["open", "message*", "error", "close"]);
    assert_eq!(code_of(&rec.values("error")[0]), "FUNCTION_FAILED");
}

/// `cancel(reason)`: resolves, every reader gets `error` CHANNEL_CANCELLED
/// with the reason, then `close`; the function's next publish is refused 409.
async fn cancel(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    publish_range(&ch, 1, 2).await;
    rec.wait("2 messages", 5_000, |r| r.count("message") == 2)
        .await;
    let sub = ch.to_subscription().unwrap();
    let other = SseChannel::attach(sub, options(transport, &[])).unwrap();
    let other_rec = Recorder::attach(&other);
    open(&other).await.expect("the attached channel opens");
    JsFuture::from(ch.cancel(Some("user pressed stop".into())))
        .await
        .expect("cancel() resolves");
    for r in [&rec, &other_rec] {
        r.wait("close", 10_000, |r| r.count("close") == 1).await;
        let errs = r.values("error");
        assert_eq!(errs.len(), 1);
        assert_eq!(code_of(&errs[0]), "CHANNEL_CANCELLED");
        assert_eq!(
            get(&errs[0], "message").as_string().unwrap(),
            "user pressed stop"
        );
    }
    assert_eq!(
        other_rec.messages(),
        Vec::<String>::new(),
        "resumed after 2"
    );
    let (status, body) = post_channel(
        &ch,
        "messages",
        &obj(&[("messages", Array::of1(&3.into()).into())]),
    )
    .await;
    assert_eq!(status, 409, "{}", json(&body));
    assert_eq!(
        get(&get(&body, "error"), "code").as_string().unwrap(),
        "CHANNEL_CANCELLED"
    );
    // Cancelling again is idempotent; an attached channel serializes no descriptor.
    JsFuture::from(ch.cancel(None)).await.expect("again");
    assert_eq!(code_of(&other.to_json().unwrap_err()), "INVALID_STATE");
}

/// A reload: the subscription kept in the page (sessionStorage) attaches a
/// new channel that gets every later message once, then `end`, also when the
/// function finished while nobody listened; two attached at once get the same.
async fn attach_after_reload(transport: &str) {
    let (ch, rec) = opened(transport, &[]).await;
    publish_range(&ch, 1, 3).await;
    rec.wait("3 messages", 5_000, |r| r.count("message") == 3)
        .await;
    let sub = JSON::stringify(&ch.to_subscription().unwrap()).unwrap();
    let parsed = JSON::parse(&String::from(sub)).unwrap();
    assert_eq!(get(&parsed, "type").as_string().unwrap(), "SSESubscription");
    assert_eq!(get(&parsed, "lastEventId").as_f64(), Some(3.0));
    assert!(get(&parsed, "publishToken").is_undefined());
    let d = descriptor(&ch);
    ch.close();
    publish_to(&d, &(4..=6).map(JsValue::from).collect::<Vec<_>>()).await;
    let mut path = "/v1/channels/".to_owned();
    path.push_str(&d.1);
    path.push_str("/end");
    let (status, _) = post(&d.0, &path, Some(&d.2), &obj(&[("data", "done".into())])).await;
    assert_eq!(status, 200);
    let tabs: Vec<_> = (0..2)
        .map(|_| {
            let c = SseChannel::attach(parsed.clone(), options(transport, &[])).unwrap();
            let r = Recorder::attach(&c);
            (c, r)
        })
        .collect();
    for (c, _) in &tabs {
        open(c).await.expect("the attached channel opens");
    }
    for (c, r) in &tabs {
        r.wait("close", 10_000, |r| r.count("close") == 1).await;
        assert_eq!(r.messages(), numbers(4, 6));
        assert_eq!(r.skeleton(), ["open", "message*", "end", "close"]);
        assert_eq!(json(&r.values("end")[0]), r#""done""#);
        assert_eq!(c.channel_id().as_string(), Some(d.1.clone()));
    }
    // Malformed subscriptions are refused with a code.
    let bad = SseChannel::attach(obj(&[("type", "SSEChannel".into())]), JsValue::UNDEFINED);
    assert_eq!(code_of(&bad.err().unwrap()), "INVALID_OPTIONS");
}

fn wasm_memory_bytes() -> f64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    get(&memory.buffer(), "byteLength").as_f64().unwrap()
}

/// The wasm memory in use: its size minus what the allocator holds unused.
fn heap_in_use() -> f64 {
    wasm_memory_bytes() - sse_channel::heap_free_bytes() as f64
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod websocket {
            $(#[wasm_bindgen_test::wasm_bindgen_test]
            async fn $name() { super::$name("websocket").await })*
        }
        mod eventsource {
            $(#[wasm_bindgen_test::wasm_bindgen_test]
            async fn $name() { super::$name("eventsource").await })*
        }
    };
}

scenarios!(
    message_order,
    close_once,
    reconnect_resume,
    end_while_cut_off,
    lost_range,
    final_error,
    bad_token,
    unknown_channel,
    reconnect_exhausted,
    heartbeat,
    listeners,
    ids_in_listeners,
    serialization,
    online_skips_backoff,
    offline_online_replaces,
    nothing_left_behind,
    function_failed,
    function_failed_after_reconnect,
    cancel,
    attach_after_reload,
);

// ------------------------------------------------- transport-independent tests

/// The JS surface by its JS names (what pages call), on the JS object. (The other spellings
/// `addListener`, `removeListener`, `removeAllListener` and the browser's `installUniCloud` are the
/// package's JavaScript, tested on the built package: `tests/node/unicloud-browser.test.mjs`.)
#[wasm_bindgen_test]
async fn js_names() {
    let ch = JsValue::from(SseChannel::new(options("websocket", &[])).unwrap());
    let call = |name: &str, args: &[JsValue]| -> Result<JsValue, JsValue> {
        let f: Function = get(&ch, name).dyn_into().expect(name);
        let args: Array = args.iter().collect();
        f.apply(&ch, &args)
    };
    for name in [
        "open",
        "close",
        "on",
        "once",
        "off",
        "removeAllListeners",
        "toJSON",
    ] {
        assert!(get(&ch, name).is_function(), "method {name}");
    }
    assert_eq!(get(&ch, "state").as_string().unwrap(), "idle");
    assert!(get(&ch, "channelId").is_null() || get(&ch, "channelId").is_undefined());
    assert!(get(&ch, "transport").is_null() || get(&ch, "transport").is_undefined());
    assert_eq!(get(&ch, "lastEventId").as_f64(), Some(0.0));
    let ctor = get(&ch, "constructor");
    assert!(get(&ctor, "configure").is_function(), "static configure");
    assert_eq!(get(&ctor, "name").as_string().unwrap(), "SSEChannel");

    let got: Rc<RefCell<Vec<String>>> = Rc::default();
    let g = got.clone();
    let listener =
        Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| g.borrow_mut().push(json(&v)));
    let f: JsValue = listener.as_ref().clone();
    call("on", &["message".into(), f.clone()]).unwrap();
    let p: Promise = call("open", &[]).unwrap().dyn_into().unwrap();
    JsFuture::from(p).await.unwrap();
    assert_eq!(get(&ch, "state").as_string().unwrap(), "open");
    assert_eq!(get(&ch, "transport").as_string().unwrap(), "websocket");
    let d = call("toJSON", &[]).unwrap();
    assert_eq!(
        get(&ch, "channelId").as_string(),
        get(&d, "channelId").as_string()
    );
    let (base, id, token) = (
        get(&d, "relay").as_string().unwrap(),
        get(&d, "channelId").as_string().unwrap(),
        get(&d, "publishToken").as_string().unwrap(),
    );
    let one: Vec<JsValue> = vec!["a".into()];
    publish_to(&(base.clone(), id.clone(), token.clone()), &one).await;
    for _ in 0..250 {
        if !got.borrow().is_empty() {
            break;
        }
        sleep(20).await;
    }
    assert_eq!(*got.borrow(), ["\"a\""]);
    assert_eq!(get(&ch, "lastEventId").as_f64(), Some(1.0));
    call("off", &["message".into(), f]).unwrap();
    let two: Vec<JsValue> = vec!["b".into()];
    publish_to(&(base, id, token), &two).await;
    sleep(300).await;
    assert_eq!(got.borrow().len(), 1, "off by its JS name");
    call("close", &[]).unwrap();
    assert_eq!(get(&ch, "state").as_string().unwrap(), "closed");
}

/// `auto` uses WebSocket when it works.
#[wasm_bindgen_test]
async fn auto_prefers_websocket() {
    let ch = SseChannel::new(options("auto", &[])).unwrap();
    open(&ch).await.unwrap();
    assert_eq!(ch.transport().as_string().as_deref(), Some("websocket"));
    ch.close();
}

/// `auto` falls back to EventSource, for good, when a WebSocket cannot open
/// (here: a proxy that refuses upgrades), and the channel works through it.
#[wasm_bindgen_test]
async fn auto_falls_back_to_eventsource() {
    let mut no_ws = proxy().to_owned();
    no_ws.push_str("/no-ws");
    let (ch, rec) = opened_auto(&no_ws).await;
    assert_eq!(ch.transport().as_string().as_deref(), Some("eventsource"));
    publish_range(&ch, 1, 2).await;
    rec.wait("2 messages", 5_000, |r| r.count("message") == 2)
        .await;
    cut(&ch, 0).await;
    publish_range(&ch, 3, 3).await;
    rec.wait("3 messages", 10_000, |r| r.count("message") == 3)
        .await;
    assert_eq!(ch.transport().as_string().as_deref(), Some("eventsource"));
    end(&ch, &JsValue::NULL).await;
    rec.wait("close", 5_000, |r| r.count("close") == 1).await;
    assert_eq!(rec.messages(), numbers(1, 3));
    assert_eq!(rec.skeleton(), ["open", "message*", "end", "close"]);
}

/// A unique proxy prefix (its counters start fresh) such as `/cut-<random>`.
fn tagged(kind: &str) -> String {
    let mut p = proxy().to_owned();
    p.push('/');
    p.push_str(kind);
    p.push('-');
    p.push_str(&((js_sys::Math::random() * 1e9) as u64).to_string());
    p
}

/// Channel creation cut 6 times (no answer), or refused twice with 503: retried
/// with backoff within openTimeoutMs, so open() resolves and the channel works.
#[wasm_bindgen_test]
async fn creation_is_retried() {
    for kind in ["cut", "busy"] {
        let relay = tagged(kind);
        let ch = SseChannel::new(options("auto", &[("relay", relay.as_str().into())])).unwrap();
        let rec = Recorder::attach(&ch);
        open(&ch).await.expect("open() resolves after retries");
        let codes: Vec<String> = rec
            .values("reconnecting")
            .iter()
            .map(|r| get(r, "code").as_string().unwrap())
            .collect();
        let want = if kind == "cut" {
            "NETWORK_ERROR"
        } else {
            "SHUTTING_DOWN"
        };
        // A browser may retry a cut request once on its own: at least 3 of the 6
        // cuts, and both 503s, reach the SDK.
        assert!(codes.len() >= 2, "{kind}: creation was retried: {codes:?}");
        assert!(codes.iter().all(|c| c == want), "{kind}: {codes:?}");
        assert_eq!(
            rec.states(),
            ["idle>connecting", "connecting>open"],
            "{kind}"
        );
        publish_range(&ch, 1, 2).await;
        rec.wait("2 messages", 5_000, |r| r.count("message") == 2)
            .await;
        ch.close();
    }
}

/// `auto` also falls back to EventSource when the WebSocket upgrade hangs, or
/// when it opens and never delivers `ready` (a proxy that buffers), within
/// openTimeoutMs (the WebSocket gets half of it).
#[wasm_bindgen_test]
async fn auto_falls_back_when_the_websocket_is_silent() {
    for kind in ["/ws-hang", "/ws-silent"] {
        let mut relay = proxy().to_owned();
        relay.push_str(kind);
        let ch = SseChannel::new(options(
            "auto",
            &[
                ("relay", relay.as_str().into()),
                ("openTimeoutMs", 3_000.into()),
            ],
        ))
        .unwrap();
        let rec = Recorder::attach(&ch);
        open(&ch)
            .await
            .expect("open() resolves through EventSource");
        assert_eq!(
            ch.transport().as_string().as_deref(),
            Some("eventsource"),
            "{kind}"
        );
        publish_range(&ch, 1, 2).await;
        rec.wait("2 messages", 5_000, |r| r.count("message") == 2)
            .await;
        assert_eq!(rec.skeleton(), ["open", "message*"], "{kind}");
        ch.close();
    }
}

/// A path that delivers `ready` and drops at once, every time: the failure
/// count does not restart at each `ready`, so maxAttempts ends the loop.
#[wasm_bindgen_test]
async fn ready_then_drop_ends_with_max_attempts() {
    let mut relay = proxy().to_owned();
    relay.push_str("/ready-drop");
    let ch = SseChannel::new(options(
        "websocket",
        &[
            ("relay", relay.as_str().into()),
            (
                "reconnect",
                obj(&[
                    ("minDelayMs", 20.into()),
                    ("maxDelayMs", 50.into()),
                    ("maxAttempts", 3.into()),
                ]),
            ),
        ],
    ))
    .unwrap();
    let rec = Recorder::attach(&ch);
    open(&ch).await.expect("the first ready opens");
    rec.wait("close", 10_000, |r| r.count("close") == 1).await;
    let errs = rec.values("error");
    assert_eq!(errs.len(), 1);
    assert_eq!(code_of(&errs[0]), "RECONNECT_EXHAUSTED");
    assert_eq!(rec.count("reconnecting"), 3);
}

async fn opened_auto(relay_url: &str) -> (SseChannel, Recorder) {
    let ch = SseChannel::new(options("auto", &[("relay", relay_url.into())])).unwrap();
    let rec = Recorder::attach(&ch);
    open(&ch).await.expect("open() resolves");
    (ch, rec)
}

/// A relay port that refuses connections: creation is retried until
/// openTimeoutMs, then NETWORK_ERROR (the last failure), error then close.
#[wasm_bindgen_test]
async fn open_refused_is_network_error() {
    let ch = SseChannel::new(obj(&[
        ("relay", "http://127.0.0.1:1".into()),
        ("openTimeoutMs", 1_500.into()),
        ("reconnect", obj(&[("minDelayMs", 100.into())])),
    ]))
    .unwrap();
    let rec = Recorder::attach(&ch);
    let err = open(&ch).await.expect_err("rejects");
    assert_eq!(code_of(&err), "NETWORK_ERROR");
    assert!(err.is_instance_of::<js_sys::Error>());
    assert_eq!(rec.skeleton(), ["error", "close"]);
    assert!(rec.count("reconnecting") >= 2, "creation was retried");
    assert_eq!(ch.state(), "closed");
}

/// A relay that accepts and never answers: OPEN_TIMEOUT after openTimeoutMs.
#[wasm_bindgen_test]
async fn open_timeout() {
    let hole = match option_env!("SSE_BLACKHOLE_URL") {
        Some(url) => url,
        None => panic!("SSE_BLACKHOLE_URL is unset: run scripts/test-wasm.sh"),
    };
    let ch = SseChannel::new(obj(&[
        ("relay", hole.into()),
        ("openTimeoutMs", 400.into()),
    ]))
    .unwrap();
    let rec = Recorder::attach(&ch);
    let err = open(&ch).await.expect_err("rejects");
    assert_eq!(code_of(&err), "OPEN_TIMEOUT");
    assert_eq!(rec.skeleton(), ["error", "close"]);
    assert_eq!(rec.states(), ["idle>connecting", "connecting>closed"]);
}

/// Invalid options throw INVALID_OPTIONS; no relay anywhere rejects open() with
/// INVALID_OPTIONS; `SSEChannel.configure` then makes `new SSEChannel()` work.
#[wasm_bindgen_test]
async fn options_and_configure() {
    for bad in [
        obj(&[("transport", "carrier-pigeon".into())]),
        obj(&[("relay", "ftp://x".into())]),
        obj(&[("relay", "https://user@relay.example".into())]),
        obj(&[("openTimeoutMs", (-1).into())]),
        obj(&[(
            "reconnect",
            obj(&[("minDelayMs", 500.into()), ("maxDelayMs", 10.into())]),
        )]),
        // 0 would retry without delay, forever.
        obj(&[("reconnect", obj(&[("minDelayMs", 0.into())]))]),
        JsValue::from("relay"),
    ] {
        let err = SseChannel::new(bad.clone())
            .err()
            .expect("invalid options throw");
        assert_eq!(code_of(&err), "INVALID_OPTIONS", "{}", json(&bad));
    }
    // Every option's bounds (read by src/channel/options.js): (options, what the message names).
    let rec = |k: &str, v: JsValue| obj(&[("reconnect", obj(&[(k, v)]))]);
    let cases: Vec<(JsValue, &str)> = vec![
        (obj(&[("transport", 1.into())]), "`transport`"),
        (obj(&[("reconnect", "fast".into())]), "`reconnect`"),
        (rec("minDelayMs", 1.5.into()), "`reconnect.minDelayMs`"),
        (rec("minDelayMs", "5".into()), "`reconnect.minDelayMs`"),
        (rec("maxDelayMs", (-1).into()), "`reconnect.maxDelayMs`"),
        (
            rec("maxDelayMs", 2_147_483_648.0.into()),
            "`reconnect.maxDelayMs`",
        ),
        (rec("maxAttempts", (-1).into()), "`reconnect.maxAttempts`"),
        (
            rec("maxAttempts", f64::NAN.into()),
            "`reconnect.maxAttempts`",
        ),
        (
            rec("maxAttempts", f64::NEG_INFINITY.into()),
            "`reconnect.maxAttempts`",
        ),
        (obj(&[("openTimeoutMs", 0.into())]), "`openTimeoutMs`"),
        (
            obj(&[("heartbeatTimeoutMs", (-1).into())]),
            "`heartbeatTimeoutMs`",
        ),
        (
            obj(&[("ttlSecs", 0.into())]),
            "`ttlSecs` must be at least 1",
        ),
        (obj(&[("ttlSecs", 86_401.into())]), "`ttlSecs`"),
        (obj(&[("abandonAfterMs", 999.into())]), "`abandonAfterMs`"),
        (
            obj(&[("abandonAfterMs", 3_600_001.into())]),
            "`abandonAfterMs`",
        ),
    ];
    for (bad, needle) in cases {
        let err = SseChannel::new(bad.clone())
            .err()
            .expect("invalid options throw");
        assert_eq!(code_of(&err), "INVALID_OPTIONS", "{}", json(&bad));
        let msg = get(&err, "message").as_string().unwrap();
        assert!(msg.contains(needle), "{}: {msg}", json(&bad));
    }
    // The bounds themselves, Infinity attempts, and null for "not set", are accepted.
    for good in [
        rec("maxAttempts", f64::INFINITY.into()),
        rec("maxAttempts", 0.into()),
        rec("maxDelayMs", 2_147_483_647.0.into()),
        obj(&[("heartbeatTimeoutMs", 0.into())]),
        obj(&[("ttlSecs", 86_400.into()), ("abandonAfterMs", 1000.into())]),
        obj(&[
            ("abandonAfterMs", 3_600_000.into()),
            ("transport", JsValue::NULL),
        ]),
        obj(&[
            ("reconnect", JsValue::NULL),
            ("openTimeoutMs", JsValue::UNDEFINED),
        ]),
    ] {
        assert!(SseChannel::new(good.clone()).is_ok(), "{}", json(&good));
    }
    let err =
        SseChannel::configure(obj(&[("transport", 1.into())])).expect_err("configure validates");
    assert_eq!(code_of(&err), "INVALID_OPTIONS");

    let ch = SseChannel::new(JsValue::UNDEFINED).unwrap();
    let err = open(&ch).await.expect_err("no relay configured");
    assert_eq!(code_of(&err), "INVALID_OPTIONS");
    assert_eq!(ch.state(), "closed");

    SseChannel::configure(obj(&[
        ("relay", relay().into()),
        ("transport", "eventsource".into()),
    ]))
    .unwrap();
    let ch = SseChannel::new(JsValue::UNDEFINED).unwrap();
    let rec = Recorder::attach(&ch);
    open(&ch).await.unwrap();
    assert_eq!(ch.transport().as_string().as_deref(), Some("eventsource"));
    publish_range(&ch, 1, 2).await;
    rec.wait("2 messages", 5_000, |r| r.count("message") == 2)
        .await;
    ch.close();
    // Later options still override the defaults.
    let ch = SseChannel::new(obj(&[("transport", "websocket".into())])).unwrap();
    open(&ch).await.unwrap();
    assert_eq!(ch.transport().as_string().as_deref(), Some("websocket"));
    ch.close();
    SseChannel::configure(obj(&[("transport", "auto".into())])).unwrap();
}
