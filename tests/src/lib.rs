//! Helpers for TRD's end-to-end tests. A tour:
//!
//! - [`app`]: `spawn_app()` — the real API on a free port, real workers (in-process or as the
//!   same binaries `scripts/run` starts), a fresh database and queue prefix per test.
//! - [`data`]: the shared test audio and its reference texts.
//! - [`fixtures`]: records and segments written straight into MongoDB, in chosen states.
//! - [`cer`]: character error rate, the accuracy figure for Korean.
//! - [`receiver`]: a real HTTP server that receives webhooks.
//! - [`tools`]: the external checkers (OpenAPI validator, schemathesis, Prometheus parser,
//!   Chromium) and where tests keep their artifacts.
//! - [`settings_file`]: the test's settings, as the file its worker processes read.
//! - [`services`]: private MongoDB and RabbitMQ instances for tests that restart them.
//! - [`fleet`]: worker processes a test kills (`kill -9`) and restarts.
//! - [`turns`]: which tests run side by side and which run alone.
//! - [`bench`]: what the benchmarks (`src/bin/bench_*.rs`) share.

pub mod app;
pub mod bench;
pub mod bombs;
pub mod cer;
pub mod data;
pub mod fixtures;
pub mod fleet;
pub mod procfs;
pub mod receiver;
pub mod services;
pub mod settings_file;
pub mod tools;
pub mod turns;
