//! `/trd/transcription/...`: start, stop, reset, status and results, per file and per batch.

use rocket::http::ContentType;
use rocket::serde::json::Json;
use rocket::{get, State};
use trd_core::domain::{AudioFile, BatchName, Control, Status};
use trd_export::{ExportFormat, ExportOptions};

use super::start_query::StartQuery;
use super::{parse_id, visible_batch, visible_id};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::identity::{Access, Operate, Read};
use crate::jobs::JobError;
use crate::shapes::{BatchStatus, FileStatus, RecordUrls, RecordView, TranscriptResult, UrlMap};
use crate::zip_stream::{batch_zip, BatchFormat, ZipDownload};
use trd_core::store::identity::Scope;

async fn batch_records(app: &App, batch: &BatchName) -> ApiResult<Vec<AudioFile>> {
    let records = app.store.list(Some(Some(batch))).await?;
    if records.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no batch '{batch}' (no registered files in it)"
        )));
    }
    Ok(records)
}

/// A batch operation skips files that changed under it (deleted, no longer startable…): only
/// a failure of the service itself stops it.
fn skip_changed<T>(outcome: Result<T, JobError>) -> ApiResult<()> {
    match outcome {
        Ok(_)
        | Err(
            JobError::NotFound(_) | JobError::NotStartable { .. } | JobError::NotRunning { .. },
        ) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    tag = "transcription",
    summary = "Start (or resume) a file",
    params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id"), StartQuery),
    responses((status = 200, description = "The record", body = RecordView))
)]
#[get("/transcription/start/audiofile/<id>")]
pub async fn start_one(
    app: &State<App>,
    who: Access<Operate>,
    id: &str,
    query: StartQuery,
) -> ApiResult<Json<RecordView>> {
    let id = visible_id(app, &who, id).await?;
    let options = app.jobs.check_options(query.into_options()?).await?;
    let record = app.jobs.start(id.object_id(), &options).await?;
    Ok(Json(RecordView::from(&record)))
}

#[utoipa::path(
    tag = "transcription",
    summary = "Start every IDLE or PAUSED file of a batch",
    params(("batch" = String, Path, description = "The batch (a folder of the work directory)"), StartQuery),
    responses((status = 200, description = "filename → record URL", body = UrlMap))
)]
#[get("/transcription/start/batch/<batch>")]
pub async fn start_batch(
    app: &State<App>,
    who: Access<Operate>,
    urls: RecordUrls,
    batch: &str,
    query: StartQuery,
) -> ApiResult<Json<UrlMap>> {
    let batch = visible_batch(&who, batch)?;
    let options = app.jobs.check_options(query.into_options()?).await?;
    let records = batch_records(app, &batch).await?;
    for r in records.iter().filter(|r| r.control.can_start()) {
        skip_changed(app.jobs.start(r.id, &options).await)?;
    }
    Ok(Json(urls.map(&records)))
}

#[utoipa::path(
    tag = "transcription",
    summary = "Pause a running file (its current stage completes)",
    params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id")),
    responses((status = 200, description = "The record", body = RecordView))
)]
#[get("/transcription/stop/audiofile/<id>")]
pub async fn stop_one(
    app: &State<App>,
    who: Access<Operate>,
    id: &str,
) -> ApiResult<Json<RecordView>> {
    let id = visible_id(app, &who, id).await?;
    let record = app.jobs.stop(id.object_id()).await?;
    Ok(Json(RecordView::from(&record)))
}

#[utoipa::path(
    tag = "transcription",
    summary = "Pause every running file of a batch",
    params(("batch" = String, Path, description = "The batch (a folder of the work directory)")),
    responses((status = 200, description = "filename → record URL", body = UrlMap))
)]
#[get("/transcription/stop/batch/<batch>")]
pub async fn stop_batch(
    app: &State<App>,
    who: Access<Operate>,
    urls: RecordUrls,
    batch: &str,
) -> ApiResult<Json<UrlMap>> {
    let batch = visible_batch(&who, batch)?;
    let records = batch_records(app, &batch).await?;
    for r in records.iter().filter(|r| r.control == Control::Running) {
        skip_changed(app.jobs.stop(r.id).await)?;
    }
    Ok(Json(urls.map(&records)))
}

#[utoipa::path(
    tag = "transcription",
    summary = "Reset a file: a new record with a new id",
    params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id")),
    responses((status = 200, description = "The new record", body = RecordView))
)]
#[get("/transcription/reset/audiofile/<id>")]
pub async fn reset_one(
    app: &State<App>,
    who: Access<Operate>,
    id: &str,
) -> ApiResult<Json<RecordView>> {
    let id = visible_id(app, &who, id).await?;
    let fresh = app.jobs.reset(id.object_id()).await?;
    Ok(Json(RecordView::from(&fresh)))
}

#[utoipa::path(
    tag = "transcription",
    summary = "Reset the files of a batch that did not finish (all with hard=true)",
    params(
        ("batch" = String, Path, description = "The batch (a folder of the work directory)"),
        ("hard" = Option<bool>, Query, description = "Reset finished files too"),
    ),
    responses((status = 200, description = "The batch status", body = BatchStatus))
)]
#[get("/transcription/reset/batch/<batch>?<hard>")]
pub async fn reset_batch(
    app: &State<App>,
    who: Access<Operate>,
    batch: &str,
    hard: Option<bool>,
) -> ApiResult<Json<BatchStatus>> {
    if hard == Some(true) {
        who.require(Scope::Admin)?;
    }
    let batch = visible_batch(&who, batch)?;
    let records = batch_records(app, &batch).await?;
    let hard = hard.unwrap_or(false);
    for r in records {
        let untouched = r.control == Control::Idle && r.status == Status::Initial;
        let finished = r.control == Control::Finished;
        if untouched || (finished && !hard) {
            continue;
        }
        skip_changed(app.jobs.reset(r.id).await)?;
    }
    Ok(Json(app.figures.batch_status_now(&batch).await?))
}

#[utoipa::path(
    tag = "transcription",
    summary = "A file's speech by recognition status",
    params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id")),
    responses((status = 200, description = "File status", body = FileStatus))
)]
#[get("/transcription/status/audiofile/<id>")]
pub async fn status_one(
    app: &State<App>,
    who: Access<Read>,
    id: &str,
) -> ApiResult<Json<FileStatus>> {
    let record = app.jobs.record(parse_id(id)?.object_id()).await?;
    who.check_record(&record)?;
    Ok(Json(app.figures.file_status(&record).await?))
}

#[utoipa::path(
    tag = "transcription",
    summary = "A batch's progress, figures and ETA",
    params(("batch" = String, Path, description = "The batch (a folder of the work directory)")),
    responses((status = 200, description = "Batch status", body = BatchStatus))
)]
#[get("/transcription/status/batch/<batch>")]
pub async fn status_batch(
    app: &State<App>,
    who: Access<Read>,
    batch: &str,
) -> ApiResult<Json<BatchStatus>> {
    let batch = visible_batch(&who, batch)?;
    Ok(Json(app.figures.batch_status(&batch).await?))
}

/// A file's result: JSON (default) or any export format.
#[utoipa::path(
    tag = "transcription",
    summary = "A file's transcript",
    params(
        ("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id"),
        ("format" = Option<String>, Query, description = "json (default), csv, txt, vtt, srt, trs, extended_trs"),
        ("max_line_length" = Option<u32>, Query, description = "srt: characters per line (37)"),
        ("max_lines" = Option<u32>, Query, description = "srt: lines per cue (2)"),
    ),
    responses((status = 200, description = "The transcript", content(
        (TranscriptResult = "application/json"),
        (String = "text/csv"),
        (String = "text/plain"),
        (String = "text/vtt"),
        (String = "application/x-subrip"),
        (String = "text/xml"),
    )))
)]
#[get("/transcription/result/audiofile/<id>?<format>&<max_line_length>&<max_lines>")]
pub async fn result_one(
    app: &State<App>,
    who: Access<Read>,
    id: &str,
    format: Option<&str>,
    max_line_length: Option<usize>,
    max_lines: Option<usize>,
) -> ApiResult<(ContentType, Vec<u8>)> {
    let id = visible_id(app, &who, id).await?;
    let (record, segments) = app.jobs.result(id.object_id()).await?;
    let format = format.unwrap_or("json");
    if format.eq_ignore_ascii_case("json") {
        let body = serde_json::to_vec(&TranscriptResult::new(&record, &segments))
            .map_err(|e| ApiError::internal("rendering the result", e))?;
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
        .map_err(|e| ApiError::internal("rendering the result", e))?;
    let content_type =
        ContentType::parse_flexible(export.content_type()).unwrap_or(ContentType::Plain);
    Ok((content_type, body))
}

/// Every file's result in one ZIP, streamed while it is built (contract section 5); besides
/// `json`, `csv` and `json-array`, every single-file export format is accepted.
#[utoipa::path(
    tag = "transcription",
    summary = "Every transcript of a batch, as a ZIP streamed while it is built",
    params(
        ("batch" = String, Path, description = "The batch (a folder of the work directory)"),
        ("format" = Option<String>, Query, description = "json (default), json-array, csv, txt, vtt, srt, trs, extended_trs"),
        ("max_line_length" = Option<u32>, Query, description = "srt: characters per line (37)"),
        ("max_lines" = Option<u32>, Query, description = "srt: lines per cue (2)"),
    ),
    responses((status = 200, description = "`<batch>.zip`", content_type = "application/zip", body = crate::shapes::Binary))
)]
#[get("/transcription/result/batch/<batch>?<format>&<max_line_length>&<max_lines>")]
pub async fn result_batch(
    app: &State<App>,
    who: Access<Read>,
    batch: &str,
    format: Option<&str>,
    max_line_length: Option<usize>,
    max_lines: Option<usize>,
) -> ApiResult<ZipDownload<impl futures::Stream<Item = Vec<u8>>>> {
    let batch = visible_batch(&who, batch)?;
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
        .batch_briefs(&batch)
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
