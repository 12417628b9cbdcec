//! See `sse_relay::fuzz::publish_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sse_relay::fuzz::publish_body(data));
