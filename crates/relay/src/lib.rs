//! sse-relay (under construction).
