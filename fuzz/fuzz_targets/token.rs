//! See `sse_relay::fuzz::token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sse_relay::fuzz::token(data));
