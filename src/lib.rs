//! sse-channel: the browser SDK (`SSEChannel`) and the cloud-function writer
//! (`deserializeSSEChannel`), compiled to WebAssembly.
//!
//! # Layout
//!
//! (filled in by the SDK and writer modules)

pub use sse_channel_protocol as protocol;
