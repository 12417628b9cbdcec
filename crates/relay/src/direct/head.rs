//! The first request head of a connection, read by the relay itself: an
//! EventSource subscription (`GET /v1/channels/{id}/events`, HTTP/1.1, no
//! body, no upgrade) becomes an [`http::Request`]; anything else is left to
//! hyper, bytes untouched.

use axum::body::Body;
use axum::http::{self, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

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
            if keeps_connection(&req) {
                Parsed::Request
            } else {
                Parsed::Other
            }
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Parsed::Incomplete,
        _ => Parsed::Other,
    }
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
}
