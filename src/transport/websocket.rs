//! The WebSocket transport: `GET …/ws?…&batch=1`, a JSON text frame per event
//! or per burst of events (an array of them).

use std::cell::Cell;
use std::rc::Rc;

use sse_channel_protocol::frame::ws_field;
use sse_channel_protocol::EventKind;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, WebSocket};

use super::{json_parse, Incoming, Sink, Transport};

/// A browser `WebSocket` and the callbacks it owns.
pub(crate) struct WebSocketTransport {
    ws: WebSocket,
    // Owned so they live exactly as long as the connection; detached in `close`.
    // One closure type for every callback of the SDK (`FnMut(JsValue)`): each
    // distinct type costs the bundle its own glue.
    on_open: Option<Closure<dyn FnMut(JsValue)>>,
    on_message: Option<Closure<dyn FnMut(JsValue)>>,
    on_close: Option<Closure<dyn FnMut(JsValue)>>,
}

impl Transport for WebSocketTransport {
    fn connect(url: &str, sink: Sink) -> Result<Self, JsValue> {
        let ws = WebSocket::new(url)?;
        let opened = Rc::new(Cell::new(false));

        let on_open = {
            let opened = opened.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| opened.set(true))
        };
        let on_message = {
            let sink = sink.clone();
            let ws = ws.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
                let text = e.unchecked_into::<MessageEvent>().data();
                // Text frames only: the relay sends no binary frames.
                let ok =
                    text.is_string() && json_parse(&text).is_ok_and(|v| read_frames(&v, &sink));
                if !ok {
                    lost(&ws, &sink);
                }
            })
        };
        // `error` is always followed by `close`, so `close` alone reports failures.
        let on_close = {
            let opened = opened.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                sink(Incoming::Lost {
                    opened: opened.get(),
                })
            })
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Self {
            ws,
            on_open: Some(on_open),
            on_message: Some(on_message),
            on_close: Some(on_close),
        })
    }

    fn close(&mut self) {
        if self.on_close.is_none() {
            return;
        }
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
        self.on_open = None;
        self.on_message = None;
        self.on_close = None;
    }
}

impl Drop for WebSocketTransport {
    fn drop(&mut self) {
        self.close();
    }
}

/// JS strings made once per page: member names and event kinds. Reading a
/// frame then neither encodes a key into JS nor decodes the kind into wasm
/// (this halved the cost of the WebSocket path in `tests/browser_bench.rs`).
struct Names {
    id: JsValue,
    event: JsValue,
    data: JsValue,
    length: JsValue,
    kinds: Vec<(JsValue, EventKind)>,
}

thread_local! {
    static NAMES: Names = Names {
        id: JsValue::from_str(ws_field::ID),
        event: JsValue::from_str(ws_field::EVENT),
        data: JsValue::from_str(ws_field::DATA),
        length: JsValue::from_str("length"),
        kinds: [
            EventKind::Message,
            EventKind::Ping,
            EventKind::Ready,
            EventKind::End,
            EventKind::Error,
            EventKind::Pong,
        ]
        .into_iter()
        .map(|k| (JsValue::from_str(k.as_str()), k))
        .collect(),
    };
}

/// Not a frame of the protocol: the stream cannot be trusted.
fn lost(ws: &WebSocket, sink: &Sink) {
    let _ = ws.close();
    sink(Incoming::Lost { opened: true });
}

/// A parsed frame, or a batch (`batch=1`: an array of frames in id order, on
/// either transport), into `sink`; `false` when it is not one.
pub(super) fn read_frames(v: &JsValue, sink: &Sink) -> bool {
    // A frame object has no `length`. (Reflect alone: no new import.)
    let batch = NAMES
        .with(|n| js_sys::Reflect::get(v, &n.length).ok())
        .and_then(|l| l.as_f64());
    let count = batch.map_or(1, |l| l as u32);
    if count == 0 {
        return false;
    }
    // A listener that closes the channel mid-batch makes the rest stale: the
    // channel ignores a connection it gave up on.
    for i in 0..count {
        let obj = match batch {
            Some(_) => js_sys::Reflect::get(v, &JsValue::from(i)).unwrap_or_default(),
            None => v.clone(),
        };
        match read_frame(&obj) {
            Some(frame) => sink(frame),
            None => return false,
        }
    }
    true
}

/// A parsed `{"id":n,"event":"…","data":…}` → a frame; `None` when it is not one.
fn read_frame(obj: &JsValue) -> Option<Incoming> {
    if !obj.is_object() {
        return None;
    }
    NAMES.with(|n| {
        let get = |k: &JsValue| js_sys::Reflect::get(obj, k).ok();
        let name = get(&n.event)?;
        if !name.is_string() {
            return None;
        }
        let Some(kind) = n.kinds.iter().find(|(s, _)| *s == name).map(|(_, k)| *k) else {
            // A kind this client does not know (from a newer relay): no payload
            // for us, but proof that the connection is alive, like a heartbeat.
            return Some(Incoming::Frame {
                kind: EventKind::Ping,
                id: None,
                data: JsValue::NULL,
            });
        };
        let id = get(&n.id)
            .and_then(|v| v.as_f64())
            .filter(|n| *n >= 0.0 && n.fract() == 0.0)
            .map(|n| n as u64);
        let data = get(&n.data).unwrap_or(JsValue::NULL);
        Some(Incoming::Frame { kind, id, data })
    })
}
