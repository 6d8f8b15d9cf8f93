//! `POST /trd/recognize`: one file recognized while the caller waits, in TRD's own shapes
//! (`format=json`, the default, is the result of `/trd/transcription/result/audiofile`; csv,
//! txt, vtt and srt stream as the workers recognize; trs and extended_trs come at the end).
//! The start parameters are a batch start's (`lm.uri`, `hints.words`, `diarization`,
//! `speakers`…); `keep=true` keeps the job in `batch` (default `recognized`).

use futures::StreamExt;
use rocket::form::{Errors, Form};
use rocket::fs::TempFile;
use rocket::http::ContentType;
use rocket::{post, FromForm, State};
use trd_core::domain::{AudioFile, Segment};
use trd_export::{ExportFormat, ExportOptions};
use utoipa::ToSchema;

use super::start_query::StartQuery;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::faces::now::{self, Export, PacedAudio, Streamed, Whole};
use crate::identity::guard::{Access, Operate};
use crate::identity::paced::Paced;
use crate::jobs::NowRequest;
use crate::shapes::{Binary, TranscriptResult};

/// The audio.
#[derive(FromForm, ToSchema)]
#[schema(as = RecognizeForm)]
pub struct RecognizeForm<'r> {
    #[schema(value_type = Option<Binary>)]
    file: Option<TempFile<'r>>,
}

#[utoipa::path(
    tag = "transcription",
    summary = "Recognize one file now and answer with its result (streamed for csv, txt, vtt, srt)",
    params(
        ("format" = Option<String>, Query, description = "json (default), csv, txt, vtt, srt, trs, extended_trs"),
        ("keep" = Option<bool>, Query, description = "Keep the job and list it like any file"),
        ("batch" = Option<String>, Query, description = "The batch a kept job goes to (default `recognized`)"),
        StartQuery,
    ),
    request_body(content = RecognizeForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The result", body = TranscriptResult),
        (status = 503, description = "Every recognition slot is busy (`Retry-After`)"),
    )
)]
#[post("/recognize?<format>&<keep>&<batch>", data = "<form>")]
#[allow(clippy::too_many_arguments)]
pub async fn recognize(
    app: &State<App>,
    who: Access<Operate>,
    start: StartQuery,
    format: Option<&str>,
    keep: Option<bool>,
    batch: Option<&str>,
    form: PacedAudio<Result<Form<RecognizeForm<'_>>, Errors<'_>>>,
) -> ApiResult<Streamed<futures::stream::BoxStream<'static, Vec<u8>>>> {
    let Paced { body: form, slot } = form;
    let mut form = form.map_err(|e| now::form_error(app, e))?;
    let export = match format.unwrap_or("json") {
        "json" => None,
        name => Some(
            ExportFormat::parse(name, ExportOptions::default())
                .map_err(|e| ApiError::BadRequest(format!("{e}, or json")))?,
        ),
    };
    let options = start.into_options()?;
    let Some(part) = form.file.as_mut() else {
        return Err(ApiError::BadRequest(
            "the request has no `file` part".into(),
        ));
    };
    let (audio, name) = now::spooled(app, part).await?;
    let request = NowRequest {
        location: now::location(&who, now::kept_batch(keep, batch)?, name.as_deref())?,
        audio,
        options,
        keep: keep.unwrap_or(false),
    };
    let (live, decoded) = now::run(app, slot, request).await?;
    let (content_type, body) = match export {
        None => (
            ContentType::JSON,
            now::document_stream(
                live,
                decoded,
                Whole(|r: &AudioFile, s: &[Segment]| {
                    serde_json::to_vec(&TranscriptResult::new(r, s)).expect("the result serialises")
                }),
            )
            .boxed(),
        ),
        Some(format) => (
            content_type(&format),
            now::document_stream(live, decoded, Export(format)).boxed(),
        ),
    };
    Ok(Streamed {
        content_type,
        headers: Vec::new(),
        body,
    })
}

fn content_type(format: &ExportFormat) -> ContentType {
    ContentType::parse_flexible(format.content_type()).unwrap_or(ContentType::Plain)
}
