//! Delivery benchmark of the SDK in headless Chromium against a real relay on
//! loopback: prints numbers, asserts nothing about time. Run with
//! `make bench-wasm` (= `BENCH=1 scripts/test-wasm.sh`, release build).
//!
//! - latency: a Node publisher started by the script (as a cloud function
//!   would be) posts one message per request at 100 and at 1,000 messages/s,
//!   each carrying the wall-clock time its request started; the `message`
//!   listener subtracts it from its own clock (same machine): p50 / p99;
//! - throughput: 10,000 messages of 64 B published by the page in batches of
//!   500 (as the writer batches); messages/s at the listener (the same plain
//!   JS function on both sides), first to last; the SDK and the bare browser
//!   API (plain JS, on the same `batch=1` stream as the SDK and on one frame
//!   per event) alternately, five times each, and the median of the per-pair
//!   ratios.
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

// The page's side of the throughput test in plain JS, the same for the SDK and
// the bare API: the listener records each message's arrival, and the bare
// connection is what a page would write without the SDK.
#[wasm_bindgen(inline_js = r#"
export class Recorder {
  constructor() {
    this.n = 0; this.first = 0; this.last = 0; this.inOrder = true;
    this.listener = (v) => {
      const at = performance.now();
      if (this.n === 0) this.first = at;
      if (v.seq !== this.n) this.inOrder = false;
      this.n++;
      this.last = at;
    };
  }
}
export function bareConnect(websocket, url, listener) {
  let ready;
  const opened = new Promise((ok) => { ready = ok; });
  const frame = (f) => {
    if (f.event === 'message') listener(f.data);
    else if (f.event === 'ready') ready();
  };
  const frames = (text) => {
    const v = JSON.parse(text);
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) frame(v[i]);
    else frame(v);
  };
  let close;
  if (websocket) {
    const ws = new WebSocket(url);
    ws.onmessage = (e) => frames(e.data);
    close = () => ws.close();
  } else {
    const es = new EventSource(url);
    es.addEventListener('ready', () => ready());
    es.addEventListener('message', (e) => listener(JSON.parse(e.data)));
    es.addEventListener('batch', (e) => frames(e.data));
    close = () => es.close();
  }
  return { ready: () => opened, close };
}
"#)]
extern "C" {
    type Recorder;
    #[wasm_bindgen(constructor)]
    fn new() -> Recorder;
    #[wasm_bindgen(method, getter)]
    fn n(this: &Recorder) -> f64;
    #[wasm_bindgen(method, getter)]
    fn first(this: &Recorder) -> f64;
    #[wasm_bindgen(method, getter)]
    fn last(this: &Recorder) -> f64;
    #[wasm_bindgen(method, getter, js_name = inOrder)]
    fn in_order(this: &Recorder) -> bool;
    #[wasm_bindgen(method, getter)]
    fn listener(this: &Recorder) -> js_sys::Function;

    type Bare;
    #[wasm_bindgen(js_name = bareConnect)]
    fn bare_connect(websocket: bool, url: &str, listener: &js_sys::Function) -> Bare;
    #[wasm_bindgen(method)]
    fn ready(this: &Bare) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn close(this: &Bare);
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

/// The throughput load: 20 request bodies of 500 messages of ~64 B each
/// (as the writer batches), each `{"seq": n, "pad": "…"}`, as JSON text made
/// before the channel opens, so that publishing costs the page little.
fn load() -> Vec<JsValue> {
    let (batches, per) = (20u32, 500u32);
    let pad = "x".repeat(44); // {"seq":NNNN,"pad":"…"} ≈ 64 bytes
    (0..batches)
        .map(|b| {
            let batch: Array = (0..per)
                .map(|i| obj(&[("seq", (b * per + i).into()), ("pad", pad.as_str().into())]))
                .collect();
            JSON::stringify(&obj(&[("messages", batch.into())]))
                .unwrap()
                .into()
        })
        .collect()
}

/// Publishes the load's bodies one request after the other; the number of messages.
async fn publish_load(t: &Target, bodies: &[JsValue]) -> usize {
    for body in bodies {
        let headers = obj(&[
            ("content-type", "application/json".into()),
            ("authorization", t.auth.as_str().into()),
        ]);
        let init = obj(&[
            ("method", "POST".into()),
            ("headers", headers),
            ("body", body.clone()),
        ]);
        let resp: web_sys::Response = JsFuture::from(fetch(&t.url, &init))
            .await
            .unwrap()
            .unchecked_into();
        assert_eq!(resp.status(), 200);
    }
    bodies.len() * 500
}

/// Waits until `rec` counted `total` messages; its messages/s, first to last.
async fn rate_of(rec: &Recorder, total: usize, what: &str) -> f64 {
    for _ in 0..3_000 {
        if rec.n() >= total as f64 {
            break;
        }
        sleep(10).await;
    }
    assert_eq!(rec.n(), total as f64, "{what}: messages missing");
    let span = rec.last() - rec.first();
    let rate = (total as f64 - 1.0) / span * 1000.0;
    console_log!(
        "bench {what}: {total} messages of ~64 B in batches of 500: {rate:.0} messages/s at the listener ({span:.1} ms first to last; in order: {})",
        rec.in_order()
    );
    rate
}

/// The SDK: 10,000 messages to the page's `message` listener.
async fn throughput(transport: &str) -> f64 {
    let ch = SseChannel::new(obj(&[
        ("relay", relay().into()),
        ("transport", transport.into()),
    ]))
    .unwrap();
    let bodies = load();
    let rec = Recorder::new();
    ch.on("message", rec.listener().into()).unwrap();
    JsFuture::from(ch.open()).await.unwrap();
    let total = publish_load(&target(&ch), &bodies).await;
    let rate = rate_of(&rec, total, &format!("{transport} (SDK)")).await;
    ch.close();
    rate
}

/// The same load on a bare browser `WebSocket` / `EventSource` written as a
/// page would (plain JS: `JSON.parse` of each frame, the same listener, no
/// SDK), on the same stream as the SDK's (`batch=1`: a burst of events in one
/// frame) or, with `batch` false, one frame per event.
async fn raw_throughput(transport: &str, batch: bool) -> f64 {
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
    if transport == "websocket" {
        stream = stream.replacen("http", "ws", 1);
    }
    stream.push_str("/v1/channels/");
    stream.push_str(&id);
    stream.push_str(if transport == "websocket" {
        "/ws?token="
    } else {
        "/events?token="
    });
    stream.push_str(&sub);
    if batch {
        stream.push_str("&batch=1");
    }
    let bodies = load();
    let rec = Recorder::new();
    let conn = bare_connect(transport == "websocket", &stream, &rec.listener());
    JsFuture::from(conn.ready()).await.unwrap();
    let mut auth = "Bearer ".to_owned();
    auth.push_str(&get(&created, "publishToken").as_string().unwrap());
    let mut murl = relay().to_owned();
    murl.push_str("/v1/channels/");
    murl.push_str(&id);
    murl.push_str("/messages");
    let t = Target { url: murl, auth };
    let total = publish_load(&t, &bodies).await;
    let what = format!(
        "{transport} (bare browser API, no SDK, {})",
        if batch {
            "batch=1"
        } else {
            "a frame per event"
        }
    );
    let rate = rate_of(&rec, total, &what).await;
    conn.close();
    rate
}

/// SDK and bare API alternately, `PAIRS` times, so that both see the same
/// machine load (on a shared machine single runs vary by a third): the median
/// of each and the median of the per-pair ratios.
async fn paired_throughput(transport: &str) {
    const PAIRS: usize = 5;
    let (mut sdk, mut bare, mut frames) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ratio, mut ratio_frames) = (Vec::new(), Vec::new());
    for _ in 0..PAIRS {
        let s = throughput(transport).await;
        let b = raw_throughput(transport, true).await;
        let f = raw_throughput(transport, false).await;
        sdk.push(s);
        bare.push(b);
        frames.push(f);
        ratio.push(s / b);
        ratio_frames.push(s / f);
    }
    for v in [
        &mut sdk,
        &mut bare,
        &mut frames,
        &mut ratio,
        &mut ratio_frames,
    ] {
        v.sort_by(|x, y| x.total_cmp(y));
    }
    console_log!(
        "bench {transport}: SDK vs bare API on the same stream (batch=1), {PAIRS} alternating pairs: median {:.0} vs {:.0} messages/s; median SDK/bare ratio {:.3} (min {:.3}, max {:.3})",
        percentile(&sdk, 0.5),
        percentile(&bare, 0.5),
        percentile(&ratio, 0.5),
        ratio[0],
        ratio[PAIRS - 1]
    );
    console_log!(
        "bench {transport}: SDK vs bare API with a frame per event: median {:.0} vs {:.0} messages/s; median SDK/bare ratio {:.3} (min {:.3}, max {:.3})",
        percentile(&sdk, 0.5),
        percentile(&frames, 0.5),
        percentile(&ratio_frames, 0.5),
        ratio_frames[0],
        ratio_frames[PAIRS - 1]
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
