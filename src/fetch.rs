//! The cloud-function writer's `fetch` binding (publishing; Node.js 18+ has a
//! global `fetch`). The browser SDK's two requests (channel creation and
//! cancel) go through one small JavaScript function instead
//! (`channel::http`), which costs the browser bundle less than these bindings.

use js_sys::Promise;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `fetch(url, init)`. It reports every failure through its promise, so
    /// the binding has no `catch` (which costs the browser bundle 258 bytes);
    /// only a missing global `fetch` would throw, which [`has_fetch`] checks.
    /// (Not named `fetch`: the test binaries bind `fetch` too, and two
    /// identical bindings would link to one duplicate symbol.)
    #[wasm_bindgen(js_name = fetch)]
    pub(crate) fn fetch_with_init(url: &str, init: &JsValue) -> Promise;

    /// A `fetch` answer (`Response`).
    pub(crate) type Response;
    /// The HTTP status; 0 for an opaque answer (e.g. `redirect: "manual"`).
    #[wasm_bindgen(method, getter)]
    pub(crate) fn status(this: &Response) -> u16;
    /// The body as a `ReadableStream` of `Uint8Array` chunks, or null.
    #[wasm_bindgen(method, getter)]
    pub(crate) fn body(this: &Response) -> JsValue;
    /// The whole body as text.
    #[wasm_bindgen(method)]
    pub(crate) fn text(this: &Response) -> Promise;
    /// The answer's headers.
    #[wasm_bindgen(method, getter)]
    pub(crate) fn headers(this: &Response) -> Headers;

    /// A `fetch` answer's headers.
    pub(crate) type Headers;
    /// The header's value, or `None` when absent.
    #[wasm_bindgen(method)]
    pub(crate) fn get(this: &Headers, name: &str) -> Option<String>;
}

/// True when there is a global `fetch` (Node.js 18+, every browser).
pub(crate) fn has_fetch() -> bool {
    crate::js::get(&js_sys::global(), "fetch").is_function()
}
