//! See `sse_relay::fuzz::event_id`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sse_relay::fuzz::event_id(data));
