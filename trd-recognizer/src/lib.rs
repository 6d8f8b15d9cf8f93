//! The recognition stage. A tour:
//!
//! - [`hints`]: `hints.words` — n-best readings rescored towards the expected phrases.
//! - [`kaldi_kernels`]: the acoustic network's matrix products and ReLU, computed here instead
//!   of inside libvosk.
//! - [`live`]: live streams — session offers taken while a stream slot is free, each
//!   session's audio heard as it comes.
//! - [`models`]: Vosk models by id, loaded lazily once per process and shared by all threads.
//! - [`recognize`]: one segment of PCM → text, words with times and confidences.
//! - [`runs`]: a file's segments grouped into runs that one recognizer hears in order, so a
//!   lazily composed decoding graph is built once per run and results stay reproducible.
//! - [`spoken_forms`]: model markup such as bracketed numerals rewritten as spoken.
//! - [`stage`]: the queue handler — fans a diarized file out into one message per run,
//!   recognizes runs in parallel (here and on other hosts), stores each segment as soon as it
//!   is done and closes the file exactly once, when its last segment is stored.

pub mod hints;
pub mod kaldi_kernels;
pub mod live;
pub mod models;
pub mod recognize;
pub mod runs;
pub mod spoken_forms;
pub mod stage;

pub use stage::Recognizer;
