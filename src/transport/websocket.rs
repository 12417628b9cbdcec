//! The WebSocket transport: `GET …/ws`, one JSON text frame per event.

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
                match read_frame(&e.unchecked_into::<MessageEvent>().data()) {
                    Some(frame) => sink(frame),
                    None => {
                        // Not a frame of the protocol: the stream cannot be trusted.
                        let _ = ws.close();
                        sink(Incoming::Lost { opened: true });
                    }
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
    kinds: Vec<(JsValue, EventKind)>,
}

thread_local! {
    static NAMES: Names = Names {
        id: JsValue::from_str(ws_field::ID),
        event: JsValue::from_str(ws_field::EVENT),
        data: JsValue::from_str(ws_field::DATA),
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

/// `{"id":n,"event":"…","data":…}` → a frame; `None` when it is not one.
/// Text frames only: the relay sends no binary frames.
fn read_frame(text: &JsValue) -> Option<Incoming> {
    if !text.is_string() {
        return None;
    }
    let obj = json_parse(text).ok()?;
    if !obj.is_object() {
        return None;
    }
    NAMES.with(|n| {
        let get = |k: &JsValue| js_sys::Reflect::get(&obj, k).ok();
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
