//! `SSEChannel` options, their defaults, and `SSEChannel.configure`.

use std::cell::RefCell;

use sse_channel_protocol::descriptor::relay_origin;
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::prelude::*;

use crate::js_error::js_error;
use crate::machine::{Config, Kind, TransportChoice};

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

#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    /// Reads and checks every option after `relay` into `out` (`sseOptions` in src/browser.js).
    #[wasm_bindgen(js_name = sseOptions, catch)]
    fn sse_options(options: &JsValue, out: &mut [f64]) -> Result<(), JsValue>;
}

/// `None` as NaN, for `sseOptions`.
fn or_nan(v: Option<impl Into<f64>>) -> f64 {
    v.map_or(f64::NAN, Into::into)
}

/// NaN as `None`, from `sseOptions` (which wrote a whole number in range, or nothing).
fn or_none(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

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
        // The rest in one JS call (`sseOptions`): `out` starts as `o`, as numbers.
        let c = &mut o.cfg;
        let mut out = [
            match c.transport {
                TransportChoice::Auto => 0.0,
                TransportChoice::Only(Kind::WebSocket) => 1.0,
                TransportChoice::Only(Kind::EventSource) => 2.0,
            },
            c.min_delay_ms.into(),
            c.max_delay_ms.into(),
            c.max_attempts.map_or(f64::INFINITY, f64::from),
            c.open_timeout_ms.into(),
            or_nan(c.heartbeat_timeout_ms),
            or_nan(o.ttl_secs.map(|n| n as f64)),
            or_nan(o.abandon_after_ms.map(|n| n as f64)),
        ];
        sse_options(js, &mut out)?;
        let [transport, min, max, attempts, open, heartbeat, ttl, abandon] = out;
        c.transport = match transport as u8 {
            0 => TransportChoice::Auto,
            1 => TransportChoice::Only(Kind::WebSocket),
            _ => TransportChoice::Only(Kind::EventSource),
        };
        c.min_delay_ms = min as u32;
        c.max_delay_ms = max as u32;
        c.max_attempts = (attempts != f64::INFINITY).then_some(attempts as u32);
        c.open_timeout_ms = open as u32;
        c.heartbeat_timeout_ms = or_none(heartbeat).map(|n| n as u32);
        o.ttl_secs = or_none(ttl).map(|n| n as u64);
        o.abandon_after_ms = or_none(abandon).map(|n| n as u64);
        Ok(o)
    }
}
