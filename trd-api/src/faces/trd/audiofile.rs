//! `/trd/audiofile/...`: records, registration of files on disk, deletion.

use futures::stream::{BoxStream, StreamExt};
use rocket::http::uri::{fmt::Path as UriPath, Segments};
use rocket::http::ContentType;
use rocket::response::stream::ByteStream;
use rocket::serde::json::Json;
use rocket::{delete, get, State};
use trd_core::domain::{FileLocation, FileName};

use super::{parse_id, visible_batch, visible_id};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::identity::{Access, Operate, Read};
use crate::jobs::Audio;
use crate::shapes::{RecordUrls, RecordView, UrlMap};
use trd_core::store::identity::Scope;
use trd_core::store::Page;

use crate::json_array::json_array;

#[utoipa::path(
    tag = "audiofile",
    summary = "A file's record, with its webhook deliveries",
    params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id")),
    responses((status = 200, description = "The record", body = RecordView))
)]
#[get("/audiofile/<id>", rank = 3)]
pub async fn get_record(
    app: &State<App>,
    who: Access<Read>,
    id: &str,
) -> ApiResult<Json<RecordView>> {
    let record = app.jobs.record(parse_id(id)?.object_id()).await?;
    who.check_record(&record)?;
    let deliveries = app.store.deliveries_of(record.id).await?;
    Ok(Json(RecordView::from(&record).with_deliveries(&deliveries)))
}

/// A listing's body: the records as a JSON array, streamed.
type Listing = (ContentType, ByteStream<BoxStream<'static, Vec<u8>>>);

#[utoipa::path(
    tag = "audiofile",
    summary = "Every record",
    params(
        ("limit" = Option<u64>, Query, description = "At most this many records (1–10000); none: all"),
        ("skip" = Option<u64>, Query, description = "Leave out this many first records"),
    ),
    responses((status = 200, description = "The records, by batch and file name", body = Vec<RecordView>))
)]
#[get("/audiofile/list?<limit>&<skip>")]
pub async fn list_all(
    app: &State<App>,
    who: Access<Read>,
    limit: Option<&str>,
    skip: Option<&str>,
) -> ApiResult<Listing> {
    let page = Page::parse(limit, skip)?;
    let within = who.batch_filter();
    let records = app.store.list_page(None, within.as_deref(), page).await?;
    Ok(listing(records))
}

#[utoipa::path(
    tag = "audiofile",
    summary = "The records of a batch",
    params(
        ("batch" = String, Path, description = "The batch (a folder of the work directory)"),
        ("limit" = Option<u64>, Query, description = "At most this many records (1–10000); none: all"),
        ("skip" = Option<u64>, Query, description = "Leave out this many first records"),
    ),
    responses((status = 200, description = "The records (empty for an unknown batch)", body = Vec<RecordView>))
)]
#[get("/audiofile/list/batch/<batch>?<limit>&<skip>")]
pub async fn list_batch(
    app: &State<App>,
    who: Access<Read>,
    batch: &str,
    limit: Option<&str>,
    skip: Option<&str>,
) -> ApiResult<Listing> {
    let batch = visible_batch(&who, batch)?;
    let page = Page::parse(limit, skip)?;
    let records = app.store.list_page(Some(Some(&batch)), None, page).await?;
    Ok(listing(records))
}

fn listing(records: mongodb::Cursor<trd_core::domain::AudioFile>) -> Listing {
    let (content_type, ByteStream(body)) =
        json_array(records.map(|r| r.map(|r| RecordView::from(&r))));
    (content_type, ByteStream(body.boxed()))
}

/// Registers a file directly in the work directory (files without a batch).
#[utoipa::path(
    tag = "audiofile",
    summary = "Register a file already in the work directory",
    params(("filename" = String, Path, description = "Path of the file inside the work directory")),
    responses((status = 200, description = "The record", body = RecordView))
)]
#[get("/audiofile/create/<filename..>", rank = 2)]
pub async fn create_file(
    app: &State<App>,
    who: Access<Operate>,
    filename: Segments<'_, UriPath>,
) -> ApiResult<Json<RecordView>> {
    who.check_destination(None)?;
    let raw: Vec<&str> = filename.collect();
    if raw.first() == Some(&"batch") {
        return Err(ApiError::BadRequest(
            "use /trd/audiofile/create/batch/{batch} to register a batch".into(),
        ));
    }
    let location = FileLocation {
        batch: None,
        filename: FileName::parse(&raw.join("/"))?,
    };
    let record = app.jobs.submit(&location, Audio::InWorkdir).await?;
    Ok(Json(RecordView::from(&record)))
}

/// Registers every file of a batch folder.
#[utoipa::path(
    tag = "audiofile",
    summary = "Register every file of a batch folder",
    params(("batch" = String, Path, description = "The batch (a folder of the work directory)")),
    responses((status = 200, description = "filename → record URL", body = UrlMap))
)]
#[get("/audiofile/create/batch/<batch>")]
pub async fn create_batch(
    app: &State<App>,
    who: Access<Operate>,
    urls: RecordUrls,
    batch: &str,
) -> ApiResult<Json<UrlMap>> {
    let batch = visible_batch(&who, batch)?;
    let dir = app.settings.workdir.join(batch.as_str());
    if !dir.is_dir() {
        return Err(ApiError::NotFound(format!(
            "no batch folder '{batch}' in the work directory"
        )));
    }
    // A batch folder linked elsewhere would list (and register) files outside.
    trd_core::workdir_files::check_folder(&app.settings.workdir, &dir).map_err(|e| {
        if e.is_refused() {
            ApiError::BadRequest(e.to_string())
        } else {
            ApiError::internal("reading the batch folder", e)
        }
    })?;
    let files = tokio::task::spawn_blocking(move || crate::watcher::list_files(&dir))
        .await
        .map_err(|e| ApiError::internal("listing the batch folder", e))?;
    let mut records = Vec::new();
    for path in files {
        let Some(location) = FileLocation::from_path(&app.settings.workdir, &path) else {
            continue;
        };
        records.push(app.jobs.submit(&location, Audio::InWorkdir).await?);
    }
    Ok(Json(urls.map(&records)))
}

#[utoipa::path(
    tag = "audiofile",
    summary = "Delete a record and its transcription data",
    params(
        ("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id"),
        ("deleteOnDisk" = Option<bool>, Query, description = "Delete the audio file too"),
    ),
    responses((status = 200, description = "The removed record", body = RecordView))
)]
#[delete("/audiofile/delete/<id>?<deleteOnDisk>", rank = 2)]
#[allow(non_snake_case)]
pub async fn delete_file(
    app: &State<App>,
    who: Access<Operate>,
    id: &str,
    deleteOnDisk: Option<bool>,
) -> ApiResult<Json<RecordView>> {
    if deleteOnDisk == Some(true) {
        who.require(Scope::Admin)?;
    }
    let id = visible_id(app, &who, id).await?;
    let removed = app
        .jobs
        .delete(id.object_id(), deleteOnDisk.unwrap_or(false))
        .await?;
    Ok(Json(RecordView::from(&removed)))
}

#[utoipa::path(
    tag = "audiofile",
    summary = "Delete a batch's records",
    params(
        ("batch" = String, Path, description = "The batch (a folder of the work directory)"),
        ("deleteOnDisk" = Option<bool>, Query, description = "Delete the audio files too"),
    ),
    responses((status = 200, description = "The removed records", body = Vec<RecordView>))
)]
#[delete("/audiofile/delete/batch/<batch>?<deleteOnDisk>")]
#[allow(non_snake_case)]
pub async fn delete_batch(
    app: &State<App>,
    who: Access<Operate>,
    batch: &str,
    deleteOnDisk: Option<bool>,
) -> ApiResult<Json<Vec<RecordView>>> {
    if deleteOnDisk == Some(true) {
        who.require(Scope::Admin)?;
    }
    let batch = visible_batch(&who, batch)?;
    let records = app.store.list(Some(Some(&batch))).await?;
    if records.is_empty() {
        return Err(ApiError::NotFound(format!("no batch '{batch}'")));
    }
    let mut removed = Vec::new();
    for r in records {
        match app.jobs.delete(r.id, deleteOnDisk.unwrap_or(false)).await {
            Ok(gone) => removed.push(RecordView::from(&gone)),
            // Deleted meanwhile by another caller: not ours to report.
            Err(crate::jobs::JobError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(removed))
}
