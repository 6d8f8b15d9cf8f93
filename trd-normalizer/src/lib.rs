//! The normalization stage: the only code that sees a user's original file. A tour:
//!
//! - [`decode`]: symphonia opens any supported container/codec and yields planar f32 blocks,
//!   tolerating damage at the end of a file.
//! - [`resample`]: streaming conversion of every channel to the recognition model's rate.
//! - [`analysis`]: what the record reports about the audio — bandwidth measured from the
//!   signal, whether all channels carry the same signal, the `info` fields.
//! - [`error`]: why a file cannot be normalized, in words its owner can act on.
//! - [`normalize`]: the pipeline above as one blocking function feeding a sink.
//! - [`stage`]: the queue handler that stores the PCM and commits the record.

pub mod analysis;
pub mod decode;
pub mod error;
pub mod normalize;
pub mod resample;
pub mod stage;

pub use error::NormalizeError;
pub use normalize::{normalize_file, NormalizeReport, PcmStream};
pub use stage::Normalizer;
