//! `/trd/audiofile/...`: records, registration of files on disk, deletion.

use rocket::http::uri::{fmt::Path as UriPath, Segments};
use rocket::serde::json::Json;
use rocket::{delete, get, State};
use serde_json::{json, Map, Value};
use trd_core::domain::{FileLocation, FileName};

use crate::error::{ApiError, ApiResult};
use crate::guards::{parse_batch, parse_id, App, BaseUrl};
use crate::registry::{register_path, RegisterError};
use crate::view;

#[utoipa::path(tag = "audiofile", summary = "A file's record, with its webhook deliveries", params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id")), responses((status = 200, description = "The record", body = crate::openapi::Record), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/audiofile/<id>", rank = 3)]
pub async fn get_record(app: &State<App>, id: &str) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    let record = app
        .store
        .audiofile(id.object_id())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audio file with id {id}")))?;
    let mut body = view::record(&record);
    let deliveries = crate::webhooks::outbox::deliveries_of(app, record.id).await?;
    if !deliveries.is_empty() {
        body["webhooks"] = deliveries.iter().map(view::delivery).collect();
    }
    Ok(Json(body))
}

#[utoipa::path(tag = "audiofile", summary = "Every record", responses((status = 200, description = "The records", body = Vec<crate::openapi::Record>), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/audiofile/list")]
pub async fn list_all(app: &State<App>) -> ApiResult<Json<Value>> {
    let records = app.store.list(None).await?;
    Ok(Json(Value::Array(
        records.iter().map(view::record).collect(),
    )))
}

#[utoipa::path(tag = "audiofile", summary = "The records of a batch", params(("batch" = String, Path, description = "The batch (a folder of the work directory)")), responses((status = 200, description = "The records (empty for an unknown batch)", body = Vec<crate::openapi::Record>), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/audiofile/list/batch/<batch>")]
pub async fn list_batch(app: &State<App>, batch: &str) -> ApiResult<Json<Value>> {
    let batch = parse_batch(batch)?;
    let records = app.store.list(Some(Some(&batch))).await?;
    Ok(Json(Value::Array(
        records.iter().map(view::record).collect(),
    )))
}

fn register_error(e: RegisterError) -> ApiError {
    match e {
        RegisterError::InvalidLocation(p) => {
            ApiError::BadRequest(format!("'{p}' is not a valid file location"))
        }
        RegisterError::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
            ApiError::NotFound(format!("no file {path} in the work directory"))
        }
        RegisterError::Io { path, source } => {
            ApiError::Internal(format!("cannot read {path}: {source}"))
        }
        RegisterError::Store(e) => e.into(),
    }
}

/// Registers a file directly in the work directory (files without a batch).
#[utoipa::path(tag = "audiofile", summary = "Register a file already in the work directory", params(("filename" = String, Path, description = "Path of the file inside the work directory")), responses((status = 200, description = "The record", body = crate::openapi::Record), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/audiofile/create/<filename..>", rank = 2)]
pub async fn create_file(
    app: &State<App>,
    filename: Segments<'_, UriPath>,
) -> ApiResult<Json<Value>> {
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
    let path = location.path_in(&app.settings.workdir);
    if !path.is_file() {
        return Err(ApiError::NotFound(format!(
            "no file '{}' in the work directory",
            location.filename
        )));
    }
    let registration = register_path(&app.store, &app.settings.workdir, &path)
        .await
        .map_err(register_error)?;
    Ok(Json(view::record(registration.record())))
}

/// Registers every file of a batch folder.
#[utoipa::path(tag = "audiofile", summary = "Register every file of a batch folder", params(("batch" = String, Path, description = "The batch (a folder of the work directory)")), responses((status = 200, description = "filename → record URL", body = crate::openapi::UrlMap), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/audiofile/create/batch/<batch>")]
pub async fn create_batch(app: &State<App>, base: BaseUrl, batch: &str) -> ApiResult<Json<Value>> {
    let batch = parse_batch(batch)?;
    let dir = app.settings.workdir.join(batch.as_str());
    if !dir.is_dir() {
        return Err(ApiError::NotFound(format!(
            "no batch folder '{batch}' in the work directory"
        )));
    }
    let files = tokio::task::spawn_blocking(move || crate::watcher::list_files(&dir))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut out = Map::new();
    for path in files {
        if FileLocation::from_path(&app.settings.workdir, &path).is_none() {
            continue;
        }
        let registration = register_path(&app.store, &app.settings.workdir, &path)
            .await
            .map_err(register_error)?;
        let r = registration.record();
        out.insert(r.filename.clone(), json!(base.audiofile_url(r.id)));
    }
    Ok(Json(Value::Object(out)))
}

fn remove_from_disk(app: &App, record: &trd_core::domain::AudioFile) {
    let location = (|| {
        Some(FileLocation {
            batch: record
                .batch
                .as_deref()
                .map(trd_core::domain::BatchName::parse)
                .transpose()
                .ok()?,
            filename: FileName::parse(&record.filename).ok()?,
        })
    })();
    if let Some(location) = location {
        let path = location.path_in(&app.settings.workdir);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "could not delete the audio file");
            }
        }
    }
}

#[utoipa::path(tag = "audiofile", summary = "Delete a record and its transcription data", params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id"), ("deleteOnDisk" = Option<bool>, Query, description = "Delete the audio file too")), responses((status = 200, description = "The removed record", body = crate::openapi::Record), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[delete("/audiofile/delete/<id>?<deleteOnDisk>", rank = 2)]
#[allow(non_snake_case)]
pub async fn delete_file(
    app: &State<App>,
    id: &str,
    deleteOnDisk: Option<bool>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    let removed = crate::control::delete_file(app, id.object_id())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audio file with id {id}")))?;
    if deleteOnDisk.unwrap_or(false) {
        remove_from_disk(app, &removed);
    }
    Ok(Json(view::record(&removed)))
}

#[utoipa::path(tag = "audiofile", summary = "Delete a batch's records", params(("batch" = String, Path, description = "The batch (a folder of the work directory)"), ("deleteOnDisk" = Option<bool>, Query, description = "Delete the audio files too")), responses((status = 200, description = "The removed records", body = Vec<crate::openapi::Record>), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[delete("/audiofile/delete/batch/<batch>?<deleteOnDisk>")]
#[allow(non_snake_case)]
pub async fn delete_batch(
    app: &State<App>,
    batch: &str,
    deleteOnDisk: Option<bool>,
) -> ApiResult<Json<Value>> {
    let batch = parse_batch(batch)?;
    let records = app.store.list(Some(Some(&batch))).await?;
    if records.is_empty() {
        return Err(ApiError::NotFound(format!("no batch '{batch}'")));
    }
    let mut removed = Vec::new();
    for r in records {
        if let Some(gone) = crate::control::delete_file(app, r.id).await? {
            if deleteOnDisk.unwrap_or(false) {
                remove_from_disk(app, &gone);
            }
            removed.push(view::record(&gone));
        }
    }
    Ok(Json(Value::Array(removed)))
}
