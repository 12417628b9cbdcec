//! See `sse_relay::fuzz::request_head`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sse_relay::fuzz::request_head(data));
