//! Transports (in progress).
