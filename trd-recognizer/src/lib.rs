//! The recognition stage. A tour:
//!
//! - [`hints`]: `hints.words` — n-best readings rescored towards the expected phrases.
//! - [`live`]: live streams — session offers taken while a stream slot is free, each
//!   session's audio heard as it comes.
//! - [`models`]: Vosk models by id, loaded lazily once per process and shared by all threads.
//! - [`network_products`]: the acoustic network's matrix products, in place of libvosk's BLAS.
//! - [`recognize`]: one segment of PCM → text, words with times and confidences.
//! - [`runs`]: a file's segments grouped into runs that one recognizer hears in order, so a
//!   lazily composed decoding graph is built once per run and results stay reproducible.
//! - [`spoken_forms`]: model markup such as bracketed numerals rewritten as spoken.
//! - [`stage`]: the queue handler — fans a diarized file out into one message per run,
//!   recognizes runs in parallel (here and on other hosts), stores each segment as soon as it
//!   is done and closes the file exactly once, when its last segment is stored.

pub mod hints;
pub mod live;
pub mod models;
pub mod network_products;
pub mod recognize;
pub mod runs;
pub mod spoken_forms;
pub mod stage;

pub use stage::Recognizer;
