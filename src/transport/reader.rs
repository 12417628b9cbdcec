//! The per-event path and the connections themselves, in JS (`reader.js`):
//! the browser's `WebSocket` or `EventSource`, whose frames a small JS reader
//! parses and, for a `message` with a new id, hands straight to the page's
//! listeners, without a call into wasm per event. Every other frame (control
//! frames, an id the machine must judge, a malformed frame) and a lost
//! connection go to the wasm through the channel's [`Dispatch`], which reads
//! them with [`read_one`]. The executor (`src/channel/core/fast.rs`) says which
//! connection may be delivered from and from which id, and reads back what was
//! delivered before each of its inputs.

use js_sys::Function;
use sse_channel_protocol::frame::ws_field;
use sse_channel_protocol::EventKind;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::Incoming;

#[wasm_bindgen(module = "/src/transport/reader.js")]
extern "C" {
    /// What a channel shares with the JS side of its connections, one object
    /// per channel (see `reader.js`):
    /// - `c`: the connection whose messages JS may deliver (0: none), and `l`,
    ///   the last id delivered: set by the executor after each input; JS advances `l`;
    /// - `t`: `Date.now()` when JS last read a frame;
    /// - `m`: the `message` listeners (a new array on every change), or `null`
    ///   when the wasm must deliver (a `once` listener);
    /// - `f`: the wasm's reader of what JS passes on, and `k` the connection it came from.
    pub(crate) type Dispatch;
    /// A new `Dispatch` that passes frames to `f`.
    #[wasm_bindgen(js_name = sseDispatch)]
    pub(crate) fn dispatch(f: &JsValue) -> Dispatch;
    #[wasm_bindgen(method, getter)]
    pub(crate) fn l(this: &Dispatch) -> f64;
    #[wasm_bindgen(method, setter)]
    pub(crate) fn set_l(this: &Dispatch, l: f64);
    #[wasm_bindgen(method, setter)]
    pub(crate) fn set_c(this: &Dispatch, c: u32);
    #[wasm_bindgen(method, getter)]
    pub(crate) fn t(this: &Dispatch) -> f64;
    #[wasm_bindgen(method, setter)]
    pub(crate) fn set_m(this: &Dispatch, m: &JsValue);
    #[wasm_bindgen(method, getter)]
    pub(crate) fn k(this: &Dispatch) -> u32;
    #[wasm_bindgen(method, setter)]
    pub(crate) fn set_f(this: &Dispatch, f: &JsValue);
    /// Opens connection `conn` of `d`'s channel (a `WebSocket` when `ws`, else
    /// an `EventSource`) to `url`; the function that closes it, after which
    /// nothing reaches `d` from it. Errors when the browser refuses the URL.
    #[wasm_bindgen(js_name = sseConnect, catch)]
    pub(crate) fn connect(
        d: &Dispatch,
        conn: u32,
        ws: bool,
        url: &str,
    ) -> Result<Function, JsValue>;

    /// A parsed frame (`{"id":n,"event":"…","data":…}`), read through one
    /// small getter per member (a plain property read in the glue). Call them
    /// on objects only: a getter on `null` throws.
    type Parsed;
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

/// What JS passed on: a parsed event object (`{"id":n,"event":"…","data":…}`),
/// or a boolean for a lost connection (whether it had opened). Anything else
/// means the stream cannot be trusted: [`Incoming::Lost`].
pub(crate) fn read_one(v: &JsValue) -> Incoming {
    if let Some(opened) = v.as_bool() {
        return Incoming::Lost { opened };
    }
    let frame = if v.is_object() {
        read_frame(v.unchecked_ref())
    } else {
        None
    };
    frame.unwrap_or(Incoming::Lost { opened: true })
}

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
