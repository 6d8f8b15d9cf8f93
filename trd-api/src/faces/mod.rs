//! The protocols TRD speaks, one face each. A face parses its protocol's requests into calls
//! of the job core ([`crate::jobs`]) and renders the domain result in its protocol's shapes
//! (formats live in `trd-export`). Adding a protocol is a new module here plus, if it needs
//! one, a format in `trd-export`; nothing else changes.
//!
//! - [`trd`]: TRD's own folder-batch API under `/trd` (`../shared/reference/trd-api.md`), with
//!   its key, user and audit routes.
//! - [`console`]: the operator console, a web page over the routes above (`/trd/ui`).
//! - [`deepspeech`]: the DeepSpeech REST API's users, tokens and HTTP recognition (both
//!   route layouts).
//! - [`nanotrix`]: Nanotrix log-in, task tokens and the file recognition API.
//! - [`speechmatics`]: the Speechmatics batch jobs API and real-time API.
//! - [`now`]: what the recognize-now faces share (admission, storage, streamed bodies), and
//!   the faces themselves: [`openai`], [`whisper`] (whisper-asr-webservice), [`uwebasr`];
//!   DeepSpeech's, Nanotrix's and TRD's (`/trd/recognize`) live with the rest of those faces.
//! - [`live`]: what the live-stream faces share (the WebSocket loop on a live stream), and
//!   [`vosk`] (vosk-server's `/asr/ws`); Speechmatics real-time (`/v2`) and DeepSpeech's
//!   `/stt/ws` and `/stt/mic` live with the rest of those faces.

pub mod console;
pub mod deepspeech;
pub mod live;
pub mod nanotrix;
pub mod now;
pub mod openai;
pub mod speechmatics;
pub mod trd;
pub mod uwebasr;
pub mod vosk;
pub mod whisper;
