//! An owned `setTimeout`: cancelled when dropped.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// A pending call of `f` after `ms` milliseconds. Dropping it before then
/// cancels the call; the closure lives exactly as long as this value.
pub(crate) struct Timeout {
    id: JsValue,
    _closure: Closure<dyn FnMut()>,
}

impl Timeout {
    /// Schedules `f` in `ms` milliseconds (at most about 24.8 days).
    pub(crate) fn new(ms: u32, f: impl FnOnce() + 'static) -> Self {
        let closure = Closure::once(f);
        let id = set_timeout(
            closure.as_ref().unchecked_ref(),
            ms.min(i32::MAX as u32) as i32,
        );
        Self {
            id,
            _closure: closure,
        }
    }
}

impl Timeout {
    /// Lets Node.js exit while only this timer is pending (`unref()` of
    /// Node's timer object; nothing in a browser, whose ids are numbers).
    #[cfg(feature = "writer")]
    pub(crate) fn unref(&self) {
        if let Ok(f) = crate::js::get(&self.id, "unref").dyn_into::<js_sys::Function>() {
            let _ = f.call0(&self.id);
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}
