//! sse-channel: the browser SDK (`SSEChannel`) and the cloud-function writer
//! (`deserializeSSEChannel`), compiled to WebAssembly.
//!
//! # Layout
//!
//! - `backoff`, `state`: pure logic of the browser client (reconnect delays, the
//!   channel state machine), tested natively.
//! - `channel`, `transport`: the `SSEChannel` class and its WebSocket and
//!   EventSource transports (wasm only).
//! - `writer`: `deserializeSSEChannel` and the writer it returns (wasm only; used
//!   from Node.js).
//! - `unicloud`: `installUniCloud`, the uniCloud drop-in (wasm only).
//! - `js_error`: the coded JS error objects every export rejects or emits with.
//!
//! Payloads stay JS values: only ids and control data cross into wasm.

pub use sse_channel_protocol as protocol;

pub mod backoff;
pub mod state;

#[cfg(target_arch = "wasm32")]
mod js_error;

#[cfg(target_arch = "wasm32")]
mod channel;
#[cfg(target_arch = "wasm32")]
pub use channel::SseChannel;
#[cfg(target_arch = "wasm32")]
mod transport;

#[cfg(target_arch = "wasm32")]
mod writer;

#[cfg(target_arch = "wasm32")]
mod unicloud;
