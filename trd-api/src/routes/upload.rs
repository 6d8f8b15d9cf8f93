//! `POST /trd/audiofile/upload`: files streamed to disk in the work directory (Rocket spools
//! each part to a hidden folder inside it, never whole in memory) and registered at once.
//!
//! A name that exists already in the batch is refused with 409 rather than overwritten: a
//! transcript must always belong to the audio it was made from.

use rocket::form::{Errors, Form};
use rocket::fs::TempFile;
use rocket::serde::json::Json;
use rocket::{post, FromForm, State};
use serde_json::{json, Map, Value};
use trd_core::domain::{BatchName, FileLocation, FileName};

use crate::error::{ApiError, ApiResult};
use crate::guards::{App, BaseUrl};
use crate::registry::register_path;

/// Rocket spools uploads here: inside the work directory (so moving a file in is a rename) but
/// hidden (so the watcher never sees a partial upload).
pub const SPOOL_DIR: &str = ".trd-uploads";

#[derive(FromForm)]
pub struct Upload<'r> {
    files: Vec<TempFile<'r>>,
    batch: Option<String>,
}

#[utoipa::path(tag = "audiofile", summary = "Upload files (stored in the work directory and registered at once)", request_body(content = crate::openapi::UploadForm, content_type = "multipart/form-data"), responses((status = 200, description = "filename → record URL", body = crate::openapi::UrlMap), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[post("/audiofile/upload", data = "<form>")]
pub async fn upload(
    app: &State<App>,
    base: BaseUrl,
    form: Result<Form<Upload<'_>>, Errors<'_>>,
) -> ApiResult<Json<Value>> {
    let mut form = form.map_err(|errors| {
        if errors.status().code == 413 {
            ApiError::PayloadTooLarge(format!(
                "the upload exceeds the size limit of {} bytes (setting `upload_limit_bytes`)",
                app.settings.upload_limit_bytes
            ))
        } else {
            ApiError::BadRequest(format!("malformed upload: {errors}"))
        }
    })?;
    if form.files.is_empty() {
        return Err(ApiError::BadRequest(
            "the upload has no `files` part".into(),
        ));
    }
    let batch = match form
        .batch
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        Some(b) => Some(BatchName::parse(b)?),
        None => None,
    };
    let mut answer = Map::new();
    for file in form.files.iter_mut() {
        let raw = file
            .raw_name()
            .map(|n| n.dangerous_unsafe_unsanitized_raw().as_str().to_owned())
            .ok_or_else(|| ApiError::BadRequest("a `files` part has no file name".into()))?;
        let location = FileLocation {
            batch: batch.clone(),
            filename: FileName::parse(&raw)?,
        };
        let record = store_upload(app, file, &location).await?;
        answer.insert(
            record.filename.clone(),
            json!(base.audiofile_url(record.id)),
        );
    }
    Ok(Json(Value::Object(answer)))
}

async fn store_upload(
    app: &App,
    file: &mut TempFile<'_>,
    location: &FileLocation,
) -> ApiResult<trd_core::domain::AudioFile> {
    let target = location.path_in(&app.settings.workdir);
    let taken = || {
        ApiError::Conflict(format!(
            "'{}' exists already in this batch; delete it or upload under another name",
            location.filename
        ))
    };
    if target.exists() || app.store.find_by_location(location).await?.is_some() {
        return Err(taken());
    }
    let parent = target
        .parent()
        .expect("a file inside the work directory has a parent");
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let spooled = app
        .settings
        .workdir
        .join(SPOOL_DIR)
        .join(format!("{}.part", uuid_like()));
    file.move_copy_to(&spooled)
        .await
        .map_err(|e| ApiError::Internal(format!("storing the upload: {e}")))?;
    // A hard link never replaces an existing file, so two uploads of one name cannot both win.
    let linked = std::fs::hard_link(&spooled, &target);
    let _ = std::fs::remove_file(&spooled);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(taken()),
        Err(e) => return Err(ApiError::Internal(format!("storing the upload: {e}"))),
    }
    let registration = register_path(&app.store, &app.settings.workdir, &target)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(registration.record().clone())
}

fn uuid_like() -> String {
    mongodb::bson::oid::ObjectId::new().to_hex()
}
