//! TRD's own API, the contract of `../shared/reference/trd-api.md`, mounted under `/trd`: one
//! module per endpoint group. Its JSON shapes are [`crate::shapes`].
//!
//! - [`audiofile`]: records, registration of files on disk, deletion;
//! - [`audio`]: a file's original audio, with Range requests;
//! - [`upload`]: files uploaded into the work directory;
//! - [`transcription`]: start, stop, reset, status and results;
//! - [`start_query`]: the start parameters (`lm.uri`, `hints.words`, `webhook`…);
//! - [`webhook`]: `whoami` and the validation of callback targets;
//! - [`query`]: raw records as newline-delimited JSON;
//! - [`recognize`]: one file recognized while the caller waits.

pub mod audio;
pub mod audiofile;
pub mod auth;
pub mod query;
pub mod recognize;
pub mod start_query;
pub mod transcription;
pub mod upload;
pub mod webhook;

use trd_core::domain::{AudioFileId, BatchName};

use crate::app::App;
use crate::error::ApiError;
use crate::identity::Principal;

/// Every route of the face, relative to `/trd`.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        audiofile::get_record,
        audio::audio,
        audiofile::list_all,
        audiofile::list_batch,
        audiofile::create_file,
        audiofile::create_batch,
        audiofile::delete_file,
        audiofile::delete_batch,
        transcription::start_one,
        transcription::start_batch,
        transcription::stop_one,
        transcription::stop_batch,
        transcription::reset_one,
        transcription::reset_batch,
        transcription::status_one,
        transcription::status_batch,
        transcription::result_one,
        transcription::result_batch,
        query::query_collection,
        upload::upload,
        recognize::recognize,
        webhook::whoami,
        webhook::validate_get,
        webhook::validate_post,
        auth::create_key,
        auth::list_keys,
        auth::revoke_key,
        auth::delete_user,
        auth::read_audit,
    ]
}

pub(crate) fn parse_id(raw: &str) -> Result<AudioFileId, ApiError> {
    Ok(AudioFileId::parse(raw)?)
}

pub(crate) fn parse_batch(raw: &str) -> Result<BatchName, ApiError> {
    Ok(BatchName::parse(raw)?)
}

/// A batch the principal may see (404 otherwise, as for a batch that does not exist).
pub(crate) fn visible_batch(who: &Principal, raw: &str) -> Result<BatchName, ApiError> {
    let batch = parse_batch(raw)?;
    who.check_batch(&batch)?;
    Ok(batch)
}

/// A file the principal may act on: a principal limited to batches gets 404 for a file
/// outside them, as for a file that does not exist.
pub(crate) async fn visible_id(
    app: &App,
    who: &Principal,
    raw: &str,
) -> Result<AudioFileId, ApiError> {
    let id = parse_id(raw)?;
    if who.batches.is_some() {
        who.check_record(&app.jobs.record(id.object_id()).await?)?;
    }
    Ok(id)
}
