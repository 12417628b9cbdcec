//! Claims inside the signed tokens.
//!
//! Tokens are JWTs (compact form, HS256) signed by the relay with its secret, so
//! an integrator's backend can mint them with any JWT library. The relay signs
//! and verifies; browsers and writers treat tokens as opaque strings.
//!
//! ```
//! use sse_channel_protocol::{Claims, Scope};
//! let c = Claims { sub: "0123456789abcdef0123456789abcdef".into(), scope: Scope::Publish, exp: 1_700_000_000 };
//! assert_eq!(serde_json::to_string(&c).unwrap(),
//!     r#"{"sub":"0123456789abcdef0123456789abcdef","scope":"publish","exp":1700000000}"#);
//! ```

use serde::{Deserialize, Serialize};

/// The one right a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Open the channel's event stream.
    Subscribe,
    /// Publish messages and end the channel.
    Publish,
}

/// The JWT payload: `{"sub": channelId, "scope": "subscribe"|"publish", "exp": seconds}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The channel id the token is for.
    pub sub: String,
    /// The right it grants.
    pub scope: Scope,
    /// Expiry, Unix time in seconds (the JWT convention).
    pub exp: u64,
}

/// The JWT header the relay writes and requires: `{"alg":"HS256","typ":"JWT"}`.
pub const JWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
