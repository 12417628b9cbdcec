//! The `sse-channel` crate: the browser SDK (`SSEChannel`) and the cloud-function
//! writer (`deserializeSSEChannel`), compiled to WebAssembly and shipped as the npm
//! package `open-sse-channel`.
//!
//! # Layout
//!
//! - `machine`, `backoff`, `state`: every decision of the browser client (a
//!   sans-IO state machine, reconnect delays, the lifecycle), tested natively.
//! - `channel`: the machine's wasm side (one export that takes and returns
//!   numbers) and the binding of the `SSEChannel` class, which is JavaScript
//!   (`src/channel.js`: the executor of the machine's effects; its connections
//!   and per-event path in `src/transport/reader.js`; helpers in `src/browser.js`).
//! - `writer`: `deserializeSSEChannel` and the writer it returns (wasm only; used
//!   from Node.js). `batch` (how its queue is cut into requests) is natively
//!   tested; its retry delays are `backoff`'s.
//! - `unicloud`: `installUniCloud`, the uniCloud drop-in (wasm only).
//! - `js_error`: the coded JS error objects the writer rejects with.
//! - `js`, `timer`: reading JS objects and an owned `setTimeout` (cancelled on
//!   drop); `fetch`: the writer's `fetch` binding.
//!
//! Payloads stay JS values: only ids and control data cross into wasm.
//!
//! # Features
//!
//! - `browser`: `SSEChannel` (the `channel` module and the JavaScript in `src/`).
//! - `writer`: `deserializeSSEChannel` (the `writer` module).
//!
//! Both are on by default. The npm package ships two wasm files (see
//! `docs/loading.md`): the browser build (`--no-default-features --features
//! browser`) and the Node build (`--no-default-features --features writer`);
//! `installUniCloud` is in both and installs what its build has.

pub use sse_channel_protocol as protocol;

#[cfg(any(test, all(target_arch = "wasm32", feature = "browser")))]
#[allow(unsafe_code)]
mod alloc;
pub mod backoff;
pub mod batch;
pub mod machine;
pub mod state;

#[cfg(all(target_arch = "wasm32", feature = "writer"))]
mod fetch;
#[cfg(all(target_arch = "wasm32", feature = "writer"))]
mod js;
#[cfg(all(target_arch = "wasm32", feature = "writer"))]
mod js_error;
#[cfg(all(target_arch = "wasm32", feature = "writer"))]
mod timer;

#[cfg(all(target_arch = "wasm32", feature = "browser"))]
mod channel;
#[cfg(all(target_arch = "wasm32", feature = "browser"))]
pub use channel::SseChannel;

#[cfg(all(target_arch = "wasm32", feature = "writer"))]
mod writer;

/// The bytes the browser build's allocator holds unused (free blocks and the rest of its pages):
/// `memory.buffer.byteLength` minus this is the memory in use plus a constant (statics, stack).
/// For tests (`tests/browser.rs`, `nothing_left_behind`); not exported to JS, so the package's
/// wasm does not contain it.
#[doc(hidden)]
#[cfg(all(
    target_arch = "wasm32",
    feature = "browser",
    not(target_feature = "atomics")
))]
pub fn heap_free_bytes() -> usize {
    alloc::free_bytes()
}

#[cfg(all(target_arch = "wasm32", any(feature = "browser", feature = "writer")))]
mod unicloud;

// Typings shared by both builds (`SSEChannel` emits and `toJSON()`s these; the writer rejects with
// and reads them), declared once here, in every build.
#[cfg(all(target_arch = "wasm32", any(feature = "browser", feature = "writer")))]
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

/// The browser build reads its options in JavaScript (`sseOptions` in `src/browser.js`): its limits must be
/// the crate's and the protocol's.
#[cfg(test)]
mod options_js {
    use crate::machine::MS_MAX;
    use sse_channel_protocol::limits::{
        MAX_ABANDON_AFTER_MS, MAX_CHANNEL_TTL_SECS, MIN_ABANDON_AFTER_MS,
    };

    const JS: &str = include_str!("browser.js");

    fn has(needle: String) {
        assert!(JS.contains(&needle), "browser.js lacks {needle}");
    }

    #[test]
    fn limits_are_the_crates() {
        has(format!("const ms = {MS_MAX};"));
        has(format!("num(SSE_OPT_MAX_ATTEMPTS, a, 0, {}, ", u32::MAX));
        has(format!(
            "num(SSE_OPT_TTL_SECS, o.ttlSecs, 0, {MAX_CHANNEL_TTL_SECS}, "
        ));
        has(format!("at most {MAX_CHANNEL_TTL_SECS}'"));
        has(format!(
            "num(SSE_OPT_ABANDON_AFTER_MS, o.abandonAfterMs, {MIN_ABANDON_AFTER_MS}, {MAX_ABANDON_AFTER_MS}, "
        ));
        has(format!(
            "from {MIN_ABANDON_AFTER_MS} to {MAX_ABANDON_AFTER_MS}'"
        ));
    }
}
