//! `POST /trd/audiofile/upload`: files streamed to disk in the work directory (Rocket spools
//! each part to a hidden folder inside it, never whole in memory) and registered at once.
//!
//! A name that exists already in the batch is refused with 409 rather than overwritten: a
//! transcript must always belong to the audio it was made from.

use rocket::form::{Errors, Form};
use rocket::fs::TempFile;
use rocket::serde::json::Json;
use rocket::{post, FromForm, State};
use trd_core::domain::{BatchName, FileLocation, FileName};
use utoipa::ToSchema;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::identity::paced::Paced;
use crate::identity::{Access, Operate};
use crate::jobs::Audio;
use crate::shapes::{Binary, RecordUrls, UrlMap};

/// `POST /trd/audiofile/upload`: one part per file (the part's file name becomes the record's
/// `filename`) and the batch folder to store them in (none: the work directory itself).
#[derive(FromForm, ToSchema)]
#[schema(as = UploadForm)]
pub struct Upload<'r> {
    #[schema(value_type = Vec<Binary>)]
    files: Vec<TempFile<'r>>,
    batch: Option<String>,
}

#[utoipa::path(
    tag = "audiofile",
    summary = "Upload files (stored in the work directory and registered at once)",
    request_body(content = Upload, content_type = "multipart/form-data"),
    responses((status = 200, description = "filename → record URL", body = UrlMap))
)]
#[post("/audiofile/upload", data = "<form>")]
pub async fn upload(
    app: &State<App>,
    who: Access<Operate>,
    urls: RecordUrls,
    form: Paced<Result<Form<Upload<'_>>, Errors<'_>>>,
) -> ApiResult<Json<UrlMap>> {
    let mut form = form.body.map_err(|errors| {
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
    who.check_destination(batch.as_ref())?;
    let mut records = Vec::new();
    for file in form.files.iter_mut() {
        let raw = file
            .raw_name()
            .map(|n| n.dangerous_unsafe_unsanitized_raw().as_str().to_owned())
            .ok_or_else(|| ApiError::BadRequest("a `files` part has no file name".into()))?;
        let location = FileLocation {
            batch: batch.clone(),
            filename: FileName::parse(&raw)?,
        };
        let spooled = crate::faces::now::spool_part(app, file).await?;
        records.push(app.jobs.submit(&location, Audio::Spooled(spooled)).await?);
    }
    Ok(Json(urls.map(&records)))
}
