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

#[wasm_bindgen]
extern "C" {
    /// A parsed frame (`{"id":n,"event":"…","data":…}`) or batch (an array of
    /// them), read through one small getter per member: each is a plain property
    /// read in the glue, where `Reflect.get` would pass a key across and go
    /// through the glue's exception wrapper (this path runs once per event).
    /// Call them on objects only: a getter on `null` throws.
    type Parsed;
    #[wasm_bindgen(method, getter)]
    fn length(this: &Parsed) -> Option<f64>;
    #[wasm_bindgen(method, indexing_getter)]
    fn at(this: &Parsed, i: u32) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn event(this: &Parsed) -> JsValue;
    /// The member as a number (JS `Number()` at the boundary: absent is
    /// `NaN`, `null` is 0; the relay sends whole numbers from 1): a plain
    /// `f64` return, without the memory writes of an `Option`.
    #[wasm_bindgen(method, getter)]
    fn id(this: &Parsed) -> f64;
    #[wasm_bindgen(method, getter)]
    fn data(this: &Parsed) -> JsValue;
}

/// The getters above are the protocol's member names.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
const _: () = assert!(
    same(ws_field::ID, "id") && same(ws_field::EVENT, "event") && same(ws_field::DATA, "data")
);

thread_local! {
    /// The event kinds as JS strings, made once per page: reading a frame then
    /// compares JS strings instead of decoding the kind into wasm. The common
    /// kind first.
    static KINDS: Vec<(JsValue, EventKind)> = [
        EventKind::Message,
        EventKind::Ping,
        EventKind::Ready,
        EventKind::End,
        EventKind::Error,
        EventKind::Pong,
    ]
    .into_iter()
    .map(|k| (JsValue::from_str(k.as_str()), k))
    .collect();
}

/// Not a frame of the protocol: the stream cannot be trusted.
fn lost(ws: &WebSocket, sink: &Sink) {
    let _ = ws.close();
    sink(Incoming::Lost { opened: true });
}

/// A parsed frame, or a batch (`batch=1`: an array of frames in id order, on
/// either transport), into `sink`; `false` when it is not one.
pub(super) fn read_frames(v: &JsValue, sink: &Sink) -> bool {
    if !v.is_object() {
        return false;
    }
    let v: &Parsed = v.unchecked_ref();
    // A frame object has no `length`.
    let Some(len) = v.length() else {
        let Some(frame) = read_frame(v) else {
            return false;
        };
        sink(frame);
        return true;
    };
    if len.is_nan() || len < 1.0 {
        return false;
    }
    // A listener that closes the channel mid-batch makes the rest stale: the
    // channel ignores a connection it gave up on.
    for i in 0..len as u32 {
        let obj = v.at(i);
        if !obj.is_object() {
            return false;
        }
        match read_frame(obj.unchecked_ref()) {
            Some(frame) => sink(frame),
            None => return false,
        }
    }
    true
}

/// A parsed `{"id":n,"event":"…","data":…}` object → a frame; `None` when it
/// is not one.
fn read_frame(obj: &Parsed) -> Option<Incoming> {
    let name = obj.event();
    let Some(kind) = KINDS.with(|k| k.iter().find(|(s, _)| *s == name).map(|(_, k)| *k)) else {
        if !name.is_string() {
            return None;
        }
        // A kind this client does not know (from a newer relay): no payload
        // for us, but proof that the connection is alive, like a heartbeat.
        return Some(Incoming::Frame {
            kind: EventKind::Ping,
            id: None,
            data: JsValue::NULL,
        });
    };
    // Ids start at 1: 0 (or `null`) is no id, as are NaN and fractions.
    let id = obj.id();
    let id = (id >= 1.0 && id.fract() == 0.0).then_some(id as u64);
    Some(Incoming::Frame {
        kind,
        id,
        data: obj.data(),
    })
}
