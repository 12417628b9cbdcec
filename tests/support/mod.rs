//! Helpers shared by the browser test binaries (`browser.rs`, `browser_bench.rs`):
//! the relay address the script passed at compile time, timers, `fetch`, and
//! small `Reflect` shorthands. Each binary uses a different subset.
#![allow(dead_code)]

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    pub fn set_timeout(f: &Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = fetch)]
    pub fn fetch(url: &str, init: &JsValue) -> Promise;
}

/// The relay started by `scripts/test-wasm.sh` (`SSE_RELAY_URL` at compile time).
pub fn relay() -> &'static str {
    match option_env!("SSE_RELAY_URL") {
        Some(url) => url,
        None => panic!("SSE_RELAY_URL is unset: run scripts/test-wasm.sh"),
    }
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = JsFuture::from(p).await;
}

/// A plain JS object from key/value pairs.
pub fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

/// `o[k]`.
pub fn get(o: &JsValue, k: &str) -> JsValue {
    Reflect::get(o, &JsValue::from_str(k)).unwrap()
}
