//! The properties the fuzz targets check (`fuzz/fuzz_targets/`, run by
//! `make fuzz` on nightly) and that the corpus replay test checks on stable
//! (`tests/fuzz_corpus.rs`, part of `make test`). Each function takes
//! arbitrary bytes, as an attacker could send them, and panics only when a
//! parser breaks a property: a panic, a refusal that should be an answer, an
//! answer outside the limits, or a payload that injects frame fields.
//! Not an API: hidden from the docs, stable only for the fuzz targets.

use serde::de::IgnoredAny;
use sse_channel_protocol::descriptor::{self, Descriptor};
use sse_channel_protocol::frame::{parse_event_id, sse_event, ws_frame, SseParser};
use sse_channel_protocol::{Claims, EventKind, Scope};

use crate::token::TokenKey;

/// A check: arbitrary bytes in, a panic when a property breaks.
pub type Check = fn(&[u8]);

/// Every target: its name (the directory of its corpus) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("sse_frames", sse_frames),
    ("event_id", event_id),
    ("token", token),
    ("publish_body", publish_body),
    ("descriptor", descriptor),
    ("relay_origin", relay_origin),
    ("request_head", request_head),
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// SSE and WebSocket frames: any text fed to the SSE parser in two pieces
/// gives the events of feeding it whole; any payload written as an SSE event
/// reads back as exactly that one event (line breaks as `\n`), never as
/// fields of its own; a JSON payload in a WebSocket frame reads back equal.
pub fn sse_frames(data: &[u8]) {
    let s = text(data);
    let cut = data.first().map_or(0, |b| usize::from(*b) % (s.len() + 1));
    let cut = (0..=cut)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    let whole = SseParser::default().feed(&s);
    let mut p = SseParser::default();
    let mut parts = p.feed(&s[..cut]);
    parts.extend(p.feed(&s[cut..]));
    assert_eq!(whole, parts, "split feeding changed the events");

    let id = data.len() as u64 * 7919;
    for kind in [EventKind::Message, EventKind::End, EventKind::Error] {
        let mut out = String::new();
        sse_event(&mut out, Some(id), kind, &s);
        let events = SseParser::default().feed(&out);
        assert_eq!(events.len(), 1, "{out:?} gave {events:?}");
        let e = &events[0];
        assert_eq!(e.id.as_deref(), Some(id.to_string().as_str()));
        assert_eq!(e.event, kind.as_str());
        assert_eq!(e.data, s.replace("\r\n", "\n").replace('\r', "\n"));
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s) {
        let frame: serde_json::Value =
            serde_json::from_str(&ws_frame(Some(id), EventKind::Message, &s))
                .expect("a WebSocket frame of JSON data is JSON");
        assert_eq!(frame["data"], v);
        assert_eq!(frame["id"], id);
        assert_eq!(frame["event"], "message");
    }
    let _ = crate::stream::is_client_ping(&s);
}

/// `Last-Event-ID` / `lastEventId`: accepted exactly when decimal digits
/// of a `u64` (empty = 0, the header trimmed), as that number.
pub fn event_id(data: &[u8]) {
    let s = text(data);
    let parsed = parse_event_id(&s);
    let expected = if s.is_empty() {
        Some(0)
    } else if s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<u64>().ok()
    } else {
        None
    };
    assert_eq!(parsed, expected, "{s:?}");
    let header = crate::stream::resume_point(Some(data), None).ok();
    let trimmed = std::str::from_utf8(data)
        .ok()
        .and_then(|t| parse_event_id(t.trim()));
    assert_eq!(header, trimmed, "{data:?}");
    let both = crate::stream::resume_point(Some(b"5"), Some(&s)).ok();
    assert_eq!(both, parsed.map(|n| n.max(5)));
}

const KEY: &[u8] = b"fuzzing-key-of-at-least-32-bytes!!";
const OLD_KEY: &[u8] = b"the-previous-key-of-32-bytes-or-more";

/// Tokens: any text is refused without a panic (no forgery is found by
/// chance); a token signed for claims built from the input verifies for
/// exactly its channel and scope, with either key of a rotation, and any one
/// changed character makes it fail.
pub fn token(data: &[u8]) {
    let key = TokenKey::with_previous(KEY, OLD_KEY);
    let channel = "0123456789abcdef0123456789abcdef";
    let s = text(data);
    for scope in [Scope::Publish, Scope::Subscribe] {
        assert!(key.verify(&s, channel, scope, 0).is_err(), "{s:?}");
    }
    let mut sub = String::with_capacity(32);
    for b in data.iter().chain([0u8; 16].iter()).take(16) {
        sub.push_str(&format!("{b:02x}"));
    }
    let scope = if data.len() % 2 == 0 {
        Scope::Publish
    } else {
        Scope::Subscribe
    };
    let other = match scope {
        Scope::Publish => Scope::Subscribe,
        Scope::Subscribe => Scope::Publish,
    };
    let exp = data
        .iter()
        .fold(1u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(*b)))
        .max(1);
    let claims = Claims {
        sub: sub.clone(),
        scope,
        exp,
    };
    for signer in [TokenKey::new(KEY), TokenKey::new(OLD_KEY)] {
        let t = signer.sign(&claims);
        assert_eq!(key.verify(&t, &sub, scope, exp - 1), Ok(()));
        assert!(key.verify(&t, &sub, other, exp - 1).is_err());
        assert!(key.verify(&t, channel, scope, exp - 1).is_err() || sub == channel);
        let at = data.len() % t.len();
        let mut bytes = t.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).expect("ASCII");
        // Base64 of the signature's last character carries 2 unused bits.
        let tail = at == t.len() - 1;
        assert!(
            tail || key.verify(&altered, &sub, scope, exp - 1).is_err(),
            "{altered}"
        );
    }
}

/// Publish and end bodies: an accepted body gives 1 to 8 payloads (the
/// limits of this check) of at most 64 bytes, each valid JSON text.
pub fn publish_body(data: &[u8]) {
    if let Ok(payloads) = crate::publish::parse_publish_body(data, 64, 8) {
        assert!((1..=8).contains(&payloads.len()));
        for p in &payloads {
            assert!(p.len() <= 64);
            serde_json::from_str::<IgnoredAny>(p).expect("a payload is JSON");
        }
    }
    if let Ok(p) = crate::publish::parse_end_body(data, 64) {
        assert!(p.len() <= 64);
        serde_json::from_str::<IgnoredAny>(&p).expect("an end payload is JSON");
    }
}

/// The serialized channel a cloud function receives: a descriptor that
/// validates has a channel id, a token and a relay origin of the expected form.
pub fn descriptor(data: &[u8]) {
    let Ok(d) = serde_json::from_slice::<Descriptor>(data) else {
        return;
    };
    if d.validate().is_ok() {
        assert!(descriptor::is_channel_id(&d.channel_id));
        assert!(descriptor::is_token_text(&d.publish_token));
        let origin = d.relay_origin().expect("a valid descriptor has an origin");
        assert_eq!(descriptor::relay_origin(&origin), Ok(origin.clone()));
    }
}

/// Relay URLs (the writer's allow-list check) and `--allow-origin` values:
/// an accepted URL's origin is `http(s)://host[:port]` without credentials,
/// whitespace or anything after the authority, and is its own origin.
pub fn relay_origin(data: &[u8]) {
    let s = text(data);
    if let Ok(o) = descriptor::relay_origin(&s) {
        assert!(o.starts_with("http://") || o.starts_with("https://"), "{o}");
        let authority = o.split_once("://").map_or("", |(_, a)| a);
        assert!(!authority.is_empty());
        assert!(
            !authority.contains(['/', '?', '#', '@', '\\', ' ']),
            "{s:?} -> {o}"
        );
        assert_eq!(descriptor::relay_origin(&o), Ok(o.clone()), "{s:?}");
    }
    if let Ok(n) = crate::config::normalize_origin(&s) {
        assert_eq!(crate::config::normalize_origin(&n), Ok(n.clone()), "{s:?}");
    }
}

/// A request head, read by the relay itself (`direct::head`): a head it
/// serves is an EventSource subscription (a GET of `/v1/channels/{id}/events`
/// over HTTP/1.1) or a publish or end (a POST of `/v1/channels/{id}/messages`
/// or `…/end`, its parts inside the head), and the decision does not depend
/// on how the bytes arrived:
/// a strict prefix of a head waits for more, a prefix handed to hyper for good
/// stays so, and one hyper answers once is the same request whatever follows.
pub fn request_head(data: &[u8]) {
    use crate::direct::head::{parse, Parsed};
    let whole = parse(data);
    if let Parsed::Subscribe(req) = &whole {
        assert_eq!(req.method(), axum::http::Method::GET);
        assert_eq!(req.version(), axum::http::Version::HTTP_11);
        let path = req.uri().path();
        assert!(
            path.starts_with("/v1/channels/") && path.ends_with("/events"),
            "{path}"
        );
        assert!(req.headers().get("content-length").is_none());
    }
    if let Parsed::Publish(head) = &whole {
        // httparse skips empty lines before a request line, as hyper does.
        let start = data.iter().position(|b| !matches!(b, b'\r' | b'\n'));
        assert!(data[start.unwrap_or(0)..].starts_with(b"POST /v1/channels/"));
        let path = std::str::from_utf8(&data[head.path.clone()]).expect("an ASCII path");
        let id = std::str::from_utf8(&data[head.id.clone()]).expect("an ASCII id");
        assert!(
            path == format!("/v1/channels/{id}/messages")
                || path == format!("/v1/channels/{id}/end"),
            "{path}"
        );
        for r in [&head.authorization, &head.idempotency_key, &head.origin]
            .into_iter()
            .flatten()
        {
            assert!(r.end <= head.len, "{r:?} outside the head");
        }
    }
    let cut = data
        .first()
        .map_or(0, |b| usize::from(*b) % (data.len() + 1));
    for c in [cut, data.len().saturating_sub(1)] {
        if c >= data.len() {
            continue;
        }
        match parse(&data[..c]) {
            Parsed::Other => assert!(matches!(whole, Parsed::Other), "{c}: {whole:?}"),
            Parsed::Request => assert!(matches!(whole, Parsed::Request), "{c}: {whole:?}"),
            Parsed::Publish(head) => match &whole {
                Parsed::Publish(w) => assert_eq!(format!("{head:?}"), format!("{w:?}"), "{c}"),
                _ => panic!("{c}: {whole:?}"),
            },
            // Only its whole head: the whole has bytes after it.
            Parsed::Subscribe(_) => assert!(matches!(whole, Parsed::Request), "{c}: {whole:?}"),
            Parsed::Incomplete => {}
        }
    }
}
