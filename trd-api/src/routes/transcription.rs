//! `/trd/transcription/...`: start, stop, reset, status and results, per file and per batch.

use rocket::http::ContentType;
use rocket::serde::json::Json;
use rocket::{get, State};
use serde_json::{json, Map, Value};
use trd_core::domain::{BatchName, Control, Status};
use trd_export::{ExportFormat, ExportOptions};

use crate::control::{start_file, stop_file, Started};
use crate::error::{ApiError, ApiResult};
use crate::guards::{parse_batch, parse_id, App, BaseUrl, StartParams};
use crate::zip_stream::{batch_zip, BatchFormat, ZipDownload};
use crate::{status, view};

async fn batch_records(
    app: &App,
    batch: &BatchName,
) -> ApiResult<Vec<trd_core::domain::AudioFile>> {
    let records = app.store.list(Some(Some(batch))).await?;
    if records.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no batch '{batch}' (no registered files in it)"
        )));
    }
    Ok(records)
}

fn url_map(base: &BaseUrl, records: &[trd_core::domain::AudioFile]) -> Value {
    let map: Map<String, Value> = records
        .iter()
        .map(|r| (r.filename.clone(), json!(base.audiofile_url(r.id))))
        .collect();
    Value::Object(map)
}

#[utoipa::path(tag = "transcription", summary = "Start (or resume) a file", params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id"), crate::openapi::StartQuery), responses((status = 200, description = "The record", body = crate::openapi::Record), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/transcription/start/audiofile/<id>")]
pub async fn start_one(app: &State<App>, id: &str, params: StartParams) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    let options = params.0?;
    match start_file(app, id.object_id(), &options).await? {
        Started::Queued(r) => Ok(Json(view::record(&r))),
        Started::Refused(r) => Err(ApiError::Conflict(format!(
            "file {id} cannot be started: its control is {} (only IDLE or PAUSED files start; reset a FINISHED or FAILED file first)",
            r.control
        ))),
    }
}

#[utoipa::path(tag = "transcription", summary = "Start every IDLE or PAUSED file of a batch", params(("batch" = String, Path, description = "The batch (a folder of the work directory)"), crate::openapi::StartQuery), responses((status = 200, description = "filename → record URL", body = crate::openapi::UrlMap), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/transcription/start/batch/<batch>")]
pub async fn start_batch(
    app: &State<App>,
    base: BaseUrl,
    batch: &str,
    params: StartParams,
) -> ApiResult<Json<Value>> {
    let batch = parse_batch(batch)?;
    let options = params.0?;
    let records = batch_records(app, &batch).await?;
    for r in records.iter().filter(|r| r.control.can_start()) {
        start_file(app, r.id, &options).await?;
    }
    Ok(Json(url_map(&base, &records)))
}

#[utoipa::path(tag = "transcription", summary = "Pause a running file (its current stage completes)", params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id")), responses((status = 200, description = "The record", body = crate::openapi::Record), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/transcription/stop/audiofile/<id>")]
pub async fn stop_one(app: &State<App>, id: &str) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    match stop_file(app, id.object_id()).await? {
        Some(r) => Ok(Json(view::record(&r))),
        None => {
            let r = app
                .store
                .audiofile(id.object_id())
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no audio file with id {id}")))?;
            Err(ApiError::Conflict(format!(
                "file {id} is not running (its control is {})",
                r.control
            )))
        }
    }
}

#[utoipa::path(tag = "transcription", summary = "Pause every running file of a batch", params(("batch" = String, Path, description = "The batch (a folder of the work directory)")), responses((status = 200, description = "filename → record URL", body = crate::openapi::UrlMap), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/transcription/stop/batch/<batch>")]
pub async fn stop_batch(app: &State<App>, base: BaseUrl, batch: &str) -> ApiResult<Json<Value>> {
    let batch = parse_batch(batch)?;
    let records = batch_records(app, &batch).await?;
    for r in records.iter().filter(|r| r.control == Control::Running) {
        stop_file(app, r.id).await?;
    }
    Ok(Json(url_map(&base, &records)))
}

#[utoipa::path(tag = "transcription", summary = "Reset a file: a new record with a new id", params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id")), responses((status = 200, description = "The new record", body = crate::openapi::Record), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/transcription/reset/audiofile/<id>")]
pub async fn reset_one(app: &State<App>, id: &str) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    let fresh = crate::control::reset_file(app, id.object_id())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audio file with id {id}")))?;
    Ok(Json(view::record(&fresh)))
}

#[utoipa::path(tag = "transcription", summary = "Reset the files of a batch that did not finish (all with hard=true)", params(("batch" = String, Path, description = "The batch (a folder of the work directory)"), ("hard" = Option<bool>, Query, description = "Reset finished files too")), responses((status = 200, description = "The batch status", body = crate::openapi::BatchStatus), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/transcription/reset/batch/<batch>?<hard>")]
pub async fn reset_batch(
    app: &State<App>,
    batch: &str,
    hard: Option<bool>,
) -> ApiResult<Json<Value>> {
    let batch = parse_batch(batch)?;
    let records = batch_records(app, &batch).await?;
    let hard = hard.unwrap_or(false);
    for r in records {
        let untouched = r.control == Control::Idle && r.status == Status::Initial;
        let finished = r.control == Control::Finished;
        if untouched || (finished && !hard) {
            continue;
        }
        crate::control::reset_file(app, r.id).await?;
    }
    Ok(Json(status::batch_status_now(app, &batch).await?))
}

#[utoipa::path(tag = "transcription", summary = "A file's speech by recognition status", params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id")), responses((status = 200, description = "File status", body = crate::openapi::FileStatus), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/transcription/status/audiofile/<id>")]
pub async fn status_one(app: &State<App>, id: &str) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    let record = app
        .store
        .audiofile(id.object_id())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audio file with id {id}")))?;
    Ok(Json(status::file_status(app, &record).await?))
}

#[utoipa::path(tag = "transcription", summary = "A batch's progress, figures and ETA", params(("batch" = String, Path, description = "The batch (a folder of the work directory)")), responses((status = 200, description = "Batch status", body = crate::openapi::BatchStatus), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/transcription/status/batch/<batch>")]
pub async fn status_batch(app: &State<App>, batch: &str) -> ApiResult<Json<Value>> {
    let batch = parse_batch(batch)?;
    Ok(Json(status::batch_status(app, &batch).await?))
}

/// A file's result: JSON (default) or any export format.
#[utoipa::path(tag = "transcription", summary = "A file's transcript", params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id"), ("format" = Option<String>, Query, description = "json (default), csv, txt, vtt, srt, trs, extended_trs"), ("max_line_length" = Option<u32>, Query, description = "srt: characters per line (37)"), ("max_lines" = Option<u32>, Query, description = "srt: lines per cue (2)")), responses((status = 200, description = "The transcript", content((crate::openapi::TranscriptResult = "application/json"), (String = "text/csv"), (String = "text/plain"), (String = "text/vtt"), (String = "application/x-subrip"), (String = "text/xml"))), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/transcription/result/audiofile/<id>?<format>&<max_line_length>&<max_lines>")]
pub async fn result_one(
    app: &State<App>,
    id: &str,
    format: Option<&str>,
    max_line_length: Option<usize>,
    max_lines: Option<usize>,
) -> ApiResult<(ContentType, Vec<u8>)> {
    let id = parse_id(id)?;
    let record = app
        .store
        .audiofile(id.object_id())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audio file with id {id}")))?;
    let segments = app.store.segments_of(record.id).await?;
    let format = format.unwrap_or("json");
    if format.eq_ignore_ascii_case("json") {
        let body = serde_json::to_vec(&view::result(&record, &segments))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        return Ok((ContentType::JSON, body));
    }
    let export = ExportFormat::parse(
        format,
        ExportOptions {
            max_line_length,
            max_lines,
        },
    )
    .map_err(|e| ApiError::BadRequest(format!("{e} (or json)")))?;
    let mut body = Vec::new();
    trd_export::render(&export, &record, &segments, &mut body)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let content_type =
        ContentType::parse_flexible(export.content_type()).unwrap_or(ContentType::Plain);
    Ok((content_type, body))
}

/// Every file's result in one ZIP, streamed while it is built (contract section 5); besides
/// `json`, `csv` and `json-array`, every single-file export format is accepted.
#[utoipa::path(tag = "transcription", summary = "Every transcript of a batch, as a ZIP streamed while it is built", params(("batch" = String, Path, description = "The batch (a folder of the work directory)"), ("format" = Option<String>, Query, description = "json (default), json-array, csv, txt, vtt, srt, trs, extended_trs"), ("max_line_length" = Option<u32>, Query, description = "srt: characters per line (37)"), ("max_lines" = Option<u32>, Query, description = "srt: lines per cue (2)")), responses((status = 200, description = "`<batch>.zip`", content_type = "application/zip", body = crate::openapi::Binary), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/transcription/result/batch/<batch>?<format>&<max_line_length>&<max_lines>")]
pub async fn result_batch(
    app: &State<App>,
    batch: &str,
    format: Option<&str>,
    max_line_length: Option<usize>,
    max_lines: Option<usize>,
) -> ApiResult<ZipDownload<impl futures::Stream<Item = Vec<u8>>>> {
    let batch = parse_batch(batch)?;
    let format = match format.unwrap_or("json") {
        f if f.eq_ignore_ascii_case("json") => BatchFormat::Json,
        f if f.eq_ignore_ascii_case("json-array") => BatchFormat::JsonArray,
        f => BatchFormat::Export(
            ExportFormat::parse(
                f,
                ExportOptions {
                    max_line_length,
                    max_lines,
                },
            )
            .map_err(|e| ApiError::BadRequest(format!("{e} (or json, json-array)")))?,
        ),
    };
    let files: Vec<_> = app
        .store
        .batch_briefs(&batch, Status::Initial)
        .await?
        .into_iter()
        .map(|f| f.id)
        .collect();
    if files.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no batch '{batch}' (no registered files in it)"
        )));
    }
    Ok(ZipDownload {
        name: batch.as_str().to_owned(),
        body: batch_zip(app.store.clone(), batch, files, format),
    })
}
