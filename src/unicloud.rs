//! `installUniCloud(uniCloud, options)`: the uniCloud drop-in.
//!
//! It sets `uniCloud.SSEChannel` (the browser class, with `options.relay` as its
//! default relay) and `uniCloud.deserializeSSEChannel` (the cloud-function
//! writer, bound to `options.allowedRelays`), so the examples of uniCloud's own
//! documentation run unchanged. Each build installs what it has: with the
//! `browser` feature alone (the npm package's browser build) only `SSEChannel`,
//! and the writer options are not read; with `writer` alone (its Node build)
//! only `deserializeSSEChannel`, and of the `SSEChannel` options only `relay`
//! is read (as the default allow-list). The browser build's is JavaScript
//! (`pkg-template/build/facade.js`, the same checks, codes and messages), so
//! its wasm holds none of this module's code:
//!
//! ```js
//! // browser
//! import { installUniCloud } from 'open-sse-channel'
//! installUniCloud(uniCloud, { relay: 'https://relay.example.com' })
//! const sseChannel = new uniCloud.SSEChannel()
//!
//! // cloud function
//! const { installUniCloud } = require('open-sse-channel')
//! installUniCloud(uniCloud, { allowedRelays: ['https://relay.example.com'] })
//! const sseChannel = uniCloud.deserializeSSEChannel(event.sseChannel)
//! ```

#[cfg(feature = "writer")]
use js_sys::{Object, Reflect};
#[cfg(feature = "writer")]
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::prelude::*;

#[cfg(feature = "writer")]
use crate::js_error::js_error;
#[cfg(feature = "writer")]
use crate::writer::{writer_from, WriterOptions};

#[cfg(all(feature = "browser", feature = "writer"))]
#[wasm_bindgen(typescript_custom_section)]
const UNICLOUD_TS: &'static str = r#"
/** Options of `installUniCloud(uniCloud, options)`; all optional. */
export interface InstallUniCloudOptions extends SSEChannelOptions, SSEChannelWriterOptions {
  /** Relay base URL that `new uniCloud.SSEChannel()` uses; its origin is also the writer's default allow-list. */
  relay?: string;
}
"#;

#[cfg(all(feature = "browser", not(feature = "writer")))]
#[wasm_bindgen(typescript_custom_section)]
const UNICLOUD_TS: &'static str = r#"
/**
 * Options of `installUniCloud(uniCloud, options)` in the browser; all optional. The browser build
 * installs `uniCloud.SSEChannel` only (`deserializeSSEChannel` is in the Node build).
 */
export interface InstallUniCloudOptions extends SSEChannelOptions {
  /** Relay base URL that `new uniCloud.SSEChannel()` uses. */
  relay?: string;
}

/**
 * Installs `SSEChannel` on a `uniCloud` object and returns it; `options.relay` and the other
 * `SSEChannel` options become the defaults of `new uniCloud.SSEChannel()` (as
 * `SSEChannel.configure` would). Throws `INVALID_OPTIONS` when `uniCloud` is not an object or an
 * option is malformed, and `UNICLOUD_INSTALL_FAILED` when the property does not take effect (a
 * frozen `uniCloud`, a read-only property); either way it installs nothing.
 *
 * ```js
 * installUniCloud(uniCloud, { relay: 'https://relay.example.com' })
 * ```
 */
export function installUniCloud(uniCloud: any, options?: InstallUniCloudOptions | null): any;
"#;

#[cfg(all(feature = "writer", not(feature = "browser")))]
#[wasm_bindgen(typescript_custom_section)]
const UNICLOUD_TS: &'static str = r#"
/**
 * Options of `installUniCloud(uniCloud, options)` in Node.js; all optional. The Node build
 * installs `uniCloud.deserializeSSEChannel` only (`SSEChannel` is in the browser build).
 */
export interface InstallUniCloudOptions extends SSEChannelWriterOptions {
  /** A relay base URL: its origin is the default allow-list when `allowedRelays` is absent. */
  relay?: string;
}
"#;

// The browser build's `installUniCloud` is JavaScript (`pkg-template/build/facade.js`): as a wasm
// export it cost the browser bundle a shim and the glue for a few property checks. The Node build's
// (and the default build's, for the tests) is this one.
#[cfg(feature = "writer")]
#[wasm_bindgen]
extern "C" {
    /// The `uniCloud` object (any object).
    #[wasm_bindgen(typescript_type = "any")]
    pub type UniCloudArg;
    /// The `options` argument of `installUniCloud`.
    #[wasm_bindgen(typescript_type = "InstallUniCloudOptions")]
    pub type InstallOptionsArg;
}

/// Installs `SSEChannel` and `deserializeSSEChannel` on a `uniCloud` object and
/// returns it (each build installs only what it has: the browser build
/// `SSEChannel`, the Node build `deserializeSSEChannel`; see the module docs).
///
/// `options` (all optional):
/// - `relay`: the relay base URL that `new uniCloud.SSEChannel()` uses. The
///   other `SSEChannel` options (`transport`, `reconnect`, `openTimeoutMs`, …)
///   become its defaults too (as `SSEChannel.configure` would).
/// - `allowedRelays`: relay origins `uniCloud.deserializeSSEChannel` may post
///   to. Default: the origin of `relay` when given, else the environment
///   variable `SSE_CHANNEL_ALLOWED_RELAYS`. The other writer options
///   (`maxMessageBytes`, `timeoutMs`, `retry`) apply too, and a second argument
///   to `uniCloud.deserializeSSEChannel(obj, options)` overrides them.
///
/// Throws `UNICLOUD_INSTALL_FAILED`, installing nothing, when a property does
/// not take effect (a frozen `uniCloud`, a read-only property). Throws
/// `INVALID_OPTIONS` when `uniCloud` is not an object or an option this
/// build reads is malformed (the browser build does not read the writer
/// options, the Node build reads `relay` alone of the `SSEChannel` options).
///
/// ```js
/// installUniCloud(uniCloud, { relay: 'https://relay.example.com' })
/// ```
#[cfg(feature = "writer")]
#[wasm_bindgen(js_name = installUniCloud)]
#[allow(non_snake_case)] // the parameter name shows in the generated TypeScript
pub fn install_uni_cloud(
    uniCloud: UniCloudArg,
    options: Option<InstallOptionsArg>,
) -> Result<UniCloudArg, JsValue> {
    let uni_cloud: JsValue = uniCloud.into();
    let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
    if !uni_cloud.is_object() && !uni_cloud.is_function() {
        return Err(js_error(
            ErrorCode::InvalidOptions,
            "installUniCloud(uniCloud, options): uniCloud must be the uniCloud object",
        ));
    }
    let options = if options.is_undefined() || options.is_null() {
        Object::new().into()
    } else if options.is_object() {
        options
    } else {
        return Err(js_error(
            ErrorCode::InvalidOptions,
            "installUniCloud(uniCloud, options): options must be an object",
        ));
    };

    // Check everything before patching anything, so a bad deployment fails at
    // start-up and leaves uniCloud untouched. The writer options are read again
    // on each call so that, as with `deserializeSSEChannel`, the environment
    // variable is read when a descriptor arrives.
    #[cfg(feature = "writer")]
    {
        let relay = crate::js::get(&options, "relay");
        WriterOptions::from_js(&options, Some(&relay_as_allow_list(&relay)?))?;
    }
    #[cfg(feature = "browser")]
    let class = channel_class()?;
    // Browser side: the SSEChannel options among `options` (relay, transport,
    // reconnect, …) become the defaults of `new uniCloud.SSEChannel()`; checked
    // now, applied once the class is installed.
    #[cfg(feature = "browser")]
    check_defaults(&options)?;

    let mut done: Vec<(&str, JsValue)> = Vec::new();
    #[cfg(feature = "writer")]
    install(
        &uni_cloud,
        "deserializeSSEChannel",
        writer_fn(&options),
        &mut done,
    )?;
    #[cfg(feature = "browser")]
    {
        install(&uni_cloud, "SSEChannel", class, &mut done)?;
        crate::channel::SseChannel::configure(options.clone())?;
    }
    Ok(uni_cloud.unchecked_into())
}

/// Sets `uniCloud[name] = value` and checks that it took effect (a frozen
/// object or a read-only property ignores the assignment without a word). On
/// failure, puts back what `done` installed before and throws
/// `UNICLOUD_INSTALL_FAILED`: all or nothing.
#[cfg(feature = "writer")]
fn install(
    uni_cloud: &JsValue,
    name: &'static str,
    value: JsValue,
    done: &mut Vec<(&'static str, JsValue)>,
) -> Result<(), JsValue> {
    let key = JsValue::from_str(name);
    let before = Reflect::get(uni_cloud, &key).unwrap_or_default();
    let set = Reflect::set(uni_cloud, &key, &value).unwrap_or(false);
    if set && Reflect::get(uni_cloud, &key).is_ok_and(|v| v == value) {
        done.push((name, before));
        return Ok(());
    }
    for (n, old) in done.drain(..) {
        let _ = Reflect::set(uni_cloud, &JsValue::from_str(n), &old);
    }
    let mut msg = String::from("installUniCloud: uniCloud.");
    msg.push_str(name);
    msg.push_str(" could not be set (the object is frozen or the property read-only)");
    Err(js_error(ErrorCode::UnicloudInstallFailed, &msg))
}

/// `uniCloud.deserializeSSEChannel`, bound to a snapshot of `options`.
#[cfg(feature = "writer")]
fn writer_fn(options: &JsValue) -> JsValue {
    // A snapshot: later changes to the caller's object do not leak in.
    let defaults: JsValue = Object::assign(&Object::new(), options.unchecked_ref()).into();
    let deserialize = Closure::<dyn Fn(JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
        move |descriptor: JsValue, overrides: JsValue| {
            let merged = if overrides.is_undefined() || overrides.is_null() {
                defaults.clone()
            } else if !overrides.is_object() {
                return Err(js_error(
                    ErrorCode::InvalidOptions,
                    "writer options must be an object",
                ));
            } else {
                Object::assign(
                    &Object::assign(&Object::new(), defaults.unchecked_ref()),
                    overrides.unchecked_ref(),
                )
                .into()
            };
            let relay = crate::js::get(&merged, "relay");
            let opts = WriterOptions::from_js(&merged, Some(&relay_as_allow_list(&relay)?))?;
            writer_from(&descriptor, opts).map(JsValue::from)
        },
    );
    // installUniCloud runs once per process or page: the function lives as long as uniCloud.
    deserialize.into_js_value()
}

/// The JS class `SSEChannel` (src/channel.js), taken from a fresh instance
/// (construction has no side effect: it opens nothing).
#[cfg(all(feature = "browser", feature = "writer"))]
fn channel_class() -> Result<JsValue, JsValue> {
    let instance = JsValue::from(crate::channel::SseChannel::new(JsValue::UNDEFINED)?);
    Ok(crate::js::get(&instance, "constructor"))
}

/// Checks `options` as `SSEChannel.configure` would, changing nothing: a
/// construction merges them over the defaults (and opens nothing).
#[cfg(all(feature = "browser", feature = "writer"))]
fn check_defaults(options: &JsValue) -> Result<(), JsValue> {
    crate::channel::SseChannel::new(options.clone()).map(drop)
}

/// `relay` as a one-entry allow-list (its origin), or undefined when absent.
#[cfg(feature = "writer")]
fn relay_as_allow_list(relay: &JsValue) -> Result<JsValue, JsValue> {
    if relay.is_undefined() || relay.is_null() {
        return Ok(JsValue::UNDEFINED);
    }
    let Some(url) = relay.as_string() else {
        return Err(js_error(
            ErrorCode::InvalidOptions,
            "option `relay` must be a URL string",
        ));
    };
    let origin = sse_channel_protocol::descriptor::relay_origin(url.trim_end_matches('/'))
        .map_err(|_| {
            js_error(
                ErrorCode::InvalidOptions,
                "option `relay` must be an http(s) URL without credentials, query or fragment",
            )
        })?;
    Ok(js_sys::Array::of1(&origin.into()).into())
}
