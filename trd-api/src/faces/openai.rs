//! OpenAI's audio transcription API (`../shared/reference/client-contracts.md` §5), for the
//! `openai` SDKs and everything built on them: `POST /v1/audio/transcriptions` (multipart;
//! every `response_format`, and `stream=true` as Server-Sent Events) and `GET /v1/models`.
//! Errors are OpenAI's `{"error": {"message", "type", "param", "code"}}`, the 503 of a full
//! house with `Retry-After` (the SDKs retry on it).
//!
//! `model` may be any name: a TRD model id or a language chooses that model, anything else
//! (`whisper-1`) the default. `prompt` words become hints. `keep=true` (query) keeps the job.

use futures::StreamExt;
use rocket::form::{Errors, Form};
use rocket::fs::TempFile;
use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{get, post, FromForm, Request, State};
use serde::Serialize;
use trd_core::domain::{AudioFile, Segment, StartOptions};
use trd_export::openai::{self, StreamEvent};
use utoipa::ToSchema;

use super::now::{self, Document, Export, PacedAudio, Streamed, Whole};
use crate::app::App;
use crate::error::ApiError;
use crate::identity::guard::{Access, Operate, Read};
use crate::identity::paced::Paced;
use crate::jobs::NowRequest;
use crate::shapes::Binary;

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![transcriptions, models]
}

/// `POST /v1/audio/transcriptions`: multipart. Fields the API has and TRD has no use for
/// (`temperature`, `include[]`, `chunking_strategy`) are accepted and ignored.
#[derive(FromForm, ToSchema)]
#[schema(as = OpenAiTranscriptionForm)]
pub struct TranscriptionForm<'r> {
    #[schema(value_type = Option<Binary>)]
    file: Option<TempFile<'r>>,
    /// Any name: a TRD model id or a language picks that model, others the default.
    model: Option<String>,
    /// ISO-639-1: the model serving it (400 if none does).
    language: Option<String>,
    /// Words to expect: each becomes a hint.
    prompt: Option<String>,
    /// `json` (default), `text`, `srt`, `vtt` or `verbose_json`.
    response_format: Option<String>,
    /// `word` adds `words` to `verbose_json` (`timestamp_granularities[]`).
    timestamp_granularities: Vec<String>,
    /// `true`: Server-Sent Events, a delta per recognised segment, then the whole text.
    stream: Option<String>,
}

/// What the client asked to get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl ResponseFormat {
    fn parse(name: Option<&str>) -> Result<Self, OpenAiError> {
        Ok(match name.map(str::trim).unwrap_or("json") {
            "" | "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            "verbose_json" => Self::VerboseJson,
            other => {
                return Err(OpenAiError::invalid(
                    format!(
                    "response_format '{other}' is not one of json, text, srt, vtt, verbose_json"
                ),
                    "response_format",
                ))
            }
        })
    }
}

#[utoipa::path(
    tag = "openai",
    summary = "Transcribe audio (OpenAI's API; streamed as the workers recognize it)",
    params(
        ("keep" = Option<bool>, Query, description = "Keep the job and list it like any file"),
        ("batch" = Option<String>, Query, description = "The batch a kept job goes to (default `recognized`)"),
    ),
    request_body(content = TranscriptionForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The transcript in the format asked for", body = openai::Transcription),
        (status = 503, description = "Every recognition slot is busy (`Retry-After`)", body = OpenAiErrorBody),
    )
)]
#[post("/v1/audio/transcriptions?<keep>&<batch>", data = "<form>")]
pub async fn transcriptions(
    app: &State<App>,
    who: Access<Operate>,
    keep: Option<bool>,
    batch: Option<&str>,
    form: PacedAudio<Result<Form<TranscriptionForm<'_>>, Errors<'_>>>,
) -> Result<Streamed<futures::stream::BoxStream<'static, Vec<u8>>>, OpenAiError> {
    let Paced { body: form, slot } = form;
    let mut form = form.map_err(|e| OpenAiError::from(now::form_error(app, e)))?;
    let format = ResponseFormat::parse(form.response_format.as_deref())?;
    let stream = form
        .stream
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("true"));
    let with_words = form.timestamp_granularities.iter().any(|g| g == "word");
    if form.file.is_none() {
        return Err(OpenAiError::invalid("the request has no `file`", "file"));
    }
    let model = match form
        .language
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        Some(language) => Some(
            app.jobs
                .model_for_language(language)
                .map_err(|e| OpenAiError::invalid(e.to_string(), "language"))?,
        ),
        None => now::model_named(app, form.model.as_deref()),
    };
    let language = model
        .clone()
        .unwrap_or_else(|| app.settings.default_model.clone());
    let hints = form
        .prompt
        .as_deref()
        .map(now::prompt_hints)
        .unwrap_or_default();
    let part = form.file.as_mut().expect("checked above");
    let (audio, name) = now::spooled(app, part).await?;
    let request = NowRequest {
        location: now::location(&who, now::kept_batch(keep, batch)?, name.as_deref())?,
        audio,
        options: StartOptions {
            model,
            hints,
            diarization: Some("none".to_owned()),
            ..StartOptions::default()
        },
        keep: keep.unwrap_or(false),
    };
    let (live, decoded) = now::run(app, slot, request).await?;
    let language = crate::jobs::language_of(&language).to_owned();
    let (content_type, body) = if stream {
        (
            ContentType::new("text", "event-stream"),
            now::document_stream(live, decoded, Events).boxed(),
        )
    } else {
        match format {
            ResponseFormat::Json => (
                ContentType::JSON,
                now::document_stream(
                    live,
                    decoded,
                    Whole(|_: &AudioFile, s: &[Segment]| {
                        json(&openai::Transcription {
                            text: openai::text(s),
                        })
                    }),
                )
                .boxed(),
            ),
            ResponseFormat::VerboseJson => (
                ContentType::JSON,
                now::document_stream(
                    live,
                    decoded,
                    Whole(move |r: &AudioFile, s: &[Segment]| {
                        json(&openai::verbose(r, s, &language, with_words))
                    }),
                )
                .boxed(),
            ),
            ResponseFormat::Text => (
                ContentType::Plain,
                now::document_stream(live, decoded, |_: &AudioFile, s: &[Segment], done| {
                    let mut text = openai::text(s).into_bytes();
                    if done {
                        text.push(b'\n');
                    }
                    text
                })
                .boxed(),
            ),
            ResponseFormat::Srt | ResponseFormat::Vtt => {
                let export = if format == ResponseFormat::Srt {
                    trd_export::ExportFormat::parse("srt", Default::default())
                } else {
                    trd_export::ExportFormat::parse("vtt", Default::default())
                }
                .expect("built-in format names parse");
                (
                    ContentType::Plain,
                    now::document_stream(live, decoded, Export(export)).boxed(),
                )
            }
        }
    };
    Ok(Streamed {
        content_type,
        headers: Vec::new(),
        body,
    })
}

/// `stream=true`: a `transcript.text.delta` event per recognised segment, in order, then
/// `transcript.text.done` with the whole text.
struct Events;

impl Document for Events {
    fn render(&mut self, _record: &AudioFile, segments: &[Segment], done: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut streamed_any = false;
        for segment in segments {
            if let Some(event) = openai::delta(segment, streamed_any) {
                streamed_any = true;
                out.extend(sse(&event));
            }
        }
        if done {
            out.extend(sse(&StreamEvent::Done {
                text: openai::text(segments),
            }));
        }
        out
    }
}

fn sse(event: &StreamEvent) -> Vec<u8> {
    format!("data: {}\n\n", String::from_utf8_lossy(&json(event))).into_bytes()
}

fn json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("transcription shapes serialise")
}

/// `GET /v1/models`: the configured recognition models.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OpenAiModelList)]
pub struct ModelList {
    object: &'static str,
    data: Vec<Model>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OpenAiModel)]
pub struct Model {
    id: String,
    object: &'static str,
    created: i64,
    owned_by: &'static str,
}

#[utoipa::path(
    tag = "openai",
    summary = "The recognition models (OpenAI's model list)",
    responses((status = 200, description = "The models", body = ModelList))
)]
#[get("/v1/models")]
pub async fn models(app: &State<App>, _who: Access<Read>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: app
            .settings
            .models
            .keys()
            .map(|id| Model {
                id: id.clone(),
                object: "model",
                created: 0,
                owned_by: "trd",
            })
            .collect(),
    })
}

/// OpenAI's error body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OpenAiErrorBody)]
pub struct OpenAiErrorBody {
    error: OpenAiErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OpenAiErrorDetail)]
pub struct OpenAiErrorDetail {
    message: String,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

impl OpenAiErrorBody {
    pub fn new(status: Status, message: String, param: Option<String>) -> Self {
        let (kind, code) = match status.code {
            401 => ("invalid_request_error", Some("invalid_api_key")),
            429 => ("rate_limit_error", Some("rate_limit_exceeded")),
            503 => ("server_error", Some("server_overloaded")),
            400..=499 => ("invalid_request_error", None),
            _ => ("server_error", None),
        };
        OpenAiErrorBody {
            error: OpenAiErrorDetail {
                message,
                kind,
                param,
                code,
            },
        }
    }
}

/// Whether the catcher answers `path` in OpenAI's error shape.
pub fn answers(path: &str) -> bool {
    path.starts_with("/v1/audio/") || path == "/v1/models"
}

/// A TRD error in OpenAI's shape, with the parameter at fault when there is one.
#[derive(Debug)]
pub struct OpenAiError(ApiError, Option<&'static str>);

impl OpenAiError {
    fn invalid(message: impl Into<String>, param: &'static str) -> Self {
        OpenAiError(ApiError::BadRequest(message.into()), Some(param))
    }
}

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        OpenAiError(e, None)
    }
}

impl From<crate::jobs::JobError> for OpenAiError {
    fn from(e: crate::jobs::JobError) -> Self {
        OpenAiError(e.into(), None)
    }
}

impl<'r> Responder<'r, 'static> for OpenAiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let body =
            OpenAiErrorBody::new(self.0.status(), self.0.message(), self.1.map(str::to_owned));
        now::error_response(req, &self.0, body)
    }
}
