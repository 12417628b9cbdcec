//! Reading and building small JS objects with `Reflect`.
//!
//! The browser build reads control data (ids, codes, tokens) member by member
//! instead of through serde-wasm-bindgen: serde's error paths pull float
//! formatting and more into the bundle, for a handful of fields. (The Node
//! build, which has no download budget, reads the writer's options and
//! descriptor with serde-wasm-bindgen; see `writer::options`.) Member names come from
//! `sse_channel_protocol::api::field`, which is tested against the serde types.

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

/// `obj[key]`, or `undefined`.
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `obj[key]` when it is a string.
pub(crate) fn get_string(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key).as_string()
}

/// `obj[key]` when it is a whole number in `0..=2^53`.
#[cfg(feature = "browser")]
pub(crate) fn get_u64(obj: &JsValue, key: &str) -> Option<u64> {
    get(obj, key)
        .as_f64()
        .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= 9_007_199_254_740_992.0)
        .map(|n| n as u64)
}

/// A plain object with these members, in this order.
pub(crate) fn object(members: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in members {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o.into()
}
