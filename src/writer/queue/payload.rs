//! A payload's JSON text and size: a message's for `write` and `end`, and the
//! body of `writer.fail(error)`, each bounded by `maxMessageBytes`.

use js_sys::{JsString, JSON};
use sse_channel_protocol::ErrorCode;
use wasm_bindgen::prelude::*;

use crate::js;
use crate::writer::Failure;

/// The payload's JSON text and its UTF-8 size, or why it cannot be sent.
pub(super) fn to_json(data: &JsValue, max_bytes: usize) -> Result<(JsString, usize), Failure> {
    let json = match JSON::stringify(data) {
        // JSON.stringify(undefined) (or a function) is undefined: send null, as an array would.
        Ok(s) if JsValue::from(&s).is_string() => s,
        Ok(_) => JsString::from("null"),
        Err(e) => {
            let why = js::get_string(&e, "message").unwrap_or_default();
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

/// The body of `POST …/fail` for `writer.fail(error)`: `error` is an
/// `Error`, a string, or `{message, details}`; its message is cut to
/// `MAX_FAIL_MESSAGE_CHARS` characters, its details (JSON) bounded like a message.
pub(super) fn fail_body(error: &JsValue, max_bytes: usize) -> Result<(JsString, usize), Failure> {
    use sse_channel_protocol::limits::MAX_FAIL_MESSAGE_CHARS;
    let message = match error.as_string() {
        Some(m) => m,
        None => js::get_string(error, "message").unwrap_or_else(|| {
            if error.is_undefined() || error.is_null() {
                String::from("the function failed")
            } else {
                String::from(&js_sys::JsString::from(error.clone()))
            }
        }),
    };
    let message: String = message.chars().take(MAX_FAIL_MESSAGE_CHARS).collect();
    let details = if error.is_object() {
        js::get(error, sse_channel_protocol::api::field::DETAILS)
    } else {
        JsValue::UNDEFINED
    };
    let quoted = JSON::stringify(&JsValue::from_str(&message)).unwrap_or_else(|_| "\"\"".into());
    let mut body = JsString::from("{\"message\":").concat(&quoted);
    let mut bytes = message.len() + 16;
    if !details.is_undefined() {
        let (json, n) = to_json(&details, max_bytes)?;
        body = body.concat(&",\"details\":".into()).concat(&json);
        bytes += n;
    }
    Ok((body.concat(&"}".into()), bytes))
}
