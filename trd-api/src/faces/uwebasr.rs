//! UWebASR's HTTP API (`../shared/seeds/001_…`): `POST /api/v2/{app_id…}` with any audio as
//! the body, or `GET` the same path with `?url=` (fetched through the webhook allow-list, at
//! most `upload_limit_bytes`); `format` plaintext (default), json, webvtt, sentvtt,
//! speechcloud_json (all streamed as the workers recognize), trs or extended_trs (written at
//! the end). `app_id` names the model: its last component that is a model id or a language a
//! model serves (`lindat/generic/ko` → `ko`). Answers carry `SpeechCloud-SessionID` (the job's
//! id) and `SpeechCloud-TimeRef`; errors are written inside the format asked for, with their
//! status (400 unknown format, 400 empty audio, 503 no free slot, the source's status for a
//! URL that failed).
//!
//! `stream=1` (a live HTTP stream) is read until the source ends or the size limit, then
//! recognized: TRD does not yet recognize a stream while it plays.

use std::path::PathBuf;

use futures::StreamExt;
use rocket::data::Capped;
use rocket::fs::TempFile;
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::response::{self, Responder, Response};
use rocket::{get, post, Request, State};
use trd_core::domain::{AudioFile, Segment, StartOptions};
use trd_export::{plain, uwebasr};

use super::now::{self, Document, Export, PacedAudio, Slot, Streamed, Whole};
use crate::app::App;
use crate::error::ApiError;
use crate::fetch::FetchError;
use crate::identity::guard::{Access, Operate};
use crate::identity::paced::Paced;
use crate::identity::Principal;
use crate::jobs::{Audio, NowRequest};

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![post_audio, get_url]
}

/// The formats, by their names in `format=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Plaintext,
    Json,
    Webvtt,
    Sentvtt,
    SpeechcloudJson,
    Trs,
    ExtendedTrs,
}

impl Format {
    fn parse(name: Option<&str>) -> Option<Self> {
        Some(match name.unwrap_or("plaintext") {
            "plaintext" => Self::Plaintext,
            "json" => Self::Json,
            "webvtt" => Self::Webvtt,
            "sentvtt" => Self::Sentvtt,
            "speechcloud_json" => Self::SpeechcloudJson,
            "trs" => Self::Trs,
            "extended_trs" => Self::ExtendedTrs,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Json => "json",
            Self::Webvtt => "webvtt",
            Self::Sentvtt => "sentvtt",
            Self::SpeechcloudJson => "speechcloud_json",
            Self::Trs => "trs",
            Self::ExtendedTrs => "extended_trs",
        }
    }

    /// The content types the seed documents.
    fn content_type(self) -> ContentType {
        match self {
            Self::Plaintext => ContentType::new("text", "plain").with_params(("charset", "UTF-8")),
            Self::Json | Self::SpeechcloudJson => ContentType::JSON,
            Self::Webvtt | Self::Sentvtt => ContentType::new("text", "webvtt"),
            Self::Trs | Self::ExtendedTrs => ContentType::new("text", "xml"),
        }
    }
}

/// The file name a client gives for Transcriber XML (`Content-Disposition: filename="…"`).
pub struct GivenName(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for GivenName {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let name = req
            .headers()
            .get_one("Content-Disposition")
            .and_then(|value| value.split("filename=").nth(1))
            .map(|rest| rest.trim().trim_matches('"').to_owned())
            .filter(|name| !name.is_empty());
        Outcome::Success(GivenName(name))
    }
}

#[utoipa::path(
    tag = "uwebasr",
    summary = "Recognize the audio in the body (UWebASR's API; streamed except TRS)",
    params(
        ("app_id" = String, Path, description = "Names the model (its last component that is a model id or language)"),
        ("format" = Option<String>, Query, description = "plaintext (default), json, webvtt, sentvtt, speechcloud_json, trs, extended_trs"),
        ("keep" = Option<bool>, Query, description = "Keep the job and list it like any file"),
        ("batch" = Option<String>, Query, description = "The batch a kept job goes to"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "The transcript", body = String, content_type = "text/plain"))
)]
#[allow(clippy::too_many_arguments)]
#[post("/api/v2/<app_id..>?<format>&<keep>&<batch>", data = "<body>")]
pub async fn post_audio(
    app: &State<App>,
    who: Access<Operate>,
    given: GivenName,
    app_id: PathBuf,
    format: Option<&str>,
    keep: Option<bool>,
    batch: Option<&str>,
    body: PacedAudio<Capped<TempFile<'_>>>,
) -> Result<Streamed<futures::stream::BoxStream<'static, Vec<u8>>>, UwError> {
    let Paced { body, slot } = body;
    let format = Format::parse(format).ok_or_else(UwError::unknown_format)?;
    let fail = |error: ApiError| UwError { format, error };
    let model = model_of(app, &app_id).map_err(fail)?;
    if !body.is_complete() {
        return Err(fail(ApiError::PayloadTooLarge(format!(
            "the audio exceeds the size limit of {} bytes",
            app.settings.upload_limit_bytes
        ))));
    }
    let mut part = body.into_inner();
    if part.len() == 0 {
        return Err(fail(ApiError::BadRequest("Empty audio data".into())));
    }
    let path = now::spool_part(app, &mut part).await.map_err(fail)?;
    let audio = Spooled {
        path,
        name: given.0,
    };
    recognize(app, &who, slot, format, model, audio, keep, batch).await
}

#[utoipa::path(
    tag = "uwebasr",
    summary = "Recognize the audio at `url` (UWebASR's API; fetched through the allow-list)",
    params(
        ("app_id" = String, Path, description = "Names the model"),
        ("url" = String, Query, description = "Where the audio is (http or https, allow-listed)"),
        ("format" = Option<String>, Query, description = "As for POST"),
        ("stream" = Option<u8>, Query, description = "1: a live stream, read until it ends or the size limit"),
        ("keep" = Option<bool>, Query, description = "Keep the job and list it like any file"),
        ("batch" = Option<String>, Query, description = "The batch a kept job goes to"),
    ),
    responses((status = 200, description = "The transcript", body = String, content_type = "text/plain"))
)]
#[allow(clippy::too_many_arguments)]
#[get("/api/v2/<app_id..>?<url>&<format>&<stream>&<keep>&<batch>")]
pub async fn get_url(
    app: &State<App>,
    who: Access<Operate>,
    slot: Slot,
    app_id: PathBuf,
    url: Option<&str>,
    format: Option<&str>,
    stream: Option<u8>,
    keep: Option<bool>,
    batch: Option<&str>,
) -> Result<Streamed<futures::stream::BoxStream<'static, Vec<u8>>>, UwError> {
    let _ = stream;
    let format = Format::parse(format).ok_or_else(UwError::unknown_format)?;
    let fail = |error: ApiError| UwError { format, error };
    let model = model_of(app, &app_id).map_err(fail)?;
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        return Err(fail(ApiError::BadRequest(
            "a GET needs the audio's `url` (or POST the audio)".into(),
        )));
    };
    let path = crate::fetch::download(app, url, &[])
        .await
        .map_err(|e| UwError::fetch(format, e))?;
    if tokio::fs::metadata(&path)
        .await
        .map(|m| m.len())
        .unwrap_or(0)
        == 0
    {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(fail(ApiError::BadRequest("Empty audio data".into())));
    }
    let name = url.rsplit('/').next().map(str::to_owned);
    let audio = Spooled { path, name };
    recognize(app, &who, slot, format, model, audio, keep, batch).await
}

/// The request's audio in the spool, and the name the client gave it.
struct Spooled {
    path: PathBuf,
    name: Option<String>,
}

/// The model `app_id` names: its last component that is a model id, or a language a model
/// serves.
fn model_of(app: &App, app_id: &std::path::Path) -> Result<String, ApiError> {
    let components: Vec<&str> = app_id.iter().filter_map(|c| c.to_str()).collect();
    for component in components.iter().rev() {
        if app.settings.models.contains_key(*component) {
            return Ok((*component).to_owned());
        }
        if let Ok(model) = app.jobs.model_for_language(component) {
            return Ok(model);
        }
    }
    Err(ApiError::NotFound(format!(
        "no model for app_id '{}'; models served: {}",
        components.join("/"),
        app.settings
            .models
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

#[allow(clippy::too_many_arguments)]
async fn recognize(
    app: &App,
    who: &Principal,
    slot: Slot,
    format: Format,
    model: String,
    audio: Spooled,
    keep: Option<bool>,
    batch: Option<&str>,
) -> Result<Streamed<futures::stream::BoxStream<'static, Vec<u8>>>, UwError> {
    let fail = |error: ApiError| UwError { format, error };
    let Spooled { path, name } = audio;
    let location = now::kept_batch(keep, batch)
        .and_then(|kept| now::location(who, kept, name.as_deref()))
        .map_err(fail)?;
    let request = NowRequest {
        location,
        audio: Audio::Spooled(path),
        options: StartOptions {
            model: Some(model),
            diarization: Some("none".to_owned()),
            ..StartOptions::default()
        },
        keep: keep.unwrap_or(false),
    };
    let time_ref = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let (live, decoded) = now::run(app, slot, request).await.map_err(fail)?;
    let session = live.id().to_hex();
    let body = match format {
        Format::Plaintext => stream(live, decoded, |r: &AudioFile, s: &[Segment], done| {
            plain::text(r, s, done).into_bytes()
        }),
        Format::Json => stream(live, decoded, uwebasr::json),
        Format::SpeechcloudJson => stream(live, decoded, uwebasr::speechcloud_json),
        Format::Webvtt | Format::Sentvtt => {
            stream(live, decoded, Export(trd_export::ExportFormat::Vtt))
        }
        Format::Trs | Format::ExtendedTrs => {
            let export_format = if format == Format::Trs {
                trd_export::ExportFormat::Trs
            } else {
                trd_export::ExportFormat::ExtendedTrs
            };
            stream(
                live,
                decoded,
                Whole(move |r: &AudioFile, s: &[Segment]| {
                    // The file name the client gave, if any, is the one the document names.
                    let mut record = r.clone();
                    if let Some(name) = &name {
                        record.filename = name.clone();
                    }
                    Export(export_format).render(&record, s, true)
                }),
            )
        }
    };
    Ok(Streamed {
        content_type: format.content_type(),
        headers: vec![
            Header::new("SpeechCloud-SessionID", session),
            Header::new("SpeechCloud-TimeRef", time_ref),
        ],
        body,
    })
}

fn stream(
    live: crate::jobs::LiveJob,
    decoded: AudioFile,
    document: impl Document,
) -> futures::stream::BoxStream<'static, Vec<u8>> {
    now::document_stream(live, decoded, document).boxed()
}

/// Whether the catcher answers `path` in this face's way (a plaintext error line, or the
/// format's error when the query names one).
pub fn answers(path: &str) -> bool {
    path.starts_with("/api/v2/")
}

/// The body the catcher writes for a refusal on this face's paths, in the format the query
/// asks for: its content type and bytes.
pub fn caught(req: &Request<'_>, status: Status, message: &str) -> (ContentType, Vec<u8>) {
    let format = req
        .query_value::<&str>("format")
        .and_then(Result::ok)
        .and_then(|name| Format::parse(Some(name)))
        .unwrap_or(Format::Plaintext);
    (
        format.content_type(),
        uwebasr::error(format.name(), status.code, message),
    )
}

/// An error written inside the format asked for, with its status.
#[derive(Debug)]
pub struct UwError {
    format: Format,
    error: ApiError,
}

impl UwError {
    fn unknown_format() -> Self {
        UwError {
            format: Format::Plaintext,
            error: ApiError::BadRequest("Unknown format".into()),
        }
    }

    /// A URL that failed: the source's own status when it answered one (as the service
    /// does), 413 over the size limit, 400 otherwise.
    fn fetch(format: Format, e: FetchError) -> Self {
        let error = match &e {
            FetchError::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            FetchError::Refused {
                status: Some(code), ..
            } => {
                return UwError {
                    format,
                    error: ApiError::Upstream {
                        status: *code,
                        message: e.to_string(),
                    },
                }
            }
            FetchError::Refused { .. } => ApiError::BadRequest(e.to_string()),
        };
        UwError { format, error }
    }
}

impl<'r> Responder<'r, 'static> for UwError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.error.status();
        if status.code >= 500 {
            tracing::error!(uri = %req.uri(), error = %self.error.message(), "request failed");
        }
        let reason = match status.code {
            400 | 404 | 413 | 503 => self.error.message(),
            _ => status.reason().unwrap_or("Error").to_owned(),
        };
        let body = uwebasr::error(self.format.name(), status.code, &reason);
        let mut response = Response::build();
        response
            .status(status)
            .header(self.format.content_type())
            .sized_body(body.len(), std::io::Cursor::new(body));
        for header in self.error.headers() {
            response.header(header);
        }
        response.ok()
    }
}
