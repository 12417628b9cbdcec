//! Coded errors at the JS boundary.
//!
//! Every error the package hands to JavaScript (an `error` event, a rejected
//! promise, a thrown exception) is a real `Error` whose `code` property is one of
//! the stable strings of [`ErrorCode`], so callers can branch on `err.code`.

use sse_channel_protocol::ErrorCode;
use wasm_bindgen::JsValue;

// The browser build makes its errors in one small JavaScript function (`sseError` in
// src/browser.js; three calls into JS with their glue otherwise).
#[cfg(feature = "browser")]
#[wasm_bindgen::prelude::wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    #[wasm_bindgen(js_name = sseError)]
    fn sse_error(code: &str, message: &str) -> JsValue;
}

/// A JS `Error` with `name = "SSEChannelError"`, `message`, and `code`.
#[cfg(feature = "browser")]
pub(crate) fn js_error(code: ErrorCode, message: &str) -> JsValue {
    sse_error(code.as_str(), message)
}

/// A JS `Error` with `name = "SSEChannelError"`, `message`, and `code`.
#[cfg(not(feature = "browser"))]
pub(crate) fn js_error(code: ErrorCode, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    err.set_name("SSEChannelError");
    let _ = js_sys::Reflect::set(
        &err,
        &JsValue::from_str("code"),
        &JsValue::from_str(code.as_str()),
    );
    err.into()
}

/// Like [`js_error`], with extra own properties (e.g. `from`/`to` of `MESSAGES_LOST`).
#[cfg(feature = "browser")]
pub(crate) fn js_error_with(code: ErrorCode, message: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let err = js_error(code, message);
    for (k, v) in extra {
        let _ = js_sys::Reflect::set(&err, &JsValue::from_str(k), v);
    }
    err
}

// Typings shared by both builds (`SSEChannel` emits and `toJSON()`s these; the writer rejects with
// and reads them), declared once here because this module is in every build.
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const SHARED_TS: &'static str = r#"
/** A coded error: `code` is a stable string (see docs/protocol.md, "Error codes"). */
export interface SSEChannelError extends Error {
  code: string;
  /** `MESSAGES_LOST`: first missing event id. */
  from?: number;
  /** `MESSAGES_LOST`: last missing event id. */
  to?: number;
  /** `FUNCTION_FAILED`: what the function passed to `writer.fail`; `CHANNEL_CANCELLED` by `abandonAfterMs`: `{ reason: 'ABANDONED' }`. */
  details?: unknown;
}

/** What `toJSON()` returns: the channel as a cloud function receives it. */
export interface SSEChannelDescriptor {
  type: 'SSEChannel';
  version: 1;
  relay: string;
  channelId: string;
  publishToken: string;
  /** Unix time in milliseconds. */
  expiresAt: number;
}
"#;
