//! The diarization stage. A tour:
//!
//! - [`diarize`]: pure audio → speaker turns (`diarize::diarize`), no I/O; orchestrates the
//!   private modules below.
//! - [`models`]: the networks' weights, loaded once per process from the `diarizer_models`
//!   setting's directory.
//! - [`error`]: what can go wrong, shared by every module (and importing none).
//! - `vad`: Silero VAD v6, a speech probability per 32 ms and the speech regions they imply.
//! - `fbank`: Kaldi-style log-mel features, the embedding network's input.
//! - `embedding`: CAM++ speaker embeddings of 1.5 s windows.
//! - `clustering`: spectral clustering of embeddings into speakers, counting them.
//! - `linalg`: the symmetric eigen-decomposition clustering needs.
//! - `nn`: weight loading and the convolution/matrix primitives both networks run on.
//! - `segmenting`: labelled speech → turns no longer than the recognizer's maximum.
//! - [`hearing`]: how much silence around each turn the recognizer hears.
//! - [`live_turns`]: a live stream's turns, cut as the batch cuts them, as soon as they settle.
//! - [`voices`]: the voiceprint of one utterance, for telling a live stream's speakers apart.
//! - [`der`]: diarization error rate and RTTM files, for tests and benchmarks.
//! - [`stage`]: the queue handler — claims a normalized file, reads its PCM from the store,
//!   diarizes, stores the segments and hands the file to recognition.

#[cfg(target_arch = "x86_64")]
mod bf16;
mod clustering;
pub mod der;
pub mod diarize;
mod embedding;
pub mod error;
mod fbank;
pub mod hearing;
mod linalg;
pub mod live_turns;
pub mod models;
mod nn;
mod segmenting;
pub mod stage;
mod vad;
pub mod voices;

pub use diarize::{
    diarize, diarize_loading, Diarization, DiarizationMode, DiarizationRequest, SpeakerConstraint,
    Turn,
};
pub use error::{DiarizeError, ModelError};
pub use models::Models;
pub use stage::Diarizer;
