//! The protocols TRD speaks, one face each. A face parses its protocol's requests into calls
//! of the job core ([`crate::jobs`]) and renders the domain result in its protocol's shapes
//! (formats live in `trd-export`). Adding a protocol is a new module here plus, if it needs
//! one, a format in `trd-export`; nothing else changes.
//!
//! - [`trd`]: TRD's own folder-batch API under `/trd` (`../shared/reference/trd-api.md`), with
//!   its key, user and audit routes.
//! - [`deepspeech`]: the DeepSpeech REST API's users and tokens (both route layouts).
//! - [`nanotrix`]: Nanotrix log-in and task tokens.
//! - [`speechmatics`]: the Speechmatics batch jobs API.
//! - [`now`]: what the recognize-now faces share (admission, storage, streamed bodies), and
//!   the faces themselves: [`openai`].

pub mod deepspeech;
pub mod nanotrix;
pub mod now;
pub mod openai;
pub mod speechmatics;
pub mod trd;
