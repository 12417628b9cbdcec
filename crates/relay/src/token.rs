//! Signed tokens: JWT compact form, HS256, claims [`Claims`].
//!
//! ```
//! use sse_channel_protocol::{Claims, Scope};
//! use sse_relay::token::{TokenKey, TokenError};
//! let key = TokenKey::new(b"secret");
//! let id = "0123456789abcdef0123456789abcdef";
//! let t = key.sign(&Claims { sub: id.into(), scope: Scope::Publish, exp: 2_000_000_000 });
//! assert_eq!(key.verify(&t, id, Scope::Publish, 1_700_000_000), Ok(()));
//! assert_eq!(key.verify(&t, id, Scope::Subscribe, 1_700_000_000), Err(TokenError::WrongScope));
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sse_channel_protocol::limits::MAX_TOKEN_LEN;
use sse_channel_protocol::token::JWT_HEADER;
use sse_channel_protocol::{Claims, ErrorCode, Scope};

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Missing, too long, not three base64url parts, or claims that do not parse.
    Malformed,
    /// The signature does not verify with this relay's key.
    BadSignature,
    /// The header is not `{"alg":"HS256"}` (optionally with `"typ":"JWT"`).
    BadHeader,
    /// An authentic token for this channel and scope whose `exp` has passed.
    /// The relay's own tokens expire with their channel (`exp` is the channel's
    /// expiry, rounded up to the second), so this means the channel's lifetime
    /// is over: [`ErrorCode::ChannelExpired`].
    Expired,
    /// `sub` is another channel.
    WrongChannel,
    /// A valid token granting the other right.
    WrongScope,
}

impl TokenError {
    /// The wire code: [`ErrorCode::Forbidden`] for a wrong scope,
    /// [`ErrorCode::ChannelExpired`] for an authentic token whose only fault is
    /// its `exp`, otherwise [`ErrorCode::Unauthorized`].
    pub fn code(self) -> ErrorCode {
        match self {
            Self::WrongScope => ErrorCode::Forbidden,
            Self::Expired => ErrorCode::ChannelExpired,
            _ => ErrorCode::Unauthorized,
        }
    }

    /// A sentence for the error body. Never contains the token.
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "token missing or malformed",
            Self::BadSignature => "token signature does not verify",
            Self::BadHeader => "token header must be HS256",
            Self::Expired => "the channel has expired (its token's exp has passed)",
            Self::WrongChannel => "token is for another channel",
            Self::WrongScope => "token grants another right",
        }
    }
}

/// The HMAC key that signs and verifies tokens, with an optional previous key
/// that still verifies (key rotation: tokens signed before a rollover keep
/// working until they expire).
#[derive(Clone)]
pub struct TokenKey {
    mac: HmacSha256,
    previous: Option<HmacSha256>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

#[derive(serde::Deserialize)]
struct Header<'a> {
    alg: &'a str,
    #[serde(default)]
    typ: Option<&'a str>,
}

impl TokenKey {
    /// A key from secret bytes (any length; the relay's configuration asks for
    /// at least [`crate::config::MIN_SECRET_BYTES`]).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            mac: hmac_key(secret),
            previous: None,
        }
    }

    /// A key that signs with `secret` and verifies with `secret` or `previous`.
    ///
    /// ```
    /// use sse_channel_protocol::{Claims, Scope};
    /// use sse_relay::token::{TokenKey, TokenError};
    /// let id = "0123456789abcdef0123456789abcdef";
    /// let claims = Claims { sub: id.into(), scope: Scope::Publish, exp: 2_000_000_000 };
    /// let old = TokenKey::new(b"old").sign(&claims);
    /// let rotated = TokenKey::with_previous(b"new", b"old");
    /// assert_eq!(rotated.verify(&old, id, Scope::Publish, 1), Ok(()));
    /// // New tokens are signed with the new key only.
    /// let new = rotated.sign(&claims);
    /// assert_eq!(TokenKey::new(b"old").verify(&new, id, Scope::Publish, 1), Err(TokenError::BadSignature));
    /// ```
    pub fn with_previous(secret: &[u8], previous: &[u8]) -> Self {
        Self {
            mac: hmac_key(secret),
            previous: Some(hmac_key(previous)),
        }
    }

    /// The compact JWT for these claims.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let mut out = String::with_capacity(64 + payload.len() * 4 / 3 + 44);
        URL_SAFE_NO_PAD.encode_string(JWT_HEADER, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let mut mac = self.mac.clone();
        mac.update(out.as_bytes());
        let sig = mac.finalize().into_bytes();
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut out);
        out
    }

    /// Checks `token` grants `scope` on `channel` at `now_secs` (Unix seconds).
    /// The signature is compared in constant time before anything in the token
    /// is trusted. `exp` is checked last: [`TokenError::Expired`] only for a
    /// token that is authentic, well-formed, for `channel` and of `scope`, so a
    /// forged, altered or other-channel token is never told apart by its age.
    ///
    /// ```
    /// use sse_channel_protocol::{Claims, ErrorCode, Scope};
    /// use sse_relay::token::{TokenKey, TokenError};
    /// let key = TokenKey::new(b"secret");
    /// let id = "0123456789abcdef0123456789abcdef";
    /// let old = key.sign(&Claims { sub: id.into(), scope: Scope::Publish, exp: 100 });
    /// assert_eq!(key.verify(&old, id, Scope::Publish, 100), Err(TokenError::Expired));
    /// assert_eq!(TokenError::Expired.code(), ErrorCode::ChannelExpired);
    /// // Expired and of the other scope: the scope decides.
    /// assert_eq!(key.verify(&old, id, Scope::Subscribe, 100), Err(TokenError::WrongScope));
    /// // Expired and forged: the signature decides.
    /// assert_eq!(TokenKey::new(b"other").verify(&old, id, Scope::Publish, 100), Err(TokenError::BadSignature));
    /// ```
    pub fn verify(
        &self,
        token: &str,
        channel: &str,
        scope: Scope,
        now_secs: u64,
    ) -> Result<(), TokenError> {
        check(&self.claims(token)?, channel, scope, now_secs)
    }

    /// The claims of an authentic, well-formed token, not yet checked
    /// against a channel, a scope or the time.
    fn claims(&self, token: &str) -> Result<Claims, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| TokenError::Malformed)?;
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        let authentic = |key: &HmacSha256| {
            let mut mac = key.clone();
            mac.update(signed);
            mac.verify_slice(&sig).is_ok()
        };
        if !authentic(&self.mac) && !self.previous.as_ref().is_some_and(authentic) {
            return Err(TokenError::BadSignature);
        }
        let header = URL_SAFE_NO_PAD
            .decode(h)
            .map_err(|_| TokenError::Malformed)?;
        let header: Header<'_> =
            serde_json::from_slice(&header).map_err(|_| TokenError::BadHeader)?;
        if header.alg != "HS256" || header.typ.is_some_and(|t| t != "JWT") {
            return Err(TokenError::BadHeader);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)
    }
}

/// What [`TokenKey::verify`] checks of an authentic token's claims, in its order.
fn check(claims: &Claims, channel: &str, scope: Scope, now_secs: u64) -> Result<(), TokenError> {
    if claims.sub != channel {
        return Err(TokenError::WrongChannel);
    }
    if claims.scope != scope {
        return Err(TokenError::WrongScope);
    }
    if claims.exp <= now_secs {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// Most tokens [`Verified`] remembers; when full it starts over.
const VERIFIED_TOKENS: usize = 256;

/// The claims of tokens that verified lately, keyed by the token's text. A
/// writer sends the same publish token with every request, and checking it
/// again costs an HMAC, three base64 decodings and two JSON parses. Only a
/// token that verified is remembered, and the channel, the scope and the
/// expiry are checked again on every use, so the answer is always the one
/// [`TokenKey::verify`] gives (the relay's key never changes while it runs).
/// At most [`VERIFIED_TOKENS`] entries (under 100 KiB with the relay's own
/// tokens).
#[derive(Debug, Default)]
pub(crate) struct Verified(std::sync::Mutex<crate::FastMap<Box<str>, Claims>>);

impl Verified {
    /// [`TokenKey::verify`] with `key`, from memory when `token` verified lately.
    pub(crate) fn verify(
        &self,
        key: &TokenKey,
        token: &str,
        channel: &str,
        scope: Scope,
        now_secs: u64,
    ) -> Result<(), TokenError> {
        if let Some(claims) = crate::lock(&self.0).get(token) {
            return check(claims, channel, scope, now_secs);
        }
        let claims = key.claims(token)?;
        check(&claims, channel, scope, now_secs)?;
        let mut known = crate::lock(&self.0);
        if known.len() >= VERIFIED_TOKENS {
            known.clear();
        }
        known.insert(token.into(), claims);
        Ok(())
    }
}

fn hmac_key(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC takes any key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn claims(scope: Scope, exp: u64) -> Claims {
        Claims {
            sub: ID.into(),
            scope,
            exp,
        }
    }

    #[test]
    fn refusals() {
        let k = TokenKey::new(b"k1");
        let t = k.sign(&claims(Scope::Subscribe, 100));
        assert_eq!(k.verify(&t, ID, Scope::Subscribe, 99), Ok(()));
        assert_eq!(
            k.verify(&t, ID, Scope::Subscribe, 100),
            Err(TokenError::Expired)
        );
        assert_eq!(
            k.verify(&t, "ffffffffffffffffffffffffffffffff", Scope::Subscribe, 1),
            Err(TokenError::WrongChannel)
        );
        // Expired and for another channel: another channel's token, whatever its age.
        assert_eq!(
            k.verify(
                &t,
                "ffffffffffffffffffffffffffffffff",
                Scope::Subscribe,
                100
            ),
            Err(TokenError::WrongChannel)
        );
        assert_eq!(
            k.verify(&t, ID, Scope::Publish, 100),
            Err(TokenError::WrongScope)
        );
        assert_eq!(
            k.verify(&t, ID, Scope::Publish, 1),
            Err(TokenError::WrongScope)
        );
        assert_eq!(
            TokenKey::new(b"k2").verify(&t, ID, Scope::Subscribe, 1),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            k.verify("a.b", ID, Scope::Subscribe, 1),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            k.verify("", ID, Scope::Subscribe, 1),
            Err(TokenError::Malformed)
        );
        // Altered payload: signature no longer verifies.
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(br#"{"sub":"0123456789abcdef0123456789abcdef","scope":"publish","exp":100}"#);
        parts[1] = &forged;
        assert_eq!(
            k.verify(&parts.join("."), ID, Scope::Publish, 1),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn remembered_tokens_get_the_answers_of_verify() {
        let k = TokenKey::new(b"k1");
        let known = Verified::default();
        let other = "ffffffffffffffffffffffffffffffff";
        let t = k.sign(&claims(Scope::Publish, 100));
        let sub = k.sign(&claims(Scope::Subscribe, 100));
        let forged = format!("{t}x");
        for _ in 0..2 {
            for (token, channel, scope, now) in [
                (&t, ID, Scope::Publish, 99),
                (&t, ID, Scope::Publish, 100),
                (&t, other, Scope::Publish, 1),
                (&t, ID, Scope::Subscribe, 1),
                (&sub, ID, Scope::Subscribe, 50),
                (&sub, ID, Scope::Publish, 50),
                (&forged, ID, Scope::Publish, 1),
            ] {
                assert_eq!(
                    known.verify(&k, token, channel, scope, now),
                    k.verify(token, channel, scope, now),
                    "{token} {channel} {scope:?} {now}"
                );
            }
        }
        // Only tokens that verified are kept.
        assert_eq!(crate::lock(&known.0).len(), 2);
        // Bounded: past the limit it starts over.
        for exp in 0..VERIFIED_TOKENS as u64 + 1 {
            let t = k.sign(&claims(Scope::Publish, 1000 + exp));
            assert_eq!(known.verify(&k, &t, ID, Scope::Publish, 1), Ok(()));
        }
        assert!(crate::lock(&known.0).len() <= VERIFIED_TOKENS);
    }

    #[test]
    fn other_algorithms_are_refused_even_when_signed() {
        let k = TokenKey::new(b"k1");
        let mut s = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        s.push('.');
        s.push_str(
            &URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(Scope::Publish, 100)).unwrap()),
        );
        let mut mac = k.mac.clone();
        mac.update(s.as_bytes());
        s.push('.');
        s.push_str(&URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        assert_eq!(
            k.verify(&s, ID, Scope::Publish, 1),
            Err(TokenError::BadHeader)
        );
    }
}
