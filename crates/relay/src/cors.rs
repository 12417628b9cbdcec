//! The CORS policy ([`crate::Config::allow_origins`]), once: as the router's
//! `tower_http` layer, and as the header fields the requests the relay answers
//! itself (`direct::publish`) carry, which are the ones that layer adds to an
//! answer that is not a preflight (`crates/relay/tests/direct_publish.rs`
//! compares the two byte for byte).

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use sse_channel_protocol::api;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which origins may read the relay's answers.
#[derive(Debug, Clone)]
pub(crate) enum Cors {
    /// No CORS headers at all (no `--allow-origin`).
    Off,
    /// `*`: every origin.
    Any,
    /// These origins (normalized), answered with the request's `Origin`.
    List(Vec<HeaderValue>),
}

/// `Vary` on every answer (tower-http's default: the preflight's request headers).
const VARY: &str = "origin, access-control-request-method, access-control-request-headers";

impl Cors {
    /// The policy for `origins` (`*` for any; entries that do not normalize
    /// are skipped with a warning: the CLI refuses them at start).
    pub(crate) fn new(origins: &[String]) -> Self {
        if origins.is_empty() {
            return Self::Off;
        }
        if origins.iter().any(|o| o == "*") {
            return Self::Any;
        }
        Self::List(
            origins
                .iter()
                .filter_map(|o| {
                    let origin = crate::config::normalize_origin(o)
                        .inspect_err(|e| tracing::warn!(origin = %o, "allowed origin ignored: {e}"))
                        .ok()?;
                    HeaderValue::from_str(&origin).ok()
                })
                .collect(),
        )
    }

    /// The router's layer (also answers preflight requests).
    pub(crate) fn layer(&self) -> Option<CorsLayer> {
        let allow = match self {
            Self::Off => return None,
            Self::Any => AllowOrigin::any(),
            Self::List(list) => AllowOrigin::list(list.iter().cloned()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static(api::HEADER_IDEMPOTENCY_KEY),
                    HeaderName::from_static(api::HEADER_LAST_EVENT_ID),
                ])
                .expose_headers([HeaderName::from_static(api::HEADER_IDEMPOTENT_REPLAYED)])
                .max_age(Duration::from_secs(600)),
        )
    }

    /// Appends the header fields (`name: value\r\n`) that [`Cors::layer`]
    /// adds to an answer that is not a preflight, in the order hyper writes
    /// them, for a request whose (first) `Origin` is `origin`.
    pub(crate) fn write_fields(&self, origin: Option<&[u8]>, out: &mut Vec<u8>) {
        let allowed: &[u8] = match self {
            Self::Off => return,
            Self::Any => b"*",
            Self::List(list) => match origin {
                Some(o) if list.iter().any(|l| l.as_bytes() == o) => o,
                _ => b"",
            },
        };
        out.extend_from_slice(b"vary: ");
        out.extend_from_slice(VARY.as_bytes());
        out.extend_from_slice(b"\r\n");
        if !allowed.is_empty() {
            out.extend_from_slice(b"access-control-allow-origin: ");
            out.extend_from_slice(allowed);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"access-control-expose-headers: ");
        out.extend_from_slice(api::HEADER_IDEMPOTENT_REPLAYED.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}
