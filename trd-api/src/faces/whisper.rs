//! whisper-asr-webservice's API, which Speakr, Home Assistant add-ons and many scripts call:
//! `POST /asr` (multipart `audio_file`; `output` txt, vtt, srt, tsv or json, streamed as the
//! workers recognize) and `POST /detect-language`. Like the original, every answer is
//! `text/plain` with `Asr-Engine` and a `Content-Disposition` naming the output file; errors
//! are FastAPI's `{"detail": …}`.
//!
//! `/detect-language` cannot listen: TRD has no language identification. It answers with the
//! language the configured models serve; with models for several languages, with the
//! default model's, and says so in `note` (and `confidence` is null either way).

use futures::StreamExt;
use rocket::form::{Errors, Form};
use rocket::fs::TempFile;
use rocket::http::{ContentType, Header};
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{post, FromForm, Request, State};
use serde::Serialize;
use trd_core::domain::{AudioFile, Segment, StartOptions};
use trd_export::{plain, whisper};
use utoipa::ToSchema;

use super::now::{self, Export, PacedAudio, Streamed, Whole};
use crate::app::App;
use crate::error::ApiError;
use crate::identity::guard::{Access, Operate};
use crate::identity::paced::Paced;
use crate::jobs::NowRequest;
use crate::shapes::Binary;

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![asr, detect_language]
}

/// The engine name the answers carry (`Asr-Engine`).
const ENGINE: &str = "trd";

/// `POST /asr`'s body.
#[derive(FromForm, ToSchema)]
#[schema(as = WhisperAsrForm)]
pub struct AsrForm<'r> {
    #[schema(value_type = Option<Binary>)]
    audio_file: Option<TempFile<'r>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Txt,
    Vtt,
    Srt,
    Tsv,
    Json,
}

impl Output {
    fn parse(name: Option<&str>) -> Result<Self, WhisperError> {
        Ok(match name.unwrap_or("txt") {
            "txt" => Self::Txt,
            "vtt" => Self::Vtt,
            "srt" => Self::Srt,
            "tsv" => Self::Tsv,
            "json" => Self::Json,
            other => {
                return Err(WhisperError::bad(format!(
                    "output '{other}' is not one of txt, vtt, srt, tsv, json"
                )))
            }
        })
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Txt => "txt",
            Self::Vtt => "vtt",
            Self::Srt => "srt",
            Self::Tsv => "tsv",
            Self::Json => "json",
        }
    }
}

#[utoipa::path(
    tag = "whisper",
    summary = "Transcribe audio (whisper-asr-webservice's API; streamed as the workers recognize it)",
    params(
        ("output" = Option<String>, Query, description = "txt (default), vtt, srt, tsv or json"),
        ("language" = Option<String>, Query, description = "The model serving this language"),
        ("initial_prompt" = Option<String>, Query, description = "Words to expect (hints)"),
        ("word_timestamps" = Option<bool>, Query, description = "json: each segment's words"),
        ("diarize" = Option<bool>, Query, description = "Tell speakers apart (json: `speaker`)"),
        ("min_speakers" = Option<u32>, Query, description = "With diarize"),
        ("max_speakers" = Option<u32>, Query, description = "With diarize"),
        ("task" = Option<String>, Query, description = "`transcribe` (translation is not offered)"),
        ("encode" = Option<bool>, Query, description = "Accepted; audio is always decoded"),
        ("vad_filter" = Option<bool>, Query, description = "Accepted; TRD always segments by voice activity"),
        ("keep" = Option<bool>, Query, description = "Keep the job and list it like any file"),
        ("batch" = Option<String>, Query, description = "The batch a kept job goes to"),
    ),
    request_body(content = AsrForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "The transcript", body = String, content_type = "text/plain"))
)]
#[allow(clippy::too_many_arguments)]
#[post(
    "/asr?<output>&<language>&<initial_prompt>&<word_timestamps>&<diarize>&<min_speakers>&<max_speakers>&<task>&<encode>&<vad_filter>&<keep>&<batch>",
    data = "<form>"
)]
pub async fn asr(
    app: &State<App>,
    who: Access<Operate>,
    output: Option<&str>,
    language: Option<&str>,
    initial_prompt: Option<&str>,
    word_timestamps: Option<bool>,
    diarize: Option<bool>,
    min_speakers: Option<u32>,
    max_speakers: Option<u32>,
    task: Option<&str>,
    encode: Option<bool>,
    vad_filter: Option<bool>,
    keep: Option<bool>,
    batch: Option<&str>,
    form: PacedAudio<Result<Form<AsrForm<'_>>, Errors<'_>>>,
) -> Result<Streamed<futures::stream::BoxStream<'static, Vec<u8>>>, WhisperError> {
    let Paced { body: form, slot } = form;
    let _ = (encode, vad_filter);
    let mut form = form.map_err(|e| WhisperError(now::form_error(app, e)))?;
    let output = Output::parse(output)?;
    if task.is_some_and(|t| t != "transcribe") {
        return Err(WhisperError::bad(
            "only task=transcribe is offered here (TRD does not translate)",
        ));
    }
    let model = match language.map(str::trim).filter(|l| !l.is_empty()) {
        Some(language) => Some(app.jobs.model_for_language(language)?),
        None => None,
    };
    let language = model
        .clone()
        .unwrap_or_else(|| app.settings.default_model.clone());
    let language = crate::jobs::language_of(&language).to_owned();
    let diarize = diarize.unwrap_or(false);
    let Some(part) = form.audio_file.as_mut() else {
        return Err(WhisperError::bad("the request has no `audio_file`"));
    };
    let (audio, name) = now::spooled(app, part).await?;
    let request = NowRequest {
        location: now::location(&who, now::kept_batch(keep, batch)?, name.as_deref())?,
        audio,
        options: StartOptions {
            model,
            hints: initial_prompt.map(now::prompt_hints).unwrap_or_default(),
            diarization: Some(if diarize { "speaker" } else { "none" }.to_owned()),
            min_speakers: min_speakers.filter(|_| diarize),
            max_speakers: max_speakers.filter(|_| diarize),
            ..StartOptions::default()
        },
        keep: keep.unwrap_or(false),
    };
    let (live, decoded) = now::run(app, slot, request).await?;
    let with_words = word_timestamps.unwrap_or(false);
    let body = match output {
        Output::Txt => now::document_stream(live, decoded, |r: &AudioFile, s: &[Segment], done| {
            plain::text(r, s, done).into_bytes()
        })
        .boxed(),
        Output::Tsv => now::document_stream(live, decoded, |_: &AudioFile, s: &[Segment], _| {
            whisper::tsv(s).into_bytes()
        })
        .boxed(),
        Output::Vtt | Output::Srt => {
            let format = trd_export::ExportFormat::parse(output.extension(), Default::default())
                .expect("built-in format names parse");
            now::document_stream(live, decoded, Export(format)).boxed()
        }
        Output::Json => now::document_stream(
            live,
            decoded,
            Whole(move |r: &AudioFile, s: &[Segment]| {
                serde_json::to_vec(&whisper::result(r, s, &language, with_words, diarize))
                    .expect("whisper shapes serialise")
            }),
        )
        .boxed(),
    };
    let stem = name.unwrap_or_else(|| "audio".to_owned());
    Ok(Streamed {
        content_type: ContentType::Plain,
        headers: vec![
            Header::new("Asr-Engine", ENGINE),
            Header::new(
                "Content-Disposition",
                format!(
                    "attachment; filename=\"{}.{}\"",
                    stem.replace(['"', '\\', '\r', '\n'], "_"),
                    output.extension()
                ),
            ),
        ],
        body,
    })
}

/// `POST /detect-language`'s answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WhisperDetectedLanguage)]
pub struct DetectedLanguage {
    detected_language: String,
    language_code: String,
    /// Always null: the language is the configuration's, not a detection.
    confidence: Option<f64>,
    /// How the answer was reached.
    note: String,
}

#[utoipa::path(
    tag = "whisper",
    summary = "The language the service hears (from its models; TRD does not identify languages)",
    request_body(content = AsrForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "The language", body = DetectedLanguage))
)]
#[post("/detect-language", data = "<form>")]
pub async fn detect_language(
    app: &State<App>,
    _who: Access<Operate>,
    form: Paced<Result<Form<AsrForm<'_>>, Errors<'_>>>,
) -> Result<Json<DetectedLanguage>, WhisperError> {
    let form = form
        .body
        .map_err(|e| WhisperError(now::form_error(app, e)))?;
    let Some(audio) = form.audio_file.as_ref() else {
        return Err(WhisperError::bad("the request has no `audio_file`"));
    };
    if audio.len() == 0 {
        return Err(WhisperError::bad("the audio is empty"));
    }
    let languages = app.jobs.languages();
    let default = &app.settings.default_model;
    let code = crate::jobs::language_of(default).to_owned();
    let note = if languages.len() == 1 {
        format!(
            "this service recognizes only '{code}', so every recording is taken to be in it; \
             no detection was made"
        )
    } else {
        format!(
            "this service does not identify languages; '{code}' is its default among {}",
            languages.join(", ")
        )
    };
    Ok(Json(DetectedLanguage {
        detected_language: language_name(&code).unwrap_or(&code).to_owned(),
        language_code: code,
        confidence: None,
        note,
    }))
}

/// Whisper's names for the languages it names by code (the common ones).
fn language_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "en" => "english",
        "ko" => "korean",
        "de" => "german",
        "fr" => "french",
        "es" => "spanish",
        "it" => "italian",
        "pt" => "portuguese",
        "ru" => "russian",
        "cs" => "czech",
        "sk" => "slovak",
        "pl" => "polish",
        "nl" => "dutch",
        "ja" => "japanese",
        "zh" => "chinese",
        "uk" => "ukrainian",
        _ => return None,
    })
}

/// Whether the catcher answers `path` in this face's error shape.
pub fn answers(path: &str) -> bool {
    path == "/asr" || path == "/detect-language"
}

/// FastAPI's error body, as the original service answers.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WhisperErrorBody)]
pub struct WhisperErrorBody {
    pub detail: String,
}

/// A TRD error in the original service's shape.
#[derive(Debug)]
pub struct WhisperError(ApiError);

impl WhisperError {
    fn bad(message: impl Into<String>) -> Self {
        WhisperError(ApiError::BadRequest(message.into()))
    }
}

impl From<ApiError> for WhisperError {
    fn from(e: ApiError) -> Self {
        WhisperError(e)
    }
}

impl From<crate::jobs::JobError> for WhisperError {
    fn from(e: crate::jobs::JobError) -> Self {
        WhisperError(e.into())
    }
}

impl<'r> Responder<'r, 'static> for WhisperError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let body = WhisperErrorBody {
            detail: self.0.message(),
        };
        now::error_response(req, &self.0, body)
    }
}
