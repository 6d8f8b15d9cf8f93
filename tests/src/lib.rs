//! Helpers for TRD's end-to-end tests. A tour:
//!
//! - [`app`]: `spawn_app()` — the real API on a free port, real workers (in-process or as the
//!   same binaries `scripts/run` starts), a fresh database and queue prefix per test.
//! - [`data`]: the shared test audio and its reference texts.
//! - [`cer`]: character error rate, the accuracy figure for Korean.

pub mod app;
pub mod cer;
pub mod data;
