//! sse-relay binary.
fn main() {}
