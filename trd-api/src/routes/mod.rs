//! Routes that belong to the service rather than to a protocol.

pub mod operations;
