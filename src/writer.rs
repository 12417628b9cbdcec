//! The cloud-function side: `deserializeSSEChannel(descriptor, options?)` and
//! the writer it returns.
//!
//! ```js
//! const { deserializeSSEChannel } = require('open-sse-channel')
//! const ch = deserializeSSEChannel(event.sseChannel, { allowedRelays: ['https://relay.example.com'] })
//! ch.write('step 1')            // no await needed: writes keep program order
//! ch.write({ step: 2 })
//! await ch.end({ result: 42 })  // resolves once the relay has stored the end event
//! ```
//!
//! # Why it is built this way
//!
//! - **A descriptor is untrusted input.** It arrives in a function's event, so
//!   anyone who can call the function controls it. Every field is checked
//!   ([`Descriptor::validate`]) and the writer only posts to relay origins the
//!   deployer listed (`options.allowedRelays`, else the environment variable
//!   [`ENV_ALLOWED_RELAYS`]). There is no wildcard: `"*"` is refused with
//!   `INVALID_OPTIONS`, because it would let a caller aim the function's requests
//!   at any host (SSRF). Redirects are not followed.
//! - **Order without `await`.** `write` snapshots its payload as JSON text and
//!   appends it to one queue; a single flusher sends what is queued as one batch
//!   (`{"messages":[…]}`) while no earlier request is in flight, so program order
//!   is wire order and many quick writes cost few requests.
//! - **Retries never duplicate.** Every request carries an `Idempotency-Key`
//!   (random writer id + request number) that stays the same across its retries;
//!   the relay answers a replayed key from memory without storing again.
//! - **Payloads stay JS values.** Bodies are assembled from `JSON.stringify`
//!   output in JS strings; wasm only copies a payload's text once to measure its
//!   UTF-8 size.
//!
//! # Failures
//!
//! Every rejection is an `Error` with a stable `code`. A request that fails for
//! good rejects every write it carried. When the relay says the channel itself
//! is unusable (`UNAUTHORIZED`, `FORBIDDEN`, `CHANNEL_NOT_FOUND`,
//! `CHANNEL_ENDED`, `CHANNEL_EXPIRED`), every queued and later call rejects with
//! that code without another request. Other failures (`MESSAGE_TOO_LARGE`,
//! `BAD_REQUEST`, `RELAY_UNAVAILABLE`) reject only the writes of that request;
//! later writes are still sent.
//!
//! A write that is not awaited is still a promise: like any other, its
//! rejection is an unhandled rejection in Node.js unless it is awaited or given
//! a `.catch`. That is deliberate: a lost message should not pass silently.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Array, Function, JsString, Promise, Reflect, JSON};
use sse_channel_protocol::api::{self, field};
use sse_channel_protocol::{descriptor::relay_origin, limits, Descriptor, ErrorCode};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use crate::fetch::{fetch_with_init, has_fetch, Response};
use crate::js;
use crate::js_error::js_error;
use crate::timer::Timeout;

/// Environment variable holding the allowed relay origins, comma-separated, used
/// when `options.allowedRelays` is not given.
pub(crate) const ENV_ALLOWED_RELAYS: &str = "SSE_CHANNEL_ALLOWED_RELAYS";
/// The option naming the allowed relay origins.
pub(crate) const OPT_ALLOWED_RELAYS: &str = "allowedRelays";

/// Default number of attempts per request (the first one included).
const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default first retry delay; the delay doubles per attempt up to the maximum.
const DEFAULT_MIN_DELAY_MS: f64 = 250.0;
/// Default cap of the retry delay.
const DEFAULT_MAX_DELAY_MS: f64 = 4000.0;
/// Default time one attempt may take (request and answer) before it is aborted.
const DEFAULT_TIMEOUT_MS: f64 = 10_000.0;

#[wasm_bindgen]
extern "C" {
    type AbortController;
    #[wasm_bindgen(constructor)]
    fn new() -> AbortController;
    #[wasm_bindgen(method, getter)]
    fn signal(this: &AbortController) -> JsValue;
    #[wasm_bindgen(method)]
    fn abort(this: &AbortController);

    #[wasm_bindgen(method)]
    fn text(this: &Response) -> Promise;
}

#[wasm_bindgen(typescript_custom_section)]
const WRITER_TS: &'static str = r#"
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
  /** Time one attempt (request and answer) may take before it is aborted and retried. Default 10000. */
  timeoutMs?: number;
  /** Retries of network errors, 5xx and 429 answers, with the same idempotency key. */
  retry?: {
    /** Attempts per request, the first included. Default 5. */
    maxAttempts?: number;
    /** First delay; it doubles per attempt (jittered down to half). Default 250. */
    minDelayMs?: number;
    /** Largest delay. Default 4000. */
    maxDelayMs?: number;
  };
}

/**
 * Writes messages to one channel, as a cloud function. Made by `deserializeSSEChannel`.
 * Calls keep program order whether or not they are awaited; queued messages go out batched.
 */
export class SSEChannelWriter {
  private constructor();
  /**
   * Sends one message (any JSON-serializable value; `undefined` becomes `null`); resolves once the relay
   * has stored it. Rejects with a coded error: `CHANNEL_ENDED`, `MESSAGE_TOO_LARGE`, `BAD_REQUEST`,
   * `UNAUTHORIZED`, `FORBIDDEN`, `CHANNEL_NOT_FOUND`, `CHANNEL_EXPIRED` or `RELAY_UNAVAILABLE`.
   */
  write(data: any): Promise<void>;
  /** Sends the final message (default `null`) after every queued write and ends the channel. */
  end(data?: any): Promise<void>;
  /** The channel id (32 hex digits). */
  readonly channelId: string;
  /** True once `end()` has been called. */
  readonly ended: boolean;
  /** Releases the writer's memory now (optional; pending writes still settle). */
  free(): void;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// A descriptor argument: what `SSEChannel.toJSON()` returns, or its JSON text.
    #[wasm_bindgen(typescript_type = "SSEChannelDescriptor | string")]
    pub type DescriptorArg;
    /// The `options` argument of `deserializeSSEChannel`.
    #[wasm_bindgen(typescript_type = "SSEChannelWriterOptions")]
    pub type WriterOptionsArg;
    /// Any JSON-serializable value.
    #[wasm_bindgen(typescript_type = "any")]
    pub type AnyArg;
    /// A promise that resolves with nothing.
    #[wasm_bindgen(typescript_type = "Promise<void>")]
    pub type VoidPromise;
}

/// A coded failure, turned into a JS `Error` only at the boundary.
#[derive(Clone)]
struct Failure {
    code: ErrorCode,
    message: String,
}

impl Failure {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn to_js(&self) -> JsValue {
        js_error(self.code, &self.message)
    }

    /// True when the relay refused the channel itself, so no later request can succeed.
    fn is_final_for_channel(&self) -> bool {
        matches!(
            self.code,
            ErrorCode::Unauthorized
                | ErrorCode::Forbidden
                | ErrorCode::ChannelNotFound
                | ErrorCode::ChannelEnded
                | ErrorCode::ChannelExpired
        )
    }
}

/// Writer settings, read from the `options` argument.
#[derive(Clone)]
pub(crate) struct WriterOptions {
    allowed_origins: Vec<String>,
    /// Where `allowed_origins` came from, for the `RELAY_NOT_ALLOWED` message.
    allowed_source: &'static str,
    max_message_bytes: usize,
    max_body_bytes: usize,
    max_batch_messages: usize,
    max_attempts: u32,
    min_delay_ms: f64,
    max_delay_ms: f64,
    timeout_ms: f64,
}

impl WriterOptions {
    /// Reads `options` (undefined, null or an object). `fallback_allowed` is used
    /// when `allowedRelays` is absent, before the environment variable.
    pub(crate) fn from_js(
        options: &JsValue,
        fallback_allowed: Option<&JsValue>,
    ) -> Result<Self, JsValue> {
        let invalid = |m: &str| js_error(ErrorCode::InvalidOptions, m);
        let options = if options.is_undefined() || options.is_null() {
            None
        } else if options.is_object() {
            Some(options)
        } else {
            return Err(invalid("writer options must be an object"));
        };
        let get = |name: &str| -> JsValue {
            options
                .and_then(|o| Reflect::get(o, &JsValue::from_str(name)).ok())
                .unwrap_or(JsValue::UNDEFINED)
        };

        let allowed = get(OPT_ALLOWED_RELAYS);
        let (allowed_origins, allowed_source) = if !allowed.is_undefined() && !allowed.is_null() {
            (origins_from_option(&allowed)?, "option `allowedRelays`")
        } else if let Some(fallback) =
            fallback_allowed.filter(|v| !v.is_undefined() && !v.is_null())
        {
            (
                origins_from_option(fallback)?,
                "installUniCloud's `allowedRelays` (or the origin of its `relay`)",
            )
        } else {
            (
                origins_from_env()?,
                "the environment variable SSE_CHANNEL_ALLOWED_RELAYS",
            )
        };

        // The relay's limits may be set lower than the protocol's defaults
        // (`--max-body-bytes`, `--max-batch-messages`): then say so here too.
        let max_body_bytes = positive_int(&get("maxBodyBytes"), "maxBodyBytes")?
            .map_or(limits::MAX_BODY_BYTES, |n| n as usize);
        let max_batch_messages = positive_int(&get("maxBatchMessages"), "maxBatchMessages")?
            .map_or(limits::MAX_BATCH_MESSAGES, |n| n as usize);
        let max_message_bytes = positive_int(&get("maxMessageBytes"), "maxMessageBytes")?
            .map_or(limits::MAX_MESSAGE_BYTES, |n| n as usize);
        if max_message_bytes.saturating_add(api::BATCH_BODY_HEAD.len() + api::BATCH_BODY_TAIL.len())
            > max_body_bytes
        {
            return Err(invalid(
                "option `maxMessageBytes` must leave room for the batch envelope (15 bytes) within `maxBodyBytes` (default 1 MiB)",
            ));
        }
        let timeout_ms =
            positive_int(&get("timeoutMs"), "timeoutMs")?.unwrap_or(DEFAULT_TIMEOUT_MS);

        let retry = get("retry");
        let retry = if retry.is_undefined() || retry.is_null() {
            None
        } else if retry.is_object() {
            Some(retry)
        } else {
            return Err(invalid("option `retry` must be an object"));
        };
        let retry_get = |name: &str| -> JsValue {
            retry
                .as_ref()
                .and_then(|o| Reflect::get(o, &JsValue::from_str(name)).ok())
                .unwrap_or(JsValue::UNDEFINED)
        };
        let max_attempts = positive_int(&retry_get("maxAttempts"), "retry.maxAttempts")?
            .map_or(DEFAULT_MAX_ATTEMPTS, |n| n.min(1000.0) as u32);
        let min_delay_ms = non_negative(&retry_get("minDelayMs"), "retry.minDelayMs")?
            .unwrap_or(DEFAULT_MIN_DELAY_MS);
        let max_delay_ms = non_negative(&retry_get("maxDelayMs"), "retry.maxDelayMs")?
            .unwrap_or(DEFAULT_MAX_DELAY_MS.max(min_delay_ms));
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
            max_attempts,
            min_delay_ms,
            max_delay_ms,
            timeout_ms,
        })
    }
}

/// A number option that must be a positive integer, if present.
fn positive_int(v: &JsValue, name: &str) -> Result<Option<f64>, JsValue> {
    if v.is_undefined() {
        return Ok(None);
    }
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 => Ok(Some(n)),
        _ => Err(js_error(
            ErrorCode::InvalidOptions,
            &["option `", name, "` must be a positive integer"].concat(),
        )),
    }
}

/// A number option that must be finite and at least 0, if present.
fn non_negative(v: &JsValue, name: &str) -> Result<Option<f64>, JsValue> {
    if v.is_undefined() {
        return Ok(None);
    }
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(js_error(
            ErrorCode::InvalidOptions,
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
fn origins_from_option(v: &JsValue) -> Result<Vec<String>, JsValue> {
    let entries: Vec<JsValue> = if v.is_string() {
        vec![v.clone()]
    } else if Array::is_array(v) {
        Array::from(v).iter().collect()
    } else {
        return Err(js_error(
            ErrorCode::InvalidOptions,
            "option `allowedRelays` must be an array of relay origins, e.g. [\"https://relay.example.com\"]",
        ));
    };
    entries
        .iter()
        .map(|e| match e.as_string() {
            Some(s) => normalize_allowed(&s, "option `allowedRelays`"),
            None => Err(js_error(
                ErrorCode::InvalidOptions,
                "option `allowedRelays` must contain only strings",
            )),
        })
        .collect()
}

/// `SSE_CHANNEL_ALLOWED_RELAYS` from `process.env`, comma-separated; empty when unset.
fn origins_from_env() -> Result<Vec<String>, JsValue> {
    let global = js_sys::global();
    let value = Reflect::get(&global, &JsValue::from_str("process"))
        .ok()
        .filter(|p| p.is_object())
        .and_then(|p| Reflect::get(&p, &JsValue::from_str("env")).ok())
        .filter(|e| e.is_object())
        .and_then(|e| Reflect::get(&e, &JsValue::from_str(ENV_ALLOWED_RELAYS)).ok())
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    value
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
        return Err(js_error(
            ErrorCode::InvalidOptions,
            &[
                setting,
                ": \"*\" is not accepted; list each relay origin the function may post to",
            ]
            .concat(),
        ));
    }
    relay_origin(entry.trim_end_matches('/')).map_err(|_| {
        js_error(
            ErrorCode::InvalidOptions,
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

/// Reads and validates a descriptor given as an object or a JSON string.
fn read_descriptor(value: &JsValue) -> Result<Descriptor, JsValue> {
    let invalid = |m: &str| js_error(ErrorCode::InvalidDescriptor, m);
    let mut value = value.clone();
    if let Some(text) = value.as_string() {
        value =
            JSON::parse(&text).map_err(|_| invalid("the descriptor string is not valid JSON"))?;
    } else if value.is_object() {
        // An SSEChannel instance handed over in-process: use what JSON.stringify would.
        if let Ok(to_json) = Reflect::get(&value, &JsValue::from_str("toJSON")) {
            if let Some(f) = to_json.dyn_ref::<Function>() {
                value = f
                    .call0(&value)
                    .map_err(|_| invalid("the descriptor's toJSON() threw"))?;
            }
        }
    }
    if !value.is_object() || Array::is_array(&value) {
        return Err(invalid(
            "a descriptor must be the object (or JSON string) that SSEChannel.toJSON() returns",
        ));
    }
    let member =
        |name: &str| Reflect::get(&value, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
    let string = |name: &str| {
        member(name).as_string().ok_or_else(|| {
            invalid(&["descriptor field `", name, "` is missing or not a string"].concat())
        })
    };
    let kind = string(field::TYPE)?;
    let version = js::get_u64(&value, field::VERSION)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| invalid("descriptor field `version` is missing or not an integer"))?;
    let relay = string(field::RELAY)?;
    let channel_id = string(field::CHANNEL_ID)?;
    let publish_token = string(field::PUBLISH_TOKEN)?;
    let expires_at = member(field::EXPIRES_AT)
        .as_f64()
        .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n <= 9_007_199_254_740_991.0)
        .ok_or_else(|| {
            invalid("descriptor field `expiresAt` must be a Unix time in milliseconds (an integer)")
        })?;
    let descriptor = Descriptor {
        kind,
        version,
        relay: relay.trim_end_matches('/').to_owned(),
        channel_id,
        publish_token,
        expires_at: expires_at as u64,
    };
    descriptor.validate().map_err(|e| invalid(e.message()))?;
    Ok(descriptor)
}

/// Turns a descriptor into a writer. See [`SSEChannelWriter`].
///
/// `descriptor` is what the browser's `SSEChannel.toJSON()` returned, as an
/// object or a JSON string. `options` (all optional):
///
/// - `allowedRelays`: relay origins this function may post to, e.g.
///   `["https://relay.example.com"]`. Default: the comma-separated origins of the
///   environment variable `SSE_CHANNEL_ALLOWED_RELAYS`. Without either, every
///   descriptor is refused with `RELAY_NOT_ALLOWED`. `"*"` is refused.
/// - `maxMessageBytes`: largest message (its JSON text, UTF-8). Default 65536.
/// - `maxBodyBytes`, `maxBatchMessages`: largest request body and most messages
///   per batch. Defaults 1 MiB and 1000, the relay's defaults; lower them when
///   the relay's limits are lower.
/// - `timeoutMs`: time one attempt may take. Default 10000.
/// - `retry: { maxAttempts, minDelayMs, maxDelayMs }`: attempts per request
///   (default 5) and the capped exponential backoff between them, with jitter
///   (defaults 250 ms doubling up to 4000 ms).
///
/// Throws `INVALID_DESCRIPTOR`, `RELAY_NOT_ALLOWED` or `INVALID_OPTIONS`.
///
/// ```js
/// const ch = deserializeSSEChannel(event.sseChannel)   // allow-list from SSE_CHANNEL_ALLOWED_RELAYS
/// await ch.write({ progress: 0.5 })
/// await ch.end('done')
/// ```
#[wasm_bindgen(js_name = deserializeSSEChannel)]
pub fn deserialize_sse_channel(
    descriptor: DescriptorArg,
    options: Option<WriterOptionsArg>,
) -> Result<SSEChannelWriter, JsValue> {
    let options = WriterOptions::from_js(&options.map_or(JsValue::UNDEFINED, Into::into), None)?;
    writer_from(&descriptor, options)
}

/// Builds a writer with already-read options (shared with `installUniCloud`).
pub(crate) fn writer_from(
    descriptor: &JsValue,
    options: WriterOptions,
) -> Result<SSEChannelWriter, JsValue> {
    let d = read_descriptor(descriptor)?;
    let origin = d
        .relay_origin()
        .map_err(|e| js_error(ErrorCode::InvalidDescriptor, e.message()))?;
    if !options.allowed_origins.contains(&origin) {
        // Name the one setting that was read: an explicit option replaces the
        // environment variable, so pointing at the variable then would mislead.
        let mut message = ["the descriptor's relay origin ", &origin].concat();
        if options.allowed_origins.is_empty() {
            message.push_str(" is not allowed: no relay is allowed yet; set option `allowedRelays` or the environment variable SSE_CHANNEL_ALLOWED_RELAYS (comma-separated origins)");
        } else {
            message.push_str(" is not allowed: it is not listed in ");
            message.push_str(options.allowed_source);
        }
        return Err(js_error(ErrorCode::RelayNotAllowed, &message));
    }
    let mut authorization =
        String::with_capacity(api::AUTH_SCHEME.len() + 1 + d.publish_token.len());
    authorization.push_str(api::AUTH_SCHEME);
    authorization.push(' ');
    authorization.push_str(&d.publish_token);
    let inner = Inner {
        messages_url: [d.relay.as_str(), &api::messages_path(&d.channel_id)].concat(),
        end_url: [d.relay.as_str(), &api::end_path(&d.channel_id)].concat(),
        authorization,
        expires_at: d.expires_at as f64,
        writer_id: random_id(),
        next_request: 1,
        queue: VecDeque::new(),
        end: None,
        end_called: false,
        failed: None,
        flushing: false,
        options,
    };
    Ok(SSEChannelWriter {
        channel_id: d.channel_id,
        inner: Rc::new(RefCell::new(inner)),
    })
}

/// 16 random hex digits naming this writer in its idempotency keys.
fn random_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(16);
    for _ in 0..2 {
        let mut n = (js_sys::Math::random() * 4_294_967_296.0) as u32;
        for _ in 0..8 {
            s.push(HEX[(n & 15) as usize] as char);
            n >>= 4;
        }
    }
    s
}

/// One message waiting for the relay: its JSON text and its promise's settlers.
struct Pending {
    json: JsString,
    bytes: usize,
    resolve: Function,
    reject: Function,
}

struct Inner {
    messages_url: String,
    end_url: String,
    authorization: String,
    expires_at: f64,
    writer_id: String,
    next_request: u64,
    queue: VecDeque<Pending>,
    end: Option<Pending>,
    end_called: bool,
    failed: Option<Failure>,
    flushing: bool,
    options: WriterOptions,
}

enum Job {
    Batch(Vec<Pending>),
    End(Pending),
}

/// Writes messages to one channel, as a cloud function. Made by
/// `deserializeSSEChannel`.
///
/// `write(data)` and `end(data?)` return promises that resolve once the relay
/// has stored the message. Calls keep program order whether or not they are
/// awaited; queued messages are sent together in one request.
#[wasm_bindgen(skip_typescript)]
pub struct SSEChannelWriter {
    channel_id: String,
    inner: Rc<RefCell<Inner>>,
}

#[wasm_bindgen]
impl SSEChannelWriter {
    /// Sends one message (any JSON-serializable value; `undefined` becomes
    /// `null`). Resolves when the relay has stored it. Rejects with
    /// `CHANNEL_ENDED` after `end()`, `MESSAGE_TOO_LARGE` when its JSON text is
    /// over `maxMessageBytes`, `BAD_REQUEST` when it cannot be serialized, or
    /// with the relay's refusal (`UNAUTHORIZED`, `CHANNEL_EXPIRED`, …) or
    /// `RELAY_UNAVAILABLE` after the retries.
    #[wasm_bindgen(skip_typescript)]
    pub fn write(&self, data: AnyArg) -> VoidPromise {
        self.enqueue(data.into(), false).unchecked_into()
    }

    /// Sends the final message (default `null`) after every queued write, and
    /// ends the channel: subscribers get `end(data)` and then `close`. Later
    /// `write`/`end` calls reject with `CHANNEL_ENDED`.
    #[wasm_bindgen(skip_typescript)]
    pub fn end(&self, data: Option<AnyArg>) -> VoidPromise {
        self.enqueue(data.map_or(JsValue::NULL, Into::into), true)
            .unchecked_into()
    }

    /// The channel id (32 hex digits).
    #[wasm_bindgen(getter, js_name = channelId, skip_typescript)]
    pub fn channel_id(&self) -> String {
        self.channel_id.clone()
    }

    /// True once `end()` has been called.
    #[wasm_bindgen(getter, skip_typescript)]
    pub fn ended(&self) -> bool {
        self.inner.borrow().end_called
    }
}

impl SSEChannelWriter {
    fn enqueue(&self, data: JsValue, is_end: bool) -> Promise {
        let mut settlers = None;
        let promise = Promise::new(&mut |resolve, reject| settlers = Some((resolve, reject)));
        let Some((resolve, reject)) = settlers else {
            return promise;
        };
        let refusal = {
            let mut inner = self.inner.borrow_mut();
            if inner.end_called {
                Some(Failure::new(
                    ErrorCode::ChannelEnded,
                    if is_end {
                        "end() was already called on this channel"
                    } else {
                        "write() after end(): the channel is ended"
                    },
                ))
            } else if let Some(f) = &inner.failed {
                Some(f.clone())
            } else if js_sys::Date::now() >= inner.expires_at {
                Some(Failure::new(
                    ErrorCode::ChannelExpired,
                    "the channel's lifetime (expiresAt) is over",
                ))
            } else {
                match to_json(&data, inner.options.max_message_bytes) {
                    Err(f) => Some(f),
                    Ok((json, bytes)) => {
                        let pending = Pending {
                            json,
                            bytes,
                            resolve,
                            reject: reject.clone(),
                        };
                        if is_end {
                            inner.end_called = true;
                            inner.end = Some(pending);
                        } else {
                            inner.queue.push_back(pending);
                        }
                        None
                    }
                }
            }
        };
        match refusal {
            Some(f) => {
                let _ = reject.call1(&JsValue::UNDEFINED, &f.to_js());
            }
            None => self.kick(),
        }
        promise
    }

    /// Starts the flusher unless it is running.
    fn kick(&self) {
        let mut inner = self.inner.borrow_mut();
        if !inner.flushing {
            inner.flushing = true;
            spawn_local(flush(self.inner.clone()));
        }
    }
}

/// The payload's JSON text and its UTF-8 size, or why it cannot be sent.
fn to_json(data: &JsValue, max_bytes: usize) -> Result<(JsString, usize), Failure> {
    let json = match JSON::stringify(data) {
        // JSON.stringify(undefined) (or a function) is undefined: send null, as an array would.
        Ok(s) if JsValue::from(&s).is_string() => s,
        Ok(_) => JsString::from("null"),
        Err(e) => {
            let why = Reflect::get(&e, &JsValue::from_str("message"))
                .ok()
                .and_then(|m| m.as_string())
                .unwrap_or_default();
            return Err(Failure::new(
                ErrorCode::BadRequest,
                ["the message is not JSON-serializable: ", &why].concat(),
            ));
        }
    };
    // UTF-8 needs at least one byte and at most three per UTF-16 unit, so the
    // text is copied into wasm to be measured only when that bound is not
    // enough. Small messages count with the upper bound: batches then stay a
    // little under `maxBodyBytes`, never over.
    let units = json.length() as usize;
    let bytes = if units.saturating_mul(3) <= max_bytes {
        units.saturating_mul(3)
    } else if units > max_bytes {
        units
    } else {
        String::from(&json).len()
    };
    if bytes > max_bytes {
        let mut m = String::from("the message is ");
        m.push_str(if units > max_bytes { "at least " } else { "" });
        m.push_str(&bytes.to_string());
        m.push_str(" bytes of JSON; the limit is ");
        m.push_str(&max_bytes.to_string());
        m.push_str(" (option `maxMessageBytes`)");
        return Err(Failure::new(ErrorCode::MessageTooLarge, m));
    }
    Ok((json, bytes))
}

/// Sends what is queued, one request at a time, until nothing is left.
async fn flush(inner: Rc<RefCell<Inner>>) {
    loop {
        let (job, url, body, key, authorization, policy) = {
            let mut me = inner.borrow_mut();
            if let Some(f) = me.failed.clone() {
                let reason = f.to_js();
                let mut refused = std::mem::take(&mut me.queue);
                refused.extend(me.end.take());
                for p in refused {
                    let _ = p.reject.call1(&JsValue::UNDEFINED, &reason);
                }
                me.flushing = false;
                return;
            }
            let job = if !me.queue.is_empty() {
                let (bytes, count) = (me.options.max_body_bytes, me.options.max_batch_messages);
                Job::Batch(take_batch(&mut me.queue, bytes, count))
            } else if let Some(end) = me.end.take() {
                Job::End(end)
            } else {
                me.flushing = false;
                return;
            };
            let (url, body) = match &job {
                Job::Batch(items) => (me.messages_url.clone(), batch_body(items)),
                Job::End(p) => (
                    me.end_url.clone(),
                    JsString::from(api::DATA_BODY_HEAD)
                        .concat(&p.json)
                        .concat(&api::DATA_BODY_TAIL.into()),
                ),
            };
            let mut key = me.writer_id.clone();
            key.push('-');
            key.push_str(&me.next_request.to_string());
            me.next_request += 1;
            (
                job,
                url,
                body,
                key,
                me.authorization.clone(),
                RetryPolicy::of(&me.options),
            )
        };
        let outcome = send(&url, &body, &key, &authorization, policy).await;
        let items = match job {
            Job::Batch(items) => items,
            Job::End(p) => vec![p],
        };
        match outcome {
            Ok(()) => {
                for p in items {
                    let _ = p.resolve.call0(&JsValue::UNDEFINED);
                }
            }
            Err(f) => {
                let reason = f.to_js();
                for p in items {
                    let _ = p.reject.call1(&JsValue::UNDEFINED, &reason);
                }
                if f.is_final_for_channel() {
                    inner.borrow_mut().failed = Some(f);
                }
            }
        }
    }
}

/// The longest prefix of the queue that fits one request of at most
/// `max_bytes` and `max_messages` (and at least one message).
fn take_batch(
    queue: &mut VecDeque<Pending>,
    max_bytes: usize,
    max_messages: usize,
) -> Vec<Pending> {
    let mut size = api::BATCH_BODY_HEAD.len() + api::BATCH_BODY_TAIL.len();
    let mut batch = Vec::new();
    while let Some(next) = queue.front() {
        let added = next.bytes + usize::from(!batch.is_empty());
        if !batch.is_empty() && (batch.len() >= max_messages || size + added > max_bytes) {
            break;
        }
        size += added;
        batch.extend(queue.pop_front());
    }
    batch
}

/// `{"messages":[a,b,…]}`, assembled from the payloads' JSON text in JS strings.
fn batch_body(items: &[Pending]) -> JsString {
    let parts: Array = items.iter().map(|p| JsValue::from(&p.json)).collect();
    JsString::from(api::BATCH_BODY_HEAD)
        .concat(&parts.join(","))
        .concat(&api::BATCH_BODY_TAIL.into())
}

/// The part of the options one request needs, copied so the flusher holds no borrow.
#[derive(Clone, Copy)]
struct RetryPolicy {
    max_attempts: u32,
    min_delay_ms: f64,
    max_delay_ms: f64,
    timeout_ms: f64,
}

impl RetryPolicy {
    fn of(o: &WriterOptions) -> Self {
        Self {
            max_attempts: o.max_attempts,
            min_delay_ms: o.min_delay_ms,
            max_delay_ms: o.max_delay_ms,
            timeout_ms: o.timeout_ms,
        }
    }
}

enum Attempt {
    Stored,
    Refused(Failure),
    Retry(String),
}

/// One request with its retries: the same idempotency key on every attempt.
async fn send(
    url: &str,
    body: &JsString,
    key: &str,
    authorization: &str,
    o: RetryPolicy,
) -> Result<(), Failure> {
    let mut attempt = 1;
    loop {
        match attempt_once(url, body, key, authorization, o.timeout_ms).await {
            Attempt::Stored => return Ok(()),
            Attempt::Refused(f) => return Err(f),
            Attempt::Retry(why) => {
                if attempt >= o.max_attempts {
                    let mut m = String::from("the relay did not store the request after ");
                    m.push_str(&attempt.to_string());
                    m.push_str(" attempts; last: ");
                    m.push_str(&why);
                    return Err(Failure::new(ErrorCode::RelayUnavailable, m));
                }
                sleep(backoff_ms(attempt, o.min_delay_ms, o.max_delay_ms)).await;
                attempt += 1;
            }
        }
    }
}

/// Delay before retry number `attempt` (1-based): the capped exponential
/// `min * 2^(attempt-1)`, jittered down to half of it at random.
fn backoff_ms(attempt: u32, min: f64, max: f64) -> f64 {
    let cap = (min * 2f64.powi(attempt.saturating_sub(1).min(30) as i32)).min(max);
    cap * (0.5 + js_sys::Math::random() * 0.5)
}

async fn sleep(ms: f64) {
    let mut timer = None;
    let promise = Promise::new(&mut |resolve, _| {
        timer = Some(Timeout::new(ms as u32, move || {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }));
    });
    let _ = JsFuture::from(promise).await;
    drop(timer);
}

/// One HTTP attempt, aborted after `timeout_ms` (request and answer body).
async fn attempt_once(
    url: &str,
    body: &JsString,
    key: &str,
    authorization: &str,
    timeout_ms: f64,
) -> Attempt {
    let controller = AbortController::new();
    let headers = js::object(&[
        (api::HEADER_CONTENT_TYPE, api::JSON_CONTENT_TYPE.into()),
        (api::HEADER_AUTHORIZATION, authorization.into()),
        (api::HEADER_IDEMPOTENCY_KEY, key.into()),
    ]);
    let init = js::object(&[
        ("method", "POST".into()),
        ("headers", headers),
        ("body", body.into()),
        ("redirect", "manual".into()),
        ("signal", controller.signal()),
    ]);
    // Cancelled when dropped, after the exchange.
    let _deadline = Timeout::new(timeout_ms as u32, move || controller.abort());
    exchange(url, &init).await
}

async fn exchange(url: &str, init: &JsValue) -> Attempt {
    if !has_fetch() {
        return Attempt::Refused(Failure::new(
            ErrorCode::RelayUnavailable,
            "no global fetch(): the writer needs Node.js 18 or later",
        ));
    }
    let promise = fetch_with_init(url, init);
    let response: Response = match JsFuture::from(promise).await {
        Ok(r) => r.unchecked_into(),
        Err(e) => return Attempt::Retry(network_reason(&e)),
    };
    let status = response.status();
    // Read the whole answer so the connection can be reused.
    let text = match JsFuture::from(response.text()).await {
        Ok(t) => t.as_string().unwrap_or_default(),
        Err(e) => return Attempt::Retry(network_reason(&e)),
    };
    classify(status, &text)
}

fn network_reason(e: &JsValue) -> String {
    let mut m = String::from("network error: ");
    let msg = js::get_string(e, "message").unwrap_or_default();
    m.push_str(&msg);
    // Node's fetch puts the socket error (ECONNREFUSED, …) in `cause`.
    let cause = Reflect::get(e, &JsValue::from_str("cause"))
        .ok()
        .filter(|c| c.is_object());
    let detail = |name: &str| {
        cause
            .as_ref()
            .and_then(|c| Reflect::get(c, &JsValue::from_str(name)).ok())
            .and_then(|v| v.as_string())
    };
    if let Some(why) = detail("code").or_else(|| detail("message")) {
        m.push_str(" (");
        m.push_str(&why);
        m.push(')');
    }
    m
}

/// What an answer means: stored, retry, or a final refusal with its code.
fn classify(status: u16, text: &str) -> Attempt {
    let mut status_text = String::from("HTTP ");
    status_text.push_str(&status.to_string());
    if (200..300).contains(&status) {
        return Attempt::Stored;
    }
    if status == 429 || status >= 500 {
        return Attempt::Retry(status_text);
    }
    if (300..400).contains(&status) || status == 0 {
        status_text.push_str(": the relay answered a redirect, which the writer does not follow");
        return Attempt::Refused(Failure::new(ErrorCode::RelayUnavailable, status_text));
    }
    // The relay's `{"error":{"code","message"}}`, when it is one.
    let detail = JSON::parse(text)
        .ok()
        .filter(|v| v.is_object())
        .and_then(|v| Reflect::get(&v, &JsValue::from_str(field::ERROR)).ok())
        .filter(|e| e.is_object());
    let read = |name: &str| {
        detail
            .as_ref()
            .and_then(|e| Reflect::get(e, &JsValue::from_str(name)).ok())
            .and_then(|v| v.as_string())
    };
    let relay_code = read(field::CODE).and_then(|c| ErrorCode::parse(&c));
    let by_status = match status {
        401 | 403 => ErrorCode::Unauthorized,
        404 => ErrorCode::ChannelNotFound,
        409 => ErrorCode::ChannelEnded,
        410 => ErrorCode::ChannelExpired,
        413 => ErrorCode::MessageTooLarge,
        _ => ErrorCode::BadRequest,
    };
    // Keep the relay's code when it agrees with the status (e.g. FORBIDDEN for 403).
    let code = relay_code
        .filter(|c| c.http_status() == status || (status == 403 && *c == ErrorCode::Forbidden))
        .unwrap_or(by_status);
    let mut message = String::from("the relay refused the request (");
    message.push_str(&status_text);
    message.push(')');
    if let Some(m) = read(field::MESSAGE) {
        message.push_str(": ");
        message.push_str(&m);
    }
    Attempt::Refused(Failure::new(code, message))
}
