//! Stream events, as Server-Sent Events text and as WebSocket JSON frames.
//!
//! Payloads travel as JSON text that the relay stores as it was published. An
//! SSE event is written as
//!
//! ```text
//! id: 7
//! event: message
//! data: {"step":3}
//!
//! ```
//!
//! and the same event on a WebSocket is the text frame
//! `{"id":7,"event":"message","data":{"step":3}}`.
//!
//! [`sse_event`] splits data on every line break into several `data:` lines (the
//! SSE parser joins them with `\n`, which JSON reads as whitespace), so no
//! payload can start a field of its own. Ids are numbers and event names are the
//! fixed words of [`EventKind`], so neither can carry a line break.
//!
//! ```
//! use sse_channel_protocol::frame::{sse_event, ws_frame, EventKind};
//! let mut out = String::new();
//! sse_event(&mut out, Some(7), EventKind::Message, "{\"a\":1}");
//! assert_eq!(out, "id: 7\nevent: message\ndata: {\"a\":1}\n\n");
//! assert_eq!(ws_frame(Some(7), EventKind::Message, "1"), r#"{"id":7,"event":"message","data":1}"#);
//! ```

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, EventId};

/// The kind of a stream event: the SSE `event:` field and the WebSocket `event` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EventKind {
    /// The subscription is live (first frame of every stream). No id.
    Ready,
    /// A published message. Has an id.
    Message,
    /// The final message; the stream closes after it. Has an id.
    End,
    /// An error: `data` is `{"code","message"}` (plus `from`/`to` for
    /// `MESSAGES_LOST`). Every code but `MESSAGES_LOST` closes the stream.
    /// Without an id it is about this stream only. **With an id** it is the
    /// channel's stored, final event (`FUNCTION_FAILED` or
    /// `CHANNEL_CANCELLED`, data [`ErrorData`], built by [`error_data`]):
    /// kept, replayed and retained like `end`, and the stream closes after it.
    Error,
    /// Heartbeat from the relay, on both transports (SSE: [`SSE_HEARTBEAT`]). No
    /// id. A WebSocket client may also send `{"event":"ping"}`; the relay answers `pong`.
    Ping,
    /// Answer to a client's ping.
    Pong,
}

impl EventKind {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Message => "message",
            Self::End => "end",
            Self::Error => "error",
            Self::Ping => "ping",
            Self::Pong => "pong",
        }
    }

    /// The kind with this wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ready" => Self::Ready,
            "message" => Self::Message,
            "end" => Self::End,
            "error" => Self::Error,
            "ping" => Self::Ping,
            "pong" => Self::Pong,
            _ => return None,
        })
    }
}

/// Data of the `ready` frame: `{"heartbeatMs":15000}`, the interval at which
/// the relay sends heartbeats on this stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyData {
    /// Heartbeat interval in milliseconds.
    pub heartbeat_ms: u64,
}

/// The events a subscriber missed that the relay no longer holds: ids
/// `from..=to`. Sent as an `error` frame with code `MESSAGES_LOST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostRange {
    /// First missing id.
    pub from: EventId,
    /// Last missing id.
    pub to: EventId,
}

/// Data of a stored, final `error` event: `{"code":…,"message":…,"details":…}`
/// (`details` only when the writer gave some). [`error_data`] writes it
/// without serde; this type documents it and serves Rust clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorData<T> {
    /// `FUNCTION_FAILED` or `CHANNEL_CANCELLED`.
    pub code: String,
    /// The function's message, or the cancel reason.
    pub message: String,
    /// The function's details (any JSON), or `{"reason":"ABANDONED"}` for an
    /// abandoned channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<T>,
}

/// The JSON text of [`ErrorData`]: `details`, when given, must be JSON text.
///
/// ```
/// use sse_channel_protocol::frame::{error_data, sse_event, EventKind};
/// use sse_channel_protocol::ErrorCode;
/// let data = error_data(ErrorCode::FunctionFailed, "bad \"input\"", Some("{\"step\":3}"));
/// assert_eq!(data, r#"{"code":"FUNCTION_FAILED","message":"bad \"input\"","details":{"step":3}}"#);
/// let mut out = String::new();
/// sse_event(&mut out, Some(9), EventKind::Error, &data);
/// assert!(out.starts_with("id: 9\nevent: error\n"));
/// ```
pub fn error_data(code: ErrorCode, message: &str, details: Option<&str>) -> String {
    let mut out = String::with_capacity(message.len() + details.map_or(0, str::len) + 48);
    out.push_str("{\"code\":\"");
    out.push_str(code.as_str());
    out.push_str("\",\"message\":");
    push_json_string(&mut out, message);
    if let Some(details) = details {
        out.push_str(",\"details\":");
        out.push_str(details);
    }
    out.push('}');
    out
}

/// Appends `s` as a JSON string literal (RFC 8259 escapes).
fn push_json_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Member names of a WebSocket frame object, `{"id":…,"event":…,"data":…}`
/// (see [`ws_frame`]), for clients that read frames without a Rust type.
pub mod ws_field {
    /// The event id (absent on `ready`, `error`, `ping`, `pong`).
    pub const ID: &str = "id";
    /// The [`super::EventKind`] spelling.
    pub const EVENT: &str = "event";
    /// The payload (any JSON value).
    pub const DATA: &str = "data";
}

/// The SSE event the relay sends as a heartbeat.
///
/// A named event rather than a `:` comment line: the browser's `EventSource`
/// never shows comments to script, so a client could not tell a quiet channel
/// from a dead connection. Clients that ignore `ping` events lose nothing.
pub const SSE_HEARTBEAT: &str = "event: ping\ndata: null\n\n";

/// The SSE event name of a batch (`?batch=1` on `/events`): its `data` is a
/// JSON array of WebSocket-shaped frames (`{"id":n,"event":"…","data":…}`) in
/// id order, and its `id:` is the last of them.
pub const SSE_BATCH: &str = "batch";

/// Appends one SSE event to `out`. `data` is JSON text; line breaks in it become
/// separate `data:` lines.
pub fn sse_event(out: &mut String, id: Option<EventId>, kind: EventKind, data: &str) {
    sse_named(out, id, kind.as_str(), data);
}

/// [`sse_event`] with any event name (e.g. [`SSE_BATCH`]); `name` must be one
/// line.
pub fn sse_named(out: &mut String, id: Option<EventId>, name: &str, data: &str) {
    if let Some(id) = id {
        out.push_str("id: ");
        push_u64(out, id);
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(name);
    out.push('\n');
    let mut rest = data;
    loop {
        let cut = rest.find(['\r', '\n']);
        out.push_str("data: ");
        match cut {
            None => {
                out.push_str(rest);
                out.push('\n');
                break;
            }
            Some(i) => {
                out.push_str(&rest[..i]);
                out.push('\n');
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
        }
    }
    out.push('\n');
}

/// One WebSocket text frame: `{"id":n,"event":"…","data":…}` (no `id` when `None`).
/// `data` must be JSON text.
pub fn ws_frame(id: Option<EventId>, kind: EventKind, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 40);
    out.push('{');
    if let Some(id) = id {
        out.push_str("\"id\":");
        push_u64(&mut out, id);
        out.push(',');
    }
    out.push_str("\"event\":\"");
    out.push_str(kind.as_str());
    out.push_str("\",\"data\":");
    out.push_str(data);
    out.push('}');
    out
}

/// Parses an event id as sent in `Last-Event-ID` or `lastEventId`: decimal
/// digits only, no sign, no spaces, at most 20 digits. An empty value means 0.
///
/// ```
/// use sse_channel_protocol::frame::parse_event_id;
/// assert_eq!(parse_event_id("42"), Some(42));
/// assert_eq!(parse_event_id(""), Some(0));
/// assert_eq!(parse_event_id("-1"), None);
/// ```
pub fn parse_event_id(s: &str) -> Option<EventId> {
    if s.is_empty() {
        return Some(0);
    }
    if s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn push_u64(out: &mut String, n: u64) {
    let mut buf = [0u8; 20];
    // `decimal` yields ASCII digits only.
    out.extend(decimal(n, &mut buf).iter().map(|&b| char::from(b)));
}

/// Writes `n` in decimal into the end of `buf` and returns the digits, as ASCII bytes:
/// no allocation and no formatting machinery (which would cost the browser bundle more than
/// this loop). The relay's hand-written HTTP answers, the frame encoders and the SDK's
/// reconnect URL all format their numbers with it.
///
/// ```
/// let mut buf = [0u8; 20];
/// assert_eq!(sse_channel_protocol::frame::decimal(0, &mut buf), b"0");
/// assert_eq!(sse_channel_protocol::frame::decimal(u64::MAX, &mut buf), b"18446744073709551615");
/// ```
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// A minimal, spec-following SSE parser for tests and tools (not used by the
/// browser, which has its own). Feed it text; it returns complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: String,
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
}

/// An event returned by [`SseParser`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `id:` field, if the event had one.
    pub id: Option<String>,
    /// The `event:` field, `message` when absent.
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

impl SseParser {
    /// Adds text and returns every event it completes. Comment lines are skipped.
    pub fn feed(&mut self, text: &str) -> Vec<SseEvent> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        while let Some(i) = self.buf.find(['\r', '\n']) {
            // A lone trailing '\r' may be the first half of "\r\n": wait for more.
            if self.buf.as_bytes()[i] == b'\r' && i + 1 == self.buf.len() {
                break;
            }
            let skip = if self.buf[i..].starts_with("\r\n") {
                2
            } else {
                1
            };
            let line: String = self.buf[..i].to_owned();
            self.buf.drain(..i + skip);
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    out.push(SseEvent {
                        id: self.id.take(),
                        event: self.event.take().unwrap_or_else(|| "message".to_owned()),
                        data,
                    });
                } else {
                    self.id = None;
                    self.event = None;
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "id" => self.id = Some(value.to_owned()),
                "event" => self.event = Some(value.to_owned()),
                "data" => match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                },
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kinds_round_trip() {
        for k in [
            EventKind::Ready,
            EventKind::Message,
            EventKind::End,
            EventKind::Error,
            EventKind::Ping,
            EventKind::Pong,
        ] {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
    }

    #[test]
    fn event_ids() {
        assert_eq!(parse_event_id("0"), Some(0));
        assert_eq!(parse_event_id("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_event_id("18446744073709551616"), None);
        assert_eq!(parse_event_id(" 1"), None);
        assert_eq!(parse_event_id("1e3"), None);
    }

    #[test]
    fn multiline_data_is_split() {
        let mut out = String::new();
        sse_event(&mut out, None, EventKind::End, "{\r\n\"a\":\r1\n}");
        assert_eq!(
            out,
            "event: end\ndata: {\ndata: \"a\":\ndata: 1\ndata: }\n\n"
        );
        let ev = SseParser::default().feed(&out);
        assert_eq!(ev.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&ev[0].data).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1}));
    }

    #[test]
    fn ws_frame_without_id() {
        assert_eq!(
            ws_frame(None, EventKind::Ready, r#"{"heartbeatMs":15000}"#),
            r#"{"event":"ready","data":{"heartbeatMs":15000}}"#
        );
    }

    proptest! {
        // Whatever a payload holds, it comes back as one event with the same id
        // and kind, and its text differs at most by line-break normalization.
        #[test]
        fn sse_payload_cannot_inject_fields(id in any::<u64>(), data in ".*", data2 in "[\\PC\r\n:]*") {
            for d in [&data, &data2] {
                let mut out = String::new();
                sse_event(&mut out, Some(id), EventKind::Message, d);
                let events = SseParser::default().feed(&out);
                prop_assert_eq!(events.len(), 1);
                let want = id.to_string();
                prop_assert_eq!(events[0].id.as_deref(), Some(want.as_str()));
                prop_assert_eq!(events[0].event.as_str(), "message");
                let norm = d.replace("\r\n", "\n").replace('\r', "\n");
                prop_assert_eq!(&events[0].data, &norm);
            }
        }

        #[test]
        fn json_survives_sse(v in arb_json()) {
            let pretty = serde_json::to_string_pretty(&v).unwrap();
            let mut out = String::new();
            sse_event(&mut out, Some(1), EventKind::Message, &pretty);
            let events = SseParser::default().feed(&out);
            let back: serde_json::Value = serde_json::from_str(&events[0].data).unwrap();
            prop_assert_eq!(back, v.clone());
            let frame: serde_json::Value = serde_json::from_str(&ws_frame(Some(1), EventKind::Message, &pretty)).unwrap();
            prop_assert_eq!(&frame["data"], &v);
        }

        #[test]
        fn parser_accepts_chunked_input(split in 0usize..60) {
            let mut out = String::new();
            sse_event(&mut out, Some(3), EventKind::Message, "\"x\"");
            out.push_str(SSE_HEARTBEAT);
            sse_event(&mut out, Some(4), EventKind::End, "null");
            let cut = split.min(out.len());
            let mut p = SseParser::default();
            let mut events = p.feed(&out[..cut]);
            events.extend(p.feed(&out[cut..]));
            prop_assert_eq!(events.len(), 3);
            prop_assert_eq!(events[1].event.as_str(), "ping");
            prop_assert_eq!(events[2].event.as_str(), "end");
        }
    }

    proptest! {
        // Any message and details survive as JSON, as SSE and as a WebSocket frame.
        #[test]
        fn error_data_is_json(message in "\\PC*", raw in "[\u{0}-\u{7f}]*", v in arb_json()) {
            for m in [&message, &raw] {
                let details = serde_json::to_string(&v).unwrap();
                let text = error_data(ErrorCode::ChannelCancelled, m, Some(&details));
                let back: ErrorData<serde_json::Value> = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(&back.code, "CHANNEL_CANCELLED");
                prop_assert_eq!(&back.message, m);
                // (serde reads `"details":null` as `None`.)
                prop_assert_eq!(back.details.unwrap_or_default(), v.clone());
                let mut out = String::new();
                sse_event(&mut out, Some(5), EventKind::Error, &text);
                let events = SseParser::default().feed(&out);
                prop_assert_eq!(events.len(), 1);
                prop_assert_eq!(events[0].id.as_deref(), Some("5"));
                let again: ErrorData<serde_json::Value> = serde_json::from_str(&events[0].data).unwrap();
                prop_assert_eq!(&again.message, m);
            }
            let bare: ErrorData<serde_json::Value> =
                serde_json::from_str(&error_data(ErrorCode::FunctionFailed, &message, None)).unwrap();
            prop_assert_eq!(bare.details, None);
        }
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i32>().prop_map(serde_json::Value::from),
            ".*".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z\n\r]{0,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
