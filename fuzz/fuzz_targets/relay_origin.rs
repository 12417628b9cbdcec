//! See `sse_relay::fuzz::relay_origin`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sse_relay::fuzz::relay_origin(data));
