//! The `SSEChannel` class (in progress).
