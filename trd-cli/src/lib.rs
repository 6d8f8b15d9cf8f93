//! `trd`, the command-line client for TRD's HTTP API. A tour:
//!
//! - [`cli`]: the commands and their options (clap), and `run`, which dispatches them.
//! - [`target`]: what a command acts on (a file or a batch) and its URL path.
//! - [`client`]: the HTTP API, its errors, and the exit codes scripts rely on.
//! - [`watch`]: `trd status --watch`, live progress bars per stage with the ETA.
//! - [`results`]: batch results downloaded as a ZIP and unpacked into a folder.
//! - [`output`]: human-readable tables and lines (and `--json` for scripts).

pub mod cli;
pub mod client;
pub mod output;
pub mod results;
pub mod target;
pub mod watch;

pub use cli::{run, Cli};
