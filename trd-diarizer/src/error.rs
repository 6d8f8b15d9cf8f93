//! What can go wrong in diarization. A leaf module: the networks, the clustering and the
//! orchestrator all speak it, and it speaks none of them.

use std::path::PathBuf;

/// A weight file that cannot be turned into a network.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "diarizer model {} not found: run scripts/lib/provision-diarizer.sh, or point the \
         `diarizer_models` setting (TRD_DIARIZER_MODELS) at the directory holding it",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("diarizer model {} is unusable: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },
    #[error("diarizer model {} is unusable: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
}

/// Why a request cannot be diarized.
#[derive(Debug, thiserror::Error)]
pub enum DiarizeError {
    #[error("the diarizer needs 16000 Hz audio, got {0} Hz")]
    UnsupportedSampleRate(u32),
    #[error("speaker bounds must satisfy 1 <= min <= max, got min {min} and max {max}")]
    BadSpeakerConstraint { min: usize, max: usize },
    #[error("unknown diarization mode {0:?}: expected auto, speaker, channel or none")]
    UnknownMode(String),
}
