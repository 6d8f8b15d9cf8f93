//! TRD's shared library. A short tour:
//!
//! - [`domain`]: the types every crate speaks — ids, batch and file names (parsed once, at the
//!   boundary), the control/status state machines, the stored records.
//! - [`config`]: typed settings from defaults, `Rocket.toml` and `TRD_*` variables.
//! - [`logging`]: structured logs, and errors written into them with their whole cause chain.
//! - [`store`]: MongoDB, the single source of truth; every state change is one atomic update.
//! - [`queue`]: RabbitMQ stage queues; messages are hints, never the truth.
//! - [`live`]: the wire of live streams between the API and the recognizer serving each one.
//! - [`worker`]: the consume → handle → commit → ack loop all pipeline workers share.
//! - [`workdir_files`]: work-directory files opened, and folders checked, without following a
//!   symbolic link out of it.

pub mod config;
pub mod domain;
pub mod live;
pub mod logging;
pub mod queue;
pub mod store;
pub mod workdir_files;
pub mod worker;

pub use config::Settings;
pub use queue::{Queue, WorkItem};
pub use store::Store;
