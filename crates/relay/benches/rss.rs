//! RSS benchmark (filled in later).
fn main() {}
