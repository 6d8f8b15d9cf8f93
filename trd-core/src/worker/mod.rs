//! What every pipeline worker shares. A tour:
//!
//! - [`stage`]: what a stage is to its worker — a message handler and a sweeper.
//! - [`context`]: the settings, connections and lease identity a stage handler works with.
//! - [`failure`]: the one failure type of stage work, and the message's fate it implies.
//! - [`file_stage`]: claim → work under a lease → commit → hand on, for whole-file stages.
//! - `consume`: the consume → handle → settle loop, dead letters included.
//! - [`sweeper`]: work whose worker vanished goes back on its queue.
//! - [`backoff`]: waiting for a dependency, cut short by shutdown.
//! - [`shutdown`]: the termination signal.
//! - [`process`]: the whole life of a worker binary.

pub mod backoff;
mod consume;
pub mod context;
pub mod failure;
pub mod file_stage;
pub mod process;
pub mod shutdown;
pub mod stage;
pub mod sweeper;

pub use consume::run_stage;
pub use context::WorkerContext;
pub use failure::{Cause, Disposition, Outage, StageFailure, StageTimeout};
pub use file_stage::{fail_file, process_file_stage};
pub use process::main_for;
pub use shutdown::termination_signal;
pub use stage::{Job, StageWorker};
