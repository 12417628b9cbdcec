//! A request head, read by the relay itself: an EventSource subscription
//! (`GET /v1/channels/{id}/events`, HTTP/1.1, no body, no upgrade) becomes an
//! [`http::Request`]; a publish or end (`POST /v1/channels/{id}/messages` or
//! `…/end`, HTTP/1.1, a `Content-Length` body or none) a [`PublishHead`];
//! anything else is left to hyper, bytes untouched.

use std::ops::Range;

use axum::body::Body;
use axum::http::{self, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};
use sse_channel_protocol::{api, EventKind};

/// Longest head the relay reads itself; a longer one goes to hyper, whose
/// limits and answers (431) then apply. A browser's EventSource request with
/// its cookies fits.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// Most header fields in a head read here; more go to hyper (which takes 100).
const MAX_HEADERS: usize = 48;

/// What the bytes read so far are.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A subscription's head, all of the bytes read (no pipelined request after it).
    Subscribe(Box<Request<Body>>),
    /// A publish or end the relay answers itself (`super::publish`); its
    /// body and further requests may follow in the bytes read.
    Publish(PublishHead),
    /// Another request's complete head that keeps its connection open
    /// (HTTP/1.1, no `Upgrade`, no `Connection: close`): hyper answers this
    /// one request, then the relay reads the next head itself.
    Request,
    /// hyper serves the connection from the first byte on: an upgrade,
    /// HTTP/1.0, `Connection: close`, a head too long or with too many
    /// fields, or bytes hyper must answer with 400.
    Other,
    /// A head so far: read more.
    Incomplete,
}

/// Decides what `buf` (the bytes read at the start of a request) is. The
/// answer does not depend on how the bytes arrived: a strict prefix of a
/// complete head is [`Parsed::Incomplete`], and [`Parsed::Other`] stays so.
pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => {
            if len == buf.len() {
                if let Some(request) = build(&req) {
                    return Parsed::Subscribe(Box::new(request));
                }
            }
            if !keeps_connection(&req) {
                Parsed::Other
            } else if let Some(head) = publish(&req, buf, len) {
                Parsed::Publish(head)
            } else {
                Parsed::Request
            }
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Parsed::Incomplete,
        _ => Parsed::Other,
    }
}

/// Where the parts of a publish or end request are in the bytes read (its
/// head is `..len`); what the relay needs of its head fields.
#[derive(Debug, Clone)]
pub(crate) struct PublishHead {
    /// [`EventKind::Message`] for `…/messages`, [`EventKind::End`] for `…/end`.
    pub(crate) kind: EventKind,
    /// Bytes of the head, up to and including its empty line.
    pub(crate) len: usize,
    /// The request target (a path, no query).
    pub(crate) path: Range<usize>,
    /// The channel id in the path (not checked yet).
    pub(crate) id: Range<usize>,
    /// The first `Authorization` value.
    pub(crate) authorization: Option<Range<usize>>,
    /// The first `Idempotency-Key` value.
    pub(crate) idempotency_key: Option<Range<usize>>,
    /// The first `Origin` value.
    pub(crate) origin: Option<Range<usize>>,
    /// `Content-Length`, 0 without one.
    pub(crate) content_length: u64,
}

/// Characters of a path segment that read the same to the relay and to the
/// router: no percent-encoding (the router would decode it), no query, no
/// fragment.
fn plain_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The head, when `req` is a publish or end the relay answers itself: POST,
/// the target a plain path of one of the two routes, at most one
/// `Content-Length` of digits, no `Transfer-Encoding` (chunked bodies go to
/// hyper) and no `Expect`.
fn publish(req: &httparse::Request<'_, '_>, buf: &[u8], len: usize) -> Option<PublishHead> {
    if req.method != Some("POST") {
        return None;
    }
    let target = req.path?;
    let rest = target.strip_prefix("/v1/channels/")?;
    let (id, route) = rest.split_once('/')?;
    let kind = match route {
        "messages" => EventKind::Message,
        "end" => EventKind::End,
        _ => return None,
    };
    if !plain_segment(id) {
        return None;
    }
    let at = |s: &[u8]| {
        let start = s.as_ptr() as usize - buf.as_ptr() as usize;
        start..start + s.len()
    };
    let mut head = PublishHead {
        kind,
        len,
        path: at(target.as_bytes()),
        id: at(id.as_bytes()),
        authorization: None,
        idempotency_key: None,
        origin: None,
        content_length: 0,
    };
    let mut length_seen = false;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let digits = h.value;
            if length_seen || digits.is_empty() || digits.len() > 18 {
                return None;
            }
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            length_seen = true;
            head.content_length = digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'));
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
        {
            return None;
        } else if name.eq_ignore_ascii_case("authorization") {
            head.authorization.get_or_insert_with(|| at(h.value));
        } else if name.eq_ignore_ascii_case(api::HEADER_IDEMPOTENCY_KEY) {
            head.idempotency_key.get_or_insert_with(|| at(h.value));
        } else if name.eq_ignore_ascii_case("origin") {
            head.origin.get_or_insert_with(|| at(h.value));
        }
    }
    Some(head)
}

/// HTTP/1.1 without `Upgrade` or `Connection: close` / `upgrade`: after its
/// answer the client may send the next request on this connection.
fn keeps_connection(req: &httparse::Request<'_, '_>) -> bool {
    req.version == Some(1)
        && req.headers.iter().all(|h| {
            if h.name.eq_ignore_ascii_case("upgrade") {
                return false;
            }
            !h.name.eq_ignore_ascii_case("connection")
                || !h.value.split(|b| *b == b',').any(|t| {
                    let t = t.trim_ascii();
                    t.eq_ignore_ascii_case(b"close") || t.eq_ignore_ascii_case(b"upgrade")
                })
        })
}

/// The request, when `req` is a subscription this module serves.
fn build(req: &httparse::Request<'_, '_>) -> Option<Request<Body>> {
    if req.method != Some("GET") || req.version != Some(1) {
        return None;
    }
    let target = req.path?;
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let id = path
        .strip_prefix("/v1/channels/")?
        .strip_suffix("/events")?;
    if id.is_empty() || id.contains('/') {
        return None;
    }
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        // A body, an upgrade or an expectation: hyper knows what to do.
        if name == http::header::CONTENT_LENGTH
            || name == http::header::TRANSFER_ENCODING
            || name == http::header::UPGRADE
            || name == http::header::EXPECT
        {
            return None;
        }
        map.append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    let mut request = Request::new(Body::empty());
    *request.method_mut() = Method::GET;
    let uri = Uri::try_from(target).ok()?;
    // A fragment (`#`) or anything else `Uri` reads differently: not ours.
    if uri.path() != path {
        return None;
    }
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = map;
    Some(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "GET /v1/channels/abc/events?token=t HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nLast-Event-ID: 7\r\n\r\n";

    #[test]
    fn a_subscription_head_is_served_here_and_every_prefix_waits() {
        let Parsed::Subscribe(req) = parse(HEAD.as_bytes()) else {
            panic!("not a subscription");
        };
        assert_eq!(req.uri(), "/v1/channels/abc/events?token=t");
        assert_eq!(req.headers()["last-event-id"], "7");
        assert_eq!(req.headers()["accept"], "text/event-stream");
        for cut in 0..HEAD.len() {
            assert!(
                matches!(parse(&HEAD.as_bytes()[..cut]), Parsed::Incomplete),
                "{cut}"
            );
        }
    }

    #[test]
    fn other_requests_go_to_hyper_once_or_for_good() {
        // hyper answers these, then the relay reads the next head.
        for head in [
            "POST /v1/channels HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            "GET /healthz HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
            "GET /v1/channels/abc/ws HTTP/1.1\r\n\r\n",
            "GET /v1/channels/a/b/events HTTP/1.1\r\n\r\n",
            "GET /v1/channels//events HTTP/1.1\r\n\r\n",
            "GET /v1/channels/#abc/events HTTP/1.1\r\n\r\n",
            "GET /v1/channels/abc/events HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            "GET /v1/channels/abc/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /v1/channels/abc/events HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n",
            "get /v1/channels/abc/events HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse(head.as_bytes()), Parsed::Request),
                "{head:?}"
            );
        }
        // hyper keeps these connections.
        for head in [
            "GET /v1/channels/abc/events HTTP/1.0\r\n\r\n",
            "GET /v1/channels/abc/events HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            "GET /v1/channels/abc/ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "POST /v1/channels HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n",
            "GET /v1/channels/abc/events HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            assert!(matches!(parse(head.as_bytes()), Parsed::Other), "{head:?}");
        }
        // Too long, complete or not; too many header fields.
        let long = format!(
            "{}X-Pad: {}\r\n\r\n",
            &HEAD[..HEAD.len() - 2],
            "a".repeat(MAX_HEAD)
        );
        assert!(matches!(parse(long.as_bytes()), Parsed::Other));
        assert!(matches!(parse(&long.as_bytes()[..MAX_HEAD]), Parsed::Other));
        let many = format!(
            "{}{}\r\n",
            &HEAD[..HEAD.len() - 2],
            "X-A: 1\r\n".repeat(MAX_HEADERS)
        );
        assert!(matches!(parse(many.as_bytes()), Parsed::Other));
    }

    #[test]
    fn publish_and_end_heads_are_answered_here_with_their_fields() {
        let raw = "POST /v1/channels/abc/messages HTTP/1.1\r\nauthorization: Bearer t\r\nIdempotency-Key: k\r\nAuthorization: second\r\nOrigin: https://o\r\nContent-Length: 12\r\n\r\n{\"data\":1}GET /";
        let Parsed::Publish(head) = parse(raw.as_bytes()) else {
            panic!("not a publish");
        };
        let at = |r: &Range<usize>| &raw[r.clone()];
        assert_eq!(head.kind, EventKind::Message);
        assert_eq!(&raw[head.len..], "{\"data\":1}GET /");
        assert_eq!(at(&head.path), "/v1/channels/abc/messages");
        assert_eq!(at(&head.id), "abc");
        assert_eq!(head.authorization.as_ref().map(at), Some("Bearer t"));
        assert_eq!(head.idempotency_key.as_ref().map(at), Some("k"));
        assert_eq!(head.origin.as_ref().map(at), Some("https://o"));
        assert_eq!(head.content_length, 12);
        let Parsed::Publish(end) = parse(b"POST /v1/channels/abc/end HTTP/1.1\r\n\r\n") else {
            panic!("not an end");
        };
        assert_eq!(
            (end.kind, end.content_length, end.authorization),
            (EventKind::End, 0, None)
        );
        // hyper answers these (once): encodings the router reads differently,
        // bodies hyper frames, other routes.
        for head in [
            "POST /v1/channels/a%62c/messages HTTP/1.1\r\n\r\n",
            "POST /v1/channels/abc/messages?x=1 HTTP/1.1\r\n\r\n",
            "POST /v1/channels/abc/messages/ HTTP/1.1\r\n\r\n",
            "POST /v1/channels//messages HTTP/1.1\r\n\r\n",
            "POST /v1/channels/abc/fail HTTP/1.1\r\n\r\n",
            "POST http://x/v1/channels/abc/messages HTTP/1.1\r\n\r\n",
            "post /v1/channels/abc/messages HTTP/1.1\r\n\r\n",
            "PUT /v1/channels/abc/messages HTTP/1.1\r\n\r\n",
            "POST /v1/channels/abc/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /v1/channels/abc/messages HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            "POST /v1/channels/abc/messages HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "POST /v1/channels/abc/messages HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "POST /v1/channels/abc/messages HTTP/1.1\r\nContent-Length: \r\n\r\n",
            "POST /v1/channels/abc/messages HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
        ] {
            assert!(
                matches!(parse(head.as_bytes()), Parsed::Request),
                "{head:?}"
            );
        }
        // And for good: HTTP/1.0 and Connection: close.
        for head in [
            "POST /v1/channels/abc/messages HTTP/1.0\r\n\r\n",
            "POST /v1/channels/abc/messages HTTP/1.1\r\nConnection: close\r\n\r\n",
        ] {
            assert!(matches!(parse(head.as_bytes()), Parsed::Other), "{head:?}");
        }
    }
}
