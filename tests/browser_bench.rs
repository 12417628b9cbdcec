//! Delivery benchmark of the SDK in headless Chromium against a real relay on
//! loopback: prints numbers, asserts nothing about time. Run with
//! `make bench-wasm` (= `BENCH=1 scripts/test-wasm.sh`, release build).
//!
//! - latency: a Node publisher started by the script (as a cloud function
//!   would be) posts one message per request at 100 and at 1,000 messages/s,
//!   each carrying the wall-clock time its request started; the `message`
//!   listener subtracts it from its own clock (same machine): p50 / p99;
//! - throughput: 10,000 messages of 64 B published by the page in batches of
//!   500 (as the writer batches); messages/s at the listener, first to last;
//!   the SDK and the bare browser API alternately, five times each, and the
//!   median of the per-pair ratios.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, JSON};
use sse_channel::SseChannel;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

mod support;
use support::{fetch, get, obj, relay, sleep};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn now() -> f64;
    #[wasm_bindgen(js_namespace = performance, js_name = timeOrigin, thread_local_v2)]
    static TIME_ORIGIN: f64;
}

fn publisher() -> &'static str {
    match option_env!("SSE_PUBLISHER_URL") {
        Some(url) => url,
        None => panic!("SSE_PUBLISHER_URL is unset: run BENCH=1 scripts/test-wasm.sh"),
    }
}

struct Target {
    url: String,
    auth: String,
}

fn target(ch: &SseChannel) -> Target {
    let d = ch.to_json().unwrap();
    let mut url = get(&d, "relay").as_string().unwrap();
    url.push_str("/v1/channels/");
    url.push_str(&get(&d, "channelId").as_string().unwrap());
    url.push_str("/messages");
    let mut auth = "Bearer ".to_owned();
    auth.push_str(&get(&d, "publishToken").as_string().unwrap());
    Target { url, auth }
}

async fn publish(t: &Target, body: &JsValue) {
    let headers = obj(&[
        ("content-type", "application/json".into()),
        ("authorization", t.auth.as_str().into()),
    ]);
    let init = obj(&[
        ("method", "POST".into()),
        ("headers", headers),
        ("body", JSON::stringify(body).unwrap().into()),
    ]);
    let resp: web_sys::Response = JsFuture::from(fetch(&t.url, &init))
        .await
        .unwrap()
        .unchecked_into();
    assert_eq!(resp.status(), 200);
}

/// Each message's `seq`, its `t` (send time, epoch ms; NaN when absent) and
/// its arrival time (epoch ms).
type Arrivals = Rc<RefCell<Vec<(u32, f64, f64)>>>;

async fn channel(transport: &str) -> (SseChannel, Arrivals, Closure<dyn FnMut(JsValue)>) {
    let ch = SseChannel::new(obj(&[
        ("relay", relay().into()),
        ("transport", transport.into()),
    ]))
    .unwrap();
    let arrivals: Arrivals = Rc::default();
    let a = arrivals.clone();
    let origin = TIME_ORIGIN.with(|o| *o);
    let listener = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
        let at = origin + now();
        let seq = get(&v, "seq").as_f64().unwrap_or(-1.0);
        let sent = get(&v, "t").as_f64().unwrap_or(f64::NAN);
        a.borrow_mut().push((seq as u32, sent, at));
    });
    ch.on("message", listener.as_ref().clone()).unwrap();
    JsFuture::from(ch.open()).await.unwrap();
    (ch, arrivals, listener)
}

async fn wait_for(arrivals: &Arrivals, n: usize) {
    for _ in 0..3_000 {
        if arrivals.borrow().len() >= n {
            return;
        }
        sleep(10).await;
    }
    panic!("only {} of {n} messages arrived", arrivals.borrow().len());
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn latency(transport: &str, rate: u32, n: u32) {
    let (ch, arrivals, _l) = channel(transport).await;
    let t = target(&ch);
    let job = obj(&[
        ("url", t.url.as_str().into()),
        ("auth", t.auth.as_str().into()),
        ("n", n.into()),
        ("rate", rate.into()),
    ]);
    let init = obj(&[
        ("method", "POST".into()),
        ("body", JSON::stringify(&job).unwrap().into()),
    ]);
    let mut url = publisher().to_owned();
    url.push_str("/run");
    JsFuture::from(fetch(&url, &init)).await.unwrap();
    wait_for(&arrivals, n as usize).await;
    let a = arrivals.borrow();
    let in_order = a
        .iter()
        .enumerate()
        .all(|(k, &(seq, _, _))| seq as usize == k);
    let mut lat: Vec<f64> = a.iter().map(|&(_, sent, at)| at - sent).collect();
    lat.sort_by(|x, y| x.total_cmp(y));
    console_log!(
        "bench {transport}: Node publisher -> listener latency at {rate} msg/s, {n} messages: p50 {:.2} ms, p99 {:.2} ms (in order: {in_order})",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    drop(a);
    ch.close();
}

async fn throughput(transport: &str) -> f64 {
    let (ch, arrivals, _l) = channel(transport).await;
    let t = target(&ch);
    let (batches, per) = (20u32, 500u32);
    let pad = "x".repeat(44); // {"seq":NNNN,"pad":"…"} ≈ 64 bytes
    for b in 0..batches {
        let batch: Array = (0..per)
            .map(|i| obj(&[("seq", (b * per + i).into()), ("pad", pad.as_str().into())]))
            .collect();
        publish(&t, &obj(&[("messages", batch.into())])).await;
    }
    let total = (batches * per) as usize;
    wait_for(&arrivals, total).await;
    let a = arrivals.borrow();
    let span = a[total - 1].2 - a[0].2;
    let in_order = a
        .iter()
        .enumerate()
        .all(|(k, &(seq, _, _))| seq as usize == k);
    let rate = (total as f64 - 1.0) / span * 1000.0;
    console_log!(
        "bench {transport}: {total} messages of ~64 B in batches of {per}: {rate:.0} messages/s at the listener ({span:.1} ms first to last; in order: {in_order})"
    );
    drop(a);
    ch.close();
    rate
}

/// The same load on a bare browser `WebSocket` / `EventSource` (JSON.parse of
/// each frame, no SDK): what the SDK costs on top.
async fn raw_throughput(transport: &str) -> f64 {
    let mut url = relay().to_owned();
    url.push_str("/v1/channels");
    let init = obj(&[("method", "POST".into()), ("body", "{}".into())]);
    let resp: web_sys::Response = JsFuture::from(fetch(&url, &init))
        .await
        .unwrap()
        .unchecked_into();
    let created = JsFuture::from(resp.json().unwrap()).await.unwrap();
    let id = get(&created, "channelId").as_string().unwrap();
    let sub = get(&created, "subscribeToken").as_string().unwrap();
    let mut stream = relay().to_owned();
    stream.push_str("/v1/channels/");
    stream.push_str(&id);
    stream.push_str(if transport == "websocket" {
        "/ws?token="
    } else {
        "/events?token="
    });
    stream.push_str(&sub);
    let count = Rc::new(RefCell::new((0usize, 0.0f64, 0.0f64)));
    let c = count.clone();
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let v = JSON::parse(&e.data().as_string().unwrap()).unwrap();
            let _ = get(&v, "event");
            let mut c = c.borrow_mut();
            c.0 += 1;
            if c.0 == 2 {
                c.1 = now(); // first message (after ready)
            }
            c.2 = now();
        });
    let closer: Box<dyn Fn()> = if transport == "websocket" {
        let ws = web_sys::WebSocket::new(&stream.replacen("http", "ws", 1)).unwrap();
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Box::new(move || ws.close().unwrap())
    } else {
        let es = web_sys::EventSource::new(&stream).unwrap();
        for name in ["ready", "message"] {
            es.add_event_listener_with_callback(name, on_message.as_ref().unchecked_ref())
                .unwrap();
        }
        Box::new(move || es.close())
    };
    for _ in 0..300 {
        if count.borrow().0 >= 1 {
            break;
        }
        sleep(10).await;
    }
    let mut auth = "Bearer ".to_owned();
    auth.push_str(&get(&created, "publishToken").as_string().unwrap());
    let mut murl = relay().to_owned();
    murl.push_str("/v1/channels/");
    murl.push_str(&id);
    murl.push_str("/messages");
    let t = Target { url: murl, auth };
    let (batches, per) = (20u32, 500u32);
    let pad = "x".repeat(44);
    for b in 0..batches {
        let batch: Array = (0..per)
            .map(|i| obj(&[("seq", (b * per + i).into()), ("pad", pad.as_str().into())]))
            .collect();
        publish(&t, &obj(&[("messages", batch.into())])).await;
    }
    let total = (batches * per) as usize;
    for _ in 0..3_000 {
        if count.borrow().0 > total {
            break;
        }
        sleep(10).await;
    }
    let (n, first, last) = *count.borrow();
    closer();
    let rate = (n as f64 - 2.0) / (last - first) * 1000.0;
    console_log!(
        "bench {transport} (bare browser API, no SDK): {} messages: {rate:.0} messages/s at the listener",
        n - 1
    );
    rate
}

/// SDK and bare API alternately, `PAIRS` times, so that both see the same
/// machine load (on a shared machine single runs vary by a third): the median
/// of each and the median of the per-pair ratios.
async fn paired_throughput(transport: &str) {
    const PAIRS: usize = 5;
    let (mut sdk, mut bare, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..PAIRS {
        let s = throughput(transport).await;
        let b = raw_throughput(transport).await;
        sdk.push(s);
        bare.push(b);
        ratio.push(s / b);
    }
    for v in [&mut sdk, &mut bare, &mut ratio] {
        v.sort_by(|x, y| x.total_cmp(y));
    }
    console_log!(
        "bench {transport}: SDK vs bare API, {PAIRS} alternating pairs: median {:.0} vs {:.0} messages/s; median SDK/bare ratio {:.3} (min {:.3}, max {:.3})",
        percentile(&sdk, 0.5),
        percentile(&bare, 0.5),
        percentile(&ratio, 0.5),
        ratio[0],
        ratio[PAIRS - 1]
    );
}

#[wasm_bindgen_test]
async fn websocket_latency() {
    latency("websocket", 100, 500).await;
    latency("websocket", 1000, 3000).await;
}

#[wasm_bindgen_test]
async fn eventsource_latency() {
    latency("eventsource", 100, 500).await;
    latency("eventsource", 1000, 3000).await;
}

#[wasm_bindgen_test]
async fn websocket_throughput() {
    paired_throughput("websocket").await
}

#[wasm_bindgen_test]
async fn eventsource_throughput() {
    paired_throughput("eventsource").await
}
