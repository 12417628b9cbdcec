//! Transports: one browser connection to a channel's stream, behind one small
//! crate-private trait ([`Transport`]), one module per transport.
//!
//! Both use the browser's `WebSocket` and `EventSource` objects directly through
//! web-sys, each owning its `Closure`s and detaching them when closed or
//! dropped (never `.forget()`). Not gloo-net's wrappers, for two reasons:
//!
//! - gloo-net's WebSocket decodes every text frame into a Rust `String`, so each
//!   payload would cross into wasm and back; here the frame's text goes from the
//!   `MessageEvent` straight to the browser's `JSON.parse`, and only the id and
//!   event name are read into wasm.
//! - gloo-net's EventSource ignores `error` events while the browser reconnects
//!   on its own, so the browser, not the SDK, would own reconnection (with its
//!   own delays and without our resume and dedupe bookkeeping). We close the
//!   EventSource on its first connection error, so the SDK's backoff is the
//!   only retry policy.
//!
//! A transport reports what it sees through a [`Sink`]; the channel ignores
//! reports from connections it has given up on (generation counter).

mod eventsource;
mod websocket;

use std::rc::Rc;

use sse_channel_protocol::{api, EventId, EventKind};
use wasm_bindgen::prelude::*;

pub(crate) use eventsource::EventSourceTransport;
pub(crate) use websocket::WebSocketTransport;

#[wasm_bindgen]
extern "C" {
    /// The browser's `JSON.parse`, on a JS string: the text never enters wasm.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    pub(crate) fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;
}

pub(crate) use crate::machine::Kind;

/// What a transport reports to its channel.
pub(crate) enum Incoming {
    /// One stream event. `id` is set on `message` and `end`; `data` is the parsed
    /// JSON payload, still a JS value.
    Frame {
        kind: EventKind,
        id: Option<EventId>,
        data: JsValue,
    },
    /// The connection failed or dropped without an in-band reason. `opened` is
    /// true when the handshake had completed (a `WebSocket` or `EventSource`
    /// `open` event), which tells "cannot open at all" from "lost".
    Lost { opened: bool },
}

/// Where a transport sends what it sees.
pub(crate) type Sink = Rc<dyn Fn(Incoming)>;

/// One connection to a channel's stream. Closing (or dropping) it detaches
/// every callback, so its [`Sink`] is never called again.
pub(crate) trait Transport {
    /// Starts connecting to `url`. Errors only when the browser refuses the URL
    /// outright (the failure of a valid URL arrives as [`Incoming::Lost`]).
    fn connect(url: &str, sink: Sink) -> Result<Self, JsValue>
    where
        Self: Sized;

    /// Closes the connection and detaches every callback. Idempotent.
    fn close(&mut self);
}

/// Starts a transport of `kind`.
pub(crate) fn connect(kind: Kind, url: &str, sink: Sink) -> Result<Box<dyn Transport>, JsValue> {
    Ok(match kind {
        Kind::WebSocket => Box::new(WebSocketTransport::connect(url, sink)?),
        Kind::EventSource => Box::new(EventSourceTransport::connect(url, sink)?),
    })
}

/// The stream URL of a channel: `{relay}/v1/channels/{id}/ws?token=…&batch=1&lastEventId=…`
/// (with `ws:`/`wss:` for WebSocket) or `…/events?…&batch=1…` for EventSource. The
/// relay URL is a validated http(s) base URL; the token is base64url text and
/// the channel id hex digits, so nothing here needs escaping.
pub(crate) fn stream_url(
    kind: Kind,
    relay: &str,
    channel_id: &str,
    token: &str,
    last_event_id: EventId,
) -> String {
    let path = match kind {
        Kind::WebSocket => api::ws_path(channel_id),
        Kind::EventSource => api::events_path(channel_id),
    };
    let mut url = String::with_capacity(relay.len() + path.len() + token.len() + 40);
    match kind {
        // `relay` starts with http:// or https:// (any case): swap the scheme.
        Kind::WebSocket => {
            let secure = relay
                .as_bytes()
                .get(4)
                .is_some_and(|b| b.eq_ignore_ascii_case(&b's'));
            url.push_str(if secure { "wss" } else { "ws" });
            url.push_str(relay.get(if secure { 5 } else { 4 }..).unwrap_or_default());
        }
        Kind::EventSource => url.push_str(relay),
    }
    url.push_str(&path);
    url.push('?');
    url.push_str(api::QUERY_TOKEN);
    url.push('=');
    url.push_str(token);
    // Several events per frame or SSE event: one JSON.parse and one browser
    // event per burst (docs/protocol.md).
    url.push('&');
    url.push_str(api::QUERY_BATCH);
    url.push_str("=1");
    if last_event_id > 0 {
        url.push('&');
        url.push_str(api::QUERY_LAST_EVENT_ID);
        url.push('=');
        push_decimal(&mut url, last_event_id);
    }
    url
}

/// Appends `n` in decimal (without `to_string`, whose formatting machinery
/// would cost the browser bundle more than this loop).
fn push_decimal(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        s.push(char::from(d));
    }
}
