//! See `sse_relay::fuzz::sse_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sse_relay::fuzz::sse_frames(data));
