//! Coded errors at the JS boundary.
//!
//! Every error the package hands to JavaScript (an `error` event, a rejected
//! promise, a thrown exception) is a real `Error` whose `code` property is one of
//! the stable strings of [`ErrorCode`], so callers can branch on `err.code`.

use sse_channel_protocol::ErrorCode;
use wasm_bindgen::JsValue;

/// A JS `Error` with `name = "SSEChannelError"`, `message`, and `code`.
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
