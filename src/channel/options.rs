//! `SSEChannel` options, their defaults, and `SSEChannel.configure`.

use std::cell::RefCell;

use sse_channel_protocol::descriptor::relay_origin;
use sse_channel_protocol::limits::{
    MAX_ABANDON_AFTER_MS, MAX_CHANNEL_TTL_SECS, MIN_ABANDON_AFTER_MS,
};
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::JsValue;

use crate::js_error::js_error;
use crate::machine::{Config, Kind, TransportChoice, MS_MAX};

/// Every option of `new SSEChannel(options)` and `SSEChannel.configure(options)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Options {
    /// `relay`: base URL of the relay, http(s). No default: `open()` rejects with
    /// `INVALID_OPTIONS` when neither the options nor `configure` set one.
    pub(crate) relay: Option<String>,
    /// `ttlSecs`: lifetime asked for the channel on creation. Default: the
    /// relay's (1 hour unless configured).
    pub(crate) ttl_secs: Option<u64>,
    /// `abandonAfterMs`: sent on creation; the relay cancels the channel (reason
    /// `ABANDONED`) once nobody has listened for this long. Default `None`: off.
    /// Between 1,000 and 3,600,000.
    pub(crate) abandon_after_ms: Option<u64>,
    /// The options the decisions depend on, with their defaults
    /// ([`Config`]: `transport`, `reconnect.*`, `openTimeoutMs`, `heartbeatTimeoutMs`).
    pub(crate) cfg: Config,
}

thread_local! {
    static DEFAULTS: RefCell<Options> = const { RefCell::new(Options::DEFAULT) };
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

const ABANDON_MSG: &str =
    "option `abandonAfterMs` must be a whole number of milliseconds from 1000 to 3600000";

/// Checks `options` as [`configure_defaults`] would, changing nothing.
#[cfg(feature = "writer")]
pub(crate) fn check_defaults(options: &JsValue) -> Result<(), JsValue> {
    Options::merged(&defaults(), options).map(drop)
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

/// A whole number of `min..=max`, or `INVALID_OPTIONS` with `message`.
fn whole(v: &JsValue, min: f64, max: f64, message: &str) -> Result<f64, JsValue> {
    match v.as_f64() {
        Some(n) if n >= min && n <= max && n.fract() == 0.0 => Ok(n),
        _ => Err(invalid(message)),
    }
}

/// `obj[key]` when present, checked by [`whole`]. One call per numeric option keeps the
/// browser build small.
fn number(
    obj: &JsValue,
    key: &str,
    min: f64,
    max: f64,
    message: &str,
) -> Result<Option<f64>, JsValue> {
    get(obj, key)?
        .map(|v| whole(&v, min, max, message))
        .transpose()
}

/// The largest value of the millisecond options.
const MS: f64 = MS_MAX as f64;

impl Options {
    /// The defaults of `new SSEChannel()` before any `configure`.
    pub(crate) const DEFAULT: Options = Options {
        relay: None,
        ttl_secs: None,
        abandon_after_ms: None,
        cfg: Config::DEFAULT,
    };

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
            o.cfg.transport = match v.as_string().as_deref() {
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
            // 0 would retry without any delay, forever: refused.
            if let Some(n) = number(
                &r,
                "minDelayMs",
                1.0,
                MS,
                "option `reconnect.minDelayMs` must be a whole number of milliseconds, at least 1",
            )? {
                o.cfg.min_delay_ms = n as u32;
            }
            if let Some(n) = number(
                &r,
                "maxDelayMs",
                0.0,
                MS,
                "option `reconnect.maxDelayMs` must be a whole number of milliseconds",
            )? {
                o.cfg.max_delay_ms = n as u32;
            }
            if let Some(v) = get(&r, "maxAttempts")? {
                o.cfg.max_attempts = if v.as_f64() == Some(f64::INFINITY) {
                    None
                } else {
                    Some(whole(
                        &v,
                        0.0,
                        f64::from(u32::MAX),
                        "option `reconnect.maxAttempts` must be a whole number or Infinity",
                    )? as u32)
                };
            }
            if o.cfg.max_delay_ms < o.cfg.min_delay_ms {
                return Err(invalid(
                    "option `reconnect.maxDelayMs` must not be below `minDelayMs`",
                ));
            }
        }
        if let Some(n) = number(
            js,
            "openTimeoutMs",
            1.0,
            MS,
            "option `openTimeoutMs` must be a positive whole number of milliseconds",
        )? {
            o.cfg.open_timeout_ms = n as u32;
        }
        if let Some(n) = number(
            js,
            "heartbeatTimeoutMs",
            0.0,
            MS,
            "option `heartbeatTimeoutMs` must be a whole number of milliseconds (0 disables)",
        )? {
            o.cfg.heartbeat_timeout_ms = Some(n as u32);
        }
        if let Some(n) = number(
            js,
            "ttlSecs",
            0.0,
            MAX_CHANNEL_TTL_SECS as f64,
            "option `ttlSecs` must be a whole number of seconds, at most 86400",
        )? {
            if n == 0.0 {
                return Err(invalid("option `ttlSecs` must be at least 1"));
            }
            o.ttl_secs = Some(n as u64);
        }
        if let Some(n) = number(
            js,
            "abandonAfterMs",
            MIN_ABANDON_AFTER_MS as f64,
            MAX_ABANDON_AFTER_MS as f64,
            ABANDON_MSG,
        )? {
            o.abandon_after_ms = Some(n as u64);
        }
        Ok(o)
    }
}
