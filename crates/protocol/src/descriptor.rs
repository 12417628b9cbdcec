//! The serialized channel: what `SSEChannel.toJSON()` returns and what
//! `deserializeSSEChannel` accepts.
//!
//! A descriptor carries the right to publish to one channel and nothing else.
//! It is attacker-controlled input on the cloud-function side, so
//! [`Descriptor::validate`] checks every field, and [`relay_origin`] gives the
//! normalized origin that the writer compares against its allow-list.
//!
//! ```
//! use sse_channel_protocol::Descriptor;
//! let d = Descriptor::new("https://relay.example.com", "0123456789abcdef0123456789abcdef", "tok", 1);
//! assert!(d.validate().is_ok());
//! assert_eq!(d.relay_origin().unwrap(), "https://relay.example.com");
//! ```

use serde::{Deserialize, Serialize};

use crate::limits::{CHANNEL_ID_LEN, MAX_TOKEN_LEN};

/// Value of the `type` field.
pub const DESCRIPTOR_TYPE: &str = "SSEChannel";
/// The descriptor version this crate writes and reads.
pub const DESCRIPTOR_VERSION: u32 = 1;
/// Longest accepted `relay` URL.
pub const MAX_RELAY_URL_LEN: usize = 2048;

/// The serialized channel, version 1:
/// `{"type":"SSEChannel","version":1,"relay":"https://…","channelId":"…","publishToken":"…","expiresAt":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Always [`DESCRIPTOR_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Always [`DESCRIPTOR_VERSION`] for this crate.
    pub version: u32,
    /// Base URL of the relay (`http` or `https`, optional path prefix, no query).
    pub relay: String,
    /// The channel id: [`CHANNEL_ID_LEN`] lowercase hex digits.
    pub channel_id: String,
    /// Signed token granting the right to publish to this channel.
    pub publish_token: String,
    /// Expiry, Unix time in milliseconds.
    pub expires_at: u64,
}

/// Why a descriptor was refused. Maps to the `INVALID_DESCRIPTOR` error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DescriptorError {
    /// `type` is not `"SSEChannel"`.
    WrongType,
    /// `version` is not one this crate reads.
    UnsupportedVersion,
    /// `relay` is not an absolute http(s) URL without credentials, query or fragment.
    BadRelay,
    /// `channelId` is not 32 lowercase hex digits.
    BadChannelId,
    /// `publishToken` is empty, too long, or not URL-safe text.
    BadToken,
}

impl DescriptorError {
    /// A sentence naming the field at fault.
    pub fn message(self) -> &'static str {
        match self {
            Self::WrongType => "descriptor field `type` must be \"SSEChannel\"",
            Self::UnsupportedVersion => "descriptor field `version` must be 1",
            Self::BadRelay => {
                "descriptor field `relay` must be an http(s) URL without credentials, query or fragment"
            }
            Self::BadChannelId => "descriptor field `channelId` must be 32 lowercase hex digits",
            Self::BadToken => "descriptor field `publishToken` is missing or malformed",
        }
    }
}

impl core::fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for DescriptorError {}

impl Descriptor {
    /// A version-1 descriptor.
    pub fn new(relay: &str, channel_id: &str, publish_token: &str, expires_at: u64) -> Self {
        Self {
            kind: DESCRIPTOR_TYPE.to_owned(),
            version: DESCRIPTOR_VERSION,
            relay: relay.trim_end_matches('/').to_owned(),
            channel_id: channel_id.to_owned(),
            publish_token: publish_token.to_owned(),
            expires_at,
        }
    }

    /// Checks every field; see [`DescriptorError`].
    pub fn validate(&self) -> Result<(), DescriptorError> {
        if self.kind != DESCRIPTOR_TYPE {
            return Err(DescriptorError::WrongType);
        }
        if self.version != DESCRIPTOR_VERSION {
            return Err(DescriptorError::UnsupportedVersion);
        }
        relay_origin(&self.relay)?;
        if !is_channel_id(&self.channel_id) {
            return Err(DescriptorError::BadChannelId);
        }
        if !is_token_text(&self.publish_token) {
            return Err(DescriptorError::BadToken);
        }
        Ok(())
    }

    /// The normalized origin of [`Descriptor::relay`]; see [`relay_origin`].
    pub fn relay_origin(&self) -> Result<String, DescriptorError> {
        relay_origin(&self.relay)
    }
}

/// True when `s` is a well-formed channel id: [`CHANNEL_ID_LEN`] lowercase hex digits.
///
/// ```
/// assert!(sse_channel_protocol::descriptor::is_channel_id("0123456789abcdef0123456789abcdef"));
/// assert!(!sse_channel_protocol::descriptor::is_channel_id("../x"));
/// ```
pub fn is_channel_id(s: &str) -> bool {
    s.len() == CHANNEL_ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// True when `s` could be a token: 1 to [`MAX_TOKEN_LEN`] characters of base64url
/// and `.` (the JWT compact form).
pub fn is_token_text(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The origin (`scheme://host[:port]`, lowercase, default port dropped) of an
/// http(s) base URL, or [`DescriptorError::BadRelay`].
///
/// Refuses credentials (`user@host`), queries, fragments, whitespace, control
/// characters and backslashes, so that a descriptor can never smuggle a target
/// past an allow-list that compares origins.
///
/// ```
/// use sse_channel_protocol::descriptor::relay_origin;
/// assert_eq!(relay_origin("HTTPS://Relay.Example.com:443/base").unwrap(), "https://relay.example.com");
/// assert_eq!(relay_origin("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
/// assert!(relay_origin("https://evil@relay.example.com").is_err());
/// assert!(relay_origin("file:///etc/passwd").is_err());
/// ```
pub fn relay_origin(url: &str) -> Result<String, DescriptorError> {
    let bad = DescriptorError::BadRelay;
    if url.len() > MAX_RELAY_URL_LEN
        || url
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'\\' | b'?' | b'#' | b'@'))
    {
        return Err(bad);
    }
    // Byte positions and `get` throughout, rather than `split_once`/`split`/
    // `split_at`: the browser bundle then holds no string searcher and no
    // panicking slice (whose formatting costs more than this function). A
    // scheme has no ':', so the first one must start "://".
    let colon = find(url, b':').ok_or(bad)?;
    let scheme = url.get(..colon).ok_or(bad)?;
    let rest = url
        .get(colon + 1..)
        .and_then(|r| r.strip_prefix("//"))
        .ok_or(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(bad),
    };
    let authority = rest
        .get(..find(rest, b'/').unwrap_or(rest.len()))
        .ok_or(bad)?;
    let (host, port) = split_host_port(authority).ok_or(bad)?;
    if host.is_empty() {
        return Err(bad);
    }
    let host = host.to_ascii_lowercase();
    let valid_host = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|v6| {
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        })
    } else {
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    if !valid_host {
        return Err(bad);
    }
    let mut origin = scheme;
    origin.push_str("://");
    origin.push_str(&host);
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        // At most 5 digits: no overflow. Parsed and written by hand (no
        // `parse`/`to_string`: their formatting machinery would be paid by
        // the browser bundle); leading zeros are dropped.
        let n = port.bytes().fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
        if n == 0 || n > 65535 {
            return Err(bad);
        }
        if n != default_port {
            origin.push(':');
            let zeros = port.bytes().take_while(|&b| b == b'0').count();
            origin.push_str(port.get(zeros..).ok_or(bad)?);
        }
    }
    Ok(origin)
}

fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let at = if authority.starts_with('[') {
        let end = find(authority, b']')? + 1;
        if end == authority.len() {
            return Some((authority, None));
        }
        if authority.as_bytes().get(end) != Some(&b':') {
            return None;
        }
        end
    } else {
        match find(authority, b':') {
            Some(i) => i,
            None => return Some((authority, None)),
        }
    };
    Some((authority.get(..at)?, Some(authority.get(at + 1..)?)))
}

/// The index of the first byte `b` (an ASCII byte, so a char boundary) in `s`.
fn find(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|x| x == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn json_shape_is_stable() {
        let d = Descriptor::new("http://127.0.0.1:8080/", ID, "a.b.c", 42);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"type":"SSEChannel","version":1,"relay":"http://127.0.0.1:8080","channelId":"0123456789abcdef0123456789abcdef","publishToken":"a.b.c","expiresAt":42}"#
        );
        let back: Descriptor = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn validation_names_the_field() {
        let ok = Descriptor::new("https://r.example", ID, "t", 1);
        assert_eq!(ok.validate(), Ok(()));
        let mut d = ok.clone();
        d.kind = "Other".into();
        assert_eq!(d.validate(), Err(DescriptorError::WrongType));
        let mut d = ok.clone();
        d.version = 2;
        assert_eq!(d.validate(), Err(DescriptorError::UnsupportedVersion));
        let mut d = ok.clone();
        d.channel_id = "ABC".into();
        assert_eq!(d.validate(), Err(DescriptorError::BadChannelId));
        let mut d = ok.clone();
        d.publish_token = "a b".into();
        assert_eq!(d.validate(), Err(DescriptorError::BadToken));
        let mut d = ok;
        d.relay = "gopher://x".into();
        assert_eq!(d.validate(), Err(DescriptorError::BadRelay));
    }

    #[test]
    fn origins() {
        for (url, want) in [
            ("https://a.example", "https://a.example"),
            ("https://A.example:443", "https://a.example"),
            ("http://a.example:80/x/y", "http://a.example"),
            ("http://a.example:8080", "http://a.example:8080"),
            ("http://[::1]:9000/", "http://[::1]:9000"),
            ("http://localhost:08080", "http://localhost:8080"),
            ("HTTP://[::1]", "http://[::1]"),
            ("https://a.example:00443/", "https://a.example"),
        ] {
            assert_eq!(relay_origin(url).as_deref(), Ok(want), "{url}");
        }
        for url in [
            "",
            "https://",
            "https://a.example?x=1",
            "https://a.example#f",
            "https://u:p@a.example",
            "https://a.example:0",
            "https://a.example:99999",
            "https://a.example:",
            "https://a .example",
            "https://a.example\\@b",
            "javascript:alert(1)",
            "//a.example",
            "http://[::1",
            "http://[::1]x",
            "http://[::1]:",
            "https:/a.example",
            "https:a.example",
        ] {
            assert!(relay_origin(url).is_err(), "{url:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn origin_never_contains_separators(s in ".{0,80}") {
            if let Ok(o) = relay_origin(&s) {
                let rest = o.split_once("://").unwrap().1;
                prop_assert!(!rest.contains('/') && !rest.contains('@') && !rest.contains('?'));
            }
        }

        #[test]
        fn descriptor_round_trips(id in "[0-9a-f]{32}", tok in "[A-Za-z0-9_.-]{1,200}", exp in any::<u64>()) {
            let d = Descriptor::new("https://relay.example", &id, &tok, exp);
            prop_assert_eq!(d.validate(), Ok(()));
            let back: Descriptor = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
            prop_assert_eq!(back, d);
        }
    }
}
