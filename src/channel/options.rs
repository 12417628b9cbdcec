//! `SSEChannel` options, their defaults, and `SSEChannel.configure`.

use std::cell::RefCell;

use sse_channel_protocol::descriptor::relay_origin;
use sse_channel_protocol::limits::MAX_CHANNEL_TTL_SECS;
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::JsValue;

use crate::backoff::{DEFAULT_MAX_DELAY_MS, DEFAULT_MIN_DELAY_MS};
use crate::js_error::js_error;
use crate::transport::Kind;

/// Default `openTimeoutMs`: 10 s from `open()` to a live subscription.
pub(crate) const DEFAULT_OPEN_TIMEOUT_MS: u32 = 10_000;
/// Heartbeat timeout when the relay's `ready` frame gives no interval: 45 s.
pub(crate) const FALLBACK_HEARTBEAT_TIMEOUT_MS: u32 = 45_000;

/// Which transport to use (`transport` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportChoice {
    /// `'auto'` (default): WebSocket, falling back to EventSource for good when
    /// a WebSocket cannot open before it ever delivered its `ready` frame.
    Auto,
    /// Only this transport.
    Only(Kind),
}

/// Every option of `new SSEChannel(options)` and `SSEChannel.configure(options)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    /// `relay`: base URL of the relay, http(s). No default: `open()` rejects with
    /// `INVALID_OPTIONS` when neither the options nor `configure` set one.
    pub(crate) relay: Option<String>,
    /// `transport`: `'auto'` (default), `'websocket'` or `'eventsource'`.
    pub(crate) transport: TransportChoice,
    /// `reconnect.minDelayMs`: smallest backoff delay. Default 500 ms.
    pub(crate) min_delay_ms: u32,
    /// `reconnect.maxDelayMs`: largest backoff delay. Default 10,000 ms.
    pub(crate) max_delay_ms: u32,
    /// `reconnect.maxAttempts`: failed reconnection attempts in a row before
    /// giving up with `RECONNECT_EXHAUSTED`. Default `Infinity` (`None`: never
    /// give up); `0` means never reconnect. The count restarts whenever the
    /// subscription is live again.
    pub(crate) max_attempts: Option<u32>,
    /// `openTimeoutMs`: time from `open()` to a live subscription before it
    /// rejects with `OPEN_TIMEOUT`; also bounds each reconnection attempt.
    /// Default 10,000 ms.
    pub(crate) open_timeout_ms: u32,
    /// `heartbeatTimeoutMs`: silence (no event, no heartbeat) after which a live
    /// connection is replaced (`HEARTBEAT_TIMEOUT`, then reconnect). Default
    /// (`None`): 2.5 × the `heartbeatMs` of the relay's `ready` frame, or 45 s.
    /// `0` disables the check.
    pub(crate) heartbeat_timeout_ms: Option<u32>,
    /// `ttlSecs`: lifetime asked for the channel on creation. Default: the
    /// relay's (1 hour unless configured).
    pub(crate) ttl_secs: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            relay: None,
            transport: TransportChoice::Auto,
            min_delay_ms: DEFAULT_MIN_DELAY_MS,
            max_delay_ms: DEFAULT_MAX_DELAY_MS,
            max_attempts: None,
            open_timeout_ms: DEFAULT_OPEN_TIMEOUT_MS,
            heartbeat_timeout_ms: None,
            ttl_secs: None,
        }
    }
}

thread_local! {
    static DEFAULTS: RefCell<Options> = RefCell::new(Options::default());
}

/// The defaults `new SSEChannel()` starts from.
pub(crate) fn defaults() -> Options {
    DEFAULTS.with(|d| d.borrow().clone())
}

/// Merges `options` into the defaults for later constructions
/// (`SSEChannel.configure`, `installUniCloud`). Invalid options change nothing
/// and throw `INVALID_OPTIONS`.
pub(crate) fn configure_defaults(options: &JsValue) -> Result<(), JsValue> {
    let merged = Options::merged(&defaults(), options)?;
    DEFAULTS.with(|d| *d.borrow_mut() = merged);
    Ok(())
}

fn invalid(message: &str) -> JsValue {
    js_error(ErrorCode::InvalidOptions, message)
}

fn get(obj: &JsValue, key: &str) -> Result<Option<JsValue>, JsValue> {
    let v = js_sys::Reflect::get(obj, &JsValue::from_str(key))?;
    Ok(if v.is_undefined() || v.is_null() {
        None
    } else {
        Some(v)
    })
}

/// A whole number of `0..=max`, or `INVALID_OPTIONS` naming the option.
fn whole(v: &JsValue, max: f64, message: &str) -> Result<f64, JsValue> {
    match v.as_f64() {
        Some(n) if n >= 0.0 && n <= max && n.fract() == 0.0 => Ok(n),
        _ => Err(invalid(message)),
    }
}

const MS_MAX: f64 = 2_147_483_647.0; // setTimeout's largest delay

impl Options {
    /// `base` with every option present in `js` (an object, or undefined/null
    /// for none) replacing its value.
    pub(crate) fn merged(base: &Options, js: &JsValue) -> Result<Options, JsValue> {
        let mut o = base.clone();
        if js.is_undefined() || js.is_null() {
            return Ok(o);
        }
        if !js.is_object() {
            return Err(invalid("SSEChannel options must be an object"));
        }
        if let Some(v) = get(js, "relay")? {
            let relay = v
                .as_string()
                .filter(|s| relay_origin(s).is_ok())
                .ok_or_else(|| {
                    invalid("option `relay` must be an http(s) URL without credentials, query or fragment")
                })?;
            o.relay = Some(relay.trim_end_matches('/').to_owned());
        }
        if let Some(v) = get(js, "transport")? {
            o.transport = match v.as_string().as_deref() {
                Some("auto") => TransportChoice::Auto,
                Some("websocket") => TransportChoice::Only(Kind::WebSocket),
                Some("eventsource") => TransportChoice::Only(Kind::EventSource),
                _ => {
                    return Err(invalid(
                        "option `transport` must be 'auto', 'websocket' or 'eventsource'",
                    ))
                }
            };
        }
        if let Some(r) = get(js, "reconnect")? {
            if !r.is_object() {
                return Err(invalid("option `reconnect` must be an object"));
            }
            if let Some(v) = get(&r, "minDelayMs")? {
                o.min_delay_ms = whole(
                    &v,
                    MS_MAX,
                    "option `reconnect.minDelayMs` must be a whole number of milliseconds",
                )? as u32;
            }
            if let Some(v) = get(&r, "maxDelayMs")? {
                o.max_delay_ms = whole(
                    &v,
                    MS_MAX,
                    "option `reconnect.maxDelayMs` must be a whole number of milliseconds",
                )? as u32;
            }
            if let Some(v) = get(&r, "maxAttempts")? {
                o.max_attempts = if v.as_f64() == Some(f64::INFINITY) {
                    None
                } else {
                    Some(whole(
                        &v,
                        f64::from(u32::MAX),
                        "option `reconnect.maxAttempts` must be a whole number or Infinity",
                    )? as u32)
                };
            }
            if o.max_delay_ms < o.min_delay_ms {
                return Err(invalid(
                    "option `reconnect.maxDelayMs` must not be below `minDelayMs`",
                ));
            }
        }
        if let Some(v) = get(js, "openTimeoutMs")? {
            let n = whole(
                &v,
                MS_MAX,
                "option `openTimeoutMs` must be a positive whole number of milliseconds",
            )?;
            if n == 0.0 {
                return Err(invalid(
                    "option `openTimeoutMs` must be a positive whole number of milliseconds",
                ));
            }
            o.open_timeout_ms = n as u32;
        }
        if let Some(v) = get(js, "heartbeatTimeoutMs")? {
            o.heartbeat_timeout_ms = Some(whole(
                &v,
                MS_MAX,
                "option `heartbeatTimeoutMs` must be a whole number of milliseconds (0 disables)",
            )? as u32);
        }
        if let Some(v) = get(js, "ttlSecs")? {
            let n = whole(
                &v,
                MAX_CHANNEL_TTL_SECS as f64,
                "option `ttlSecs` must be a whole number of seconds, at most 86400",
            )?;
            if n == 0.0 {
                return Err(invalid("option `ttlSecs` must be at least 1"));
            }
            o.ttl_secs = Some(n as u64);
        }
        Ok(o)
    }

    /// The heartbeat timeout for a stream whose `ready` frame announced
    /// `heartbeat_ms`; `None` when the check is disabled.
    pub(crate) fn heartbeat_timeout(&self, heartbeat_ms: Option<u64>) -> Option<u32> {
        let ms = match self.heartbeat_timeout_ms {
            Some(ms) => ms,
            None => heartbeat_ms
                .map(|h| (h.saturating_mul(5) / 2).min(MS_MAX as u64) as u32)
                .unwrap_or(FALLBACK_HEARTBEAT_TIMEOUT_MS),
        };
        (ms > 0).then_some(ms)
    }
}
