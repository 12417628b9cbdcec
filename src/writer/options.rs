//! The writer options: their shape (serde), defaults and checks, and the relay
//! allow-list.
//!
//! The shape is declared once with serde and read with serde-wasm-bindgen
//! (this module is only in the Node build, which has no download budget).
//! Each field is [`Lenient`], so a value of the wrong type is reported with
//! the option's name rather than serde's generic "invalid type".

use serde::{Deserialize, Deserializer};
use sse_channel_protocol::descriptor::relay_origin;
use sse_channel_protocol::{api, limits, ErrorCode};
use wasm_bindgen::prelude::*;

use super::Failure;
use crate::js;

/// Environment variable holding the allowed relay origins, comma-separated, used
/// when `options.allowedRelays` is not given.
pub(crate) const ENV_ALLOWED_RELAYS: &str = "SSE_CHANNEL_ALLOWED_RELAYS";

/// Default `retry.maxAttempts`: attempts per request, the first one included.
pub(crate) const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default `retry.minDelayMs`: the first retry waits between this and twice it.
pub(crate) const DEFAULT_MIN_DELAY_MS: u32 = 250;
/// Default `retry.maxDelayMs`: no retry waits longer.
pub(crate) const DEFAULT_MAX_DELAY_MS: u32 = 4000;
/// Default `timeoutMs`, the time one attempt (request and answer) may take:
/// 15 s, three times the longest a relay holds a publish answer for a slow
/// reader at its defaults ([`limits::BACKPRESSURE_MAX_WAIT_MS`], 5 s), so a
/// held answer is never mistaken for a dead relay.
pub(crate) const DEFAULT_TIMEOUT_MS: u32 = 3 * limits::BACKPRESSURE_MAX_WAIT_MS as u32;
/// Default `maxQueued`: messages accepted by `write()` and not yet stored by
/// the relay (the request in flight included). 50,000: room for a burst of
/// un-awaited writes far beyond one batch, while a stuck relay costs the
/// function at most about 27 MB of heap for small messages (measured: about
/// 550 bytes per queued message plus its JSON text, BENCHMARKS.md).
pub(crate) const DEFAULT_MAX_QUEUED: usize = 50_000;
/// Largest number of attempts per request `retry.maxAttempts` may ask for.
const MAX_ATTEMPTS_CAP: f64 = 1000.0;
/// Largest delay a `setTimeout` honours, in milliseconds.
const MS_MAX: f64 = 2_147_483_647.0;

#[wasm_bindgen(typescript_custom_section)]
const OPTIONS_TS: &'static str = r#"
/** Options of `deserializeSSEChannel(descriptor, options)`; all optional. */
export interface SSEChannelWriterOptions {
  /**
   * Relay origins this function may post to, e.g. `['https://relay.example.com']`.
   * Default: the comma-separated origins of the environment variable `SSE_CHANNEL_ALLOWED_RELAYS`.
   * Without either every descriptor is refused (`RELAY_NOT_ALLOWED`). `'*'` is refused (`INVALID_OPTIONS`).
   */
  allowedRelays?: string[] | string;
  /** Largest message: its JSON text, in UTF-8 bytes. Default 65536 (the relay's default limit). */
  maxMessageBytes?: number;
  /** Largest request body a batch may have. Default 1048576 (the relay's default limit). */
  maxBodyBytes?: number;
  /** Most messages per batch request. Default 1000 (the relay's default limit). */
  maxBatchMessages?: number;
  /**
   * Most messages accepted and not yet stored by the relay (in flight included). A write beyond
   * it rejects with `QUEUE_FULL` and halts the writer (see `resume()`). Default 50000.
   */
  maxQueued?: number;
  /**
   * Time one attempt (request and answer) may take before it is aborted and retried. Default 15000
   * (a relay holds a publish answer for a slow reader up to 5000 at its defaults).
   */
  timeoutMs?: number;
  /** Retries of network errors, 5xx and 429 answers, with the same idempotency key. */
  retry?: {
    /** Attempts per request, the first included. Default 5. */
    maxAttempts?: number;
    /** The first retry waits between this and twice it; the window doubles per retry. Default 250. */
    minDelayMs?: number;
    /** Largest delay. Default 4000. */
    maxDelayMs?: number;
  };
}
"#;

/// A field read leniently: a value of the wrong type becomes `Wrong` instead of
/// failing the whole object, so the caller names the field in its message.
/// (serde-wasm-bindgen reads from a JS value, so a failed field leaves nothing
/// half-read behind.)
pub(super) enum Lenient<T> {
    Ok(T),
    Wrong,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(T::deserialize(d).map_or(Lenient::Wrong, Lenient::Ok))
    }
}

/// `allowedRelays`: one origin or a list of them.
enum AllowedRelays {
    One(String),
    Many(Vec<String>),
}

// By hand rather than `#[serde(untagged)]`, whose buffering of the value costs
// the Node build several KiB for a string-or-array choice.
impl<'de> Deserialize<'de> for AllowedRelays {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = AllowedRelays;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a relay origin or an array of them")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<AllowedRelays, E> {
                Ok(AllowedRelays::One(s.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AllowedRelays, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    all.push(s);
                }
                Ok(AllowedRelays::Many(all))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The `options` argument as JavaScript passes it (`null` and `undefined`
/// members are absent).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    allowed_relays: Option<Lenient<AllowedRelays>>,
    max_message_bytes: Option<Lenient<f64>>,
    max_body_bytes: Option<Lenient<f64>>,
    max_batch_messages: Option<Lenient<f64>>,
    max_queued: Option<Lenient<f64>>,
    timeout_ms: Option<Lenient<f64>>,
    retry: Option<Lenient<RetryShape>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryShape {
    max_attempts: Option<Lenient<f64>>,
    min_delay_ms: Option<Lenient<f64>>,
    max_delay_ms: Option<Lenient<f64>>,
}

/// Writer settings, read from the `options` argument.
#[derive(Clone)]
pub(crate) struct WriterOptions {
    allowed_origins: Vec<String>,
    /// Where `allowed_origins` came from, for the `RELAY_NOT_ALLOWED` message.
    allowed_source: &'static str,
    pub(super) max_message_bytes: usize,
    pub(super) max_body_bytes: usize,
    pub(super) max_batch_messages: usize,
    pub(super) max_queued: usize,
    pub(super) max_attempts: u32,
    pub(super) min_delay_ms: u32,
    pub(super) max_delay_ms: u32,
    pub(super) timeout_ms: u32,
}

fn invalid(message: &str) -> JsValue {
    Failure::new(ErrorCode::InvalidOptions, message).to_js()
}

impl WriterOptions {
    /// Reads `options` (undefined, null or an object). `fallback_allowed` is used
    /// when `allowedRelays` is absent, before the environment variable.
    pub(crate) fn from_js(
        options: &JsValue,
        fallback_allowed: Option<&JsValue>,
    ) -> Result<Self, JsValue> {
        if !options.is_undefined() && !options.is_null() && !options.is_object() {
            return Err(invalid("writer options must be an object"));
        }
        let shape: Shape = if options.is_object() {
            serde_wasm_bindgen::from_value(options.clone())
                .map_err(|_| invalid("writer options must be an object"))?
        } else {
            Shape::empty()
        };

        let (allowed_origins, allowed_source) = match shape.allowed_relays {
            Some(list) => (origins_from_option(list)?, "option `allowedRelays`"),
            None => match fallback_allowed
                .filter(|v| !v.is_undefined() && !v.is_null())
                .map(|v| serde_wasm_bindgen::from_value::<Lenient<AllowedRelays>>(v.clone()))
            {
                Some(list) => (
                    origins_from_option(list.unwrap_or(Lenient::Wrong))?,
                    "installUniCloud's `allowedRelays` (or the origin of its `relay`)",
                ),
                None => (
                    origins_from_env()?,
                    "the environment variable SSE_CHANNEL_ALLOWED_RELAYS",
                ),
            },
        };

        // The relay's limits may be set lower than the protocol's defaults
        // (`--max-body-bytes`, `--max-batch-messages`): then say so here too.
        let max_body_bytes = positive_int(shape.max_body_bytes, "maxBodyBytes")?
            .map_or(limits::MAX_BODY_BYTES, |n| n as usize);
        let max_batch_messages = positive_int(shape.max_batch_messages, "maxBatchMessages")?
            .map_or(limits::MAX_BATCH_MESSAGES, |n| n as usize);
        let max_message_bytes = positive_int(shape.max_message_bytes, "maxMessageBytes")?
            .map_or(limits::MAX_MESSAGE_BYTES, |n| n as usize);
        if max_message_bytes.saturating_add(api::BATCH_BODY_HEAD.len() + api::BATCH_BODY_TAIL.len())
            > max_body_bytes
        {
            return Err(invalid(
                "option `maxMessageBytes` must leave room for the batch envelope (15 bytes) within `maxBodyBytes` (default 1 MiB)",
            ));
        }
        let max_queued =
            positive_int(shape.max_queued, "maxQueued")?.map_or(DEFAULT_MAX_QUEUED, |n| n as usize);
        let timeout_ms = positive_int(shape.timeout_ms, "timeoutMs")?
            .map_or(DEFAULT_TIMEOUT_MS, |n| n.min(MS_MAX) as u32);

        let retry = match shape.retry {
            None => RetryShape::empty(),
            Some(Lenient::Ok(r)) => r,
            Some(Lenient::Wrong) => return Err(invalid("option `retry` must be an object")),
        };
        let max_attempts = positive_int(retry.max_attempts, "retry.maxAttempts")?
            .map_or(DEFAULT_MAX_ATTEMPTS, |n| n.min(MAX_ATTEMPTS_CAP) as u32);
        let min_delay_ms = non_negative(retry.min_delay_ms, "retry.minDelayMs")?
            .map_or(DEFAULT_MIN_DELAY_MS, |n| n.min(MS_MAX) as u32);
        let max_delay_ms = non_negative(retry.max_delay_ms, "retry.maxDelayMs")?
            .map_or(DEFAULT_MAX_DELAY_MS.max(min_delay_ms), |n| {
                n.min(MS_MAX) as u32
            });
        if max_delay_ms < min_delay_ms {
            return Err(invalid(
                "option `retry.maxDelayMs` must be at least `retry.minDelayMs`",
            ));
        }
        Ok(Self {
            allowed_origins,
            allowed_source,
            max_message_bytes,
            max_body_bytes,
            max_batch_messages,
            max_queued,
            max_attempts,
            min_delay_ms,
            max_delay_ms,
            timeout_ms,
        })
    }

    /// Refuses a relay origin that is not on the allow-list, naming the one
    /// setting that was read: an explicit option replaces the environment
    /// variable, so pointing at the variable then would mislead.
    pub(super) fn check_relay(&self, origin: &str) -> Result<(), JsValue> {
        if self.allowed_origins.iter().any(|o| o == origin) {
            return Ok(());
        }
        let mut message = ["the descriptor's relay origin ", origin].concat();
        if self.allowed_origins.is_empty() {
            message.push_str(" is not allowed: no relay is allowed yet; set option `allowedRelays` or the environment variable SSE_CHANNEL_ALLOWED_RELAYS (comma-separated origins)");
        } else {
            message.push_str(" is not allowed: it is not listed in ");
            message.push_str(self.allowed_source);
        }
        Err(Failure::new(ErrorCode::RelayNotAllowed, message).to_js())
    }
}

impl Shape {
    fn empty() -> Self {
        Self {
            allowed_relays: None,
            max_message_bytes: None,
            max_body_bytes: None,
            max_batch_messages: None,
            max_queued: None,
            timeout_ms: None,
            retry: None,
        }
    }
}

impl RetryShape {
    fn empty() -> Self {
        Self {
            max_attempts: None,
            min_delay_ms: None,
            max_delay_ms: None,
        }
    }
}

/// A number option that must be a positive integer, if present.
fn positive_int(v: Option<Lenient<f64>>, name: &str) -> Result<Option<f64>, JsValue> {
    match v {
        None => Ok(None),
        Some(Lenient::Ok(n)) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 => Ok(Some(n)),
        Some(_) => Err(invalid(
            &["option `", name, "` must be a positive integer"].concat(),
        )),
    }
}

/// A number option that must be finite and at least 0, if present.
fn non_negative(v: Option<Lenient<f64>>, name: &str) -> Result<Option<f64>, JsValue> {
    match v {
        None => Ok(None),
        Some(Lenient::Ok(n)) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        Some(_) => Err(invalid(
            &[
                "option `",
                name,
                "` must be a number of milliseconds, 0 or more",
            ]
            .concat(),
        )),
    }
}

/// `allowedRelays`: a string or an array of strings, each an http(s) origin.
fn origins_from_option(list: Lenient<AllowedRelays>) -> Result<Vec<String>, JsValue> {
    let entries = match list {
        Lenient::Ok(AllowedRelays::One(s)) => vec![s],
        Lenient::Ok(AllowedRelays::Many(v)) => v,
        Lenient::Wrong => return Err(invalid(
            "option `allowedRelays` must be an array of relay origins (strings), e.g. [\"https://relay.example.com\"]",
        )),
    };
    entries
        .iter()
        .map(|s| normalize_allowed(s, "option `allowedRelays`"))
        .collect()
}

/// `SSE_CHANNEL_ALLOWED_RELAYS` from `process.env`, comma-separated; empty when unset.
fn origins_from_env() -> Result<Vec<String>, JsValue> {
    let env = js::get(&js::get(&js_sys::global(), "process"), "env");
    js::get_string(&env, ENV_ALLOWED_RELAYS)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| normalize_allowed(s, "environment variable SSE_CHANNEL_ALLOWED_RELAYS"))
        .collect()
}

/// One allow-list entry, normalized like a descriptor's relay. `*` is refused on purpose.
fn normalize_allowed(entry: &str, setting: &str) -> Result<String, JsValue> {
    let entry = entry.trim();
    if entry == "*" {
        return Err(invalid(
            &[
                setting,
                ": \"*\" is not accepted; list each relay origin the function may post to",
            ]
            .concat(),
        ));
    }
    relay_origin(entry.trim_end_matches('/')).map_err(|_| {
        invalid(
            &[
                setting,
                ": `",
                entry,
                "` is not an http(s) origin like https://relay.example.com",
            ]
            .concat(),
        )
    })
}
