//! Transports: one browser connection to a channel's stream.
//!
//! The connection lives in JS (`reader.js`, bound in [`reader`]): the browser's
//! `WebSocket` or `EventSource`, with a reader that parses each frame (or
//! batch) and delivers a `message` with a new id to the page's listeners
//! itself. Only control data crosses into wasm: the other frames, as parsed JS
//! objects (their payload stays a JS value), and a lost connection. Not
//! gloo-net's wrappers: its WebSocket decodes every text frame into a Rust
//! `String`, and its EventSource ignores `error` events while the browser
//! reconnects on its own, so the browser, not the SDK, would own reconnection
//! (with its own delays and without our resume and dedupe bookkeeping). Here
//! the EventSource is closed on its first connection error, so the SDK's
//! backoff is the only retry policy.
//!
//! What a connection sees reaches the channel through its [`Dispatch`], tagged
//! with the connection's id; the channel ignores connections it has given up
//! on, and a closed [`Transport`] passes nothing on.

mod reader;

use js_sys::Function;
use sse_channel_protocol::{api, frame::decimal, EventId, EventKind};
use wasm_bindgen::prelude::*;

pub(crate) use reader::{dispatch, read_one, Dispatch};

pub(crate) use crate::machine::Kind;

/// What a connection reports to its channel.
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

/// One connection to a channel's stream. Closing (or dropping) it closes the
/// browser's connection and detaches it: nothing more reaches the channel.
pub(crate) struct Transport {
    close: Option<Function>,
}

impl Transport {
    /// Starts connection `conn` of `kind` to `url`, reporting to `d`. Errors
    /// only when the browser refuses the URL outright (the failure of a valid
    /// URL arrives as [`Incoming::Lost`]).
    pub(crate) fn connect(kind: Kind, url: &str, d: &Dispatch, conn: u32) -> Result<Self, JsValue> {
        let close = reader::connect(d, conn, kind == Kind::WebSocket, url)?;
        Ok(Self { close: Some(close) })
    }

    /// Closes the connection. Idempotent.
    pub(crate) fn close(&mut self) {
        if let Some(f) = self.close.take() {
            let _ = f.call0(&JsValue::UNDEFINED);
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.close();
    }
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
/// would cost the browser bundle more than the protocol's `decimal`).
fn push_decimal(s: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    s.extend(decimal(n, &mut digits).iter().map(|&d| char::from(d)));
}
