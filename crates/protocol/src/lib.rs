//! The sse-channel wire contract, as Rust types shared by the browser SDK, the
//! cloud-function writer and the `sse-relay` server.
//!
//! `docs/protocol.md` is the prose version of this crate; the two change together.
//!
//! # Layout
//!
//! - [`api`]: HTTP paths, header and query names, request and response bodies.
//! - [`descriptor`]: the serialized channel that rides in a `callFunction` payload.
//! - [`frame`]: stream events as SSE text and as WebSocket JSON frames.
//! - [`error`]: the stable error codes, their HTTP status and whether to reconnect.
//! - [`token`]: the claims inside signed subscribe and publish tokens.
//! - [`limits`]: default limits, shared so the SDK can check before sending.
//! - [`publish`]: how a publisher reads the relay's answers (retry, refusal
//!   codes, which refusals are final).
//!
//! The crate does no I/O and depends only on `serde`, so it stays small in the
//! browser bundle.

pub mod api;
pub mod descriptor;
pub mod error;
pub mod frame;
pub mod limits;
pub mod publish;
pub mod token;

pub use descriptor::{Descriptor, DescriptorError};
pub use error::ErrorCode;
pub use frame::{EventKind, LostRange};
pub use token::{Claims, Scope};

/// A per-channel event sequence id. The first event of a channel has id 1; `0`
/// means "nothing received yet".
pub type EventId = u64;
