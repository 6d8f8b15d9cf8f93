//! The DeepSpeech REST API's HTTP recognition (`../shared/seeds/000_…`), in both layouts:
//! `POST /api/stt/http` and `POST /api/v1/stt/http`, `Authorization: Bearer <JWT>`, multipart
//! `audio` and every other field a hot word whose value is a boost (`paris=10`): a positive
//! boost makes the word a hint, a negative one a word to avoid in the n-best rescoring. The
//! answer is `{"message": <text>, "time": <seconds>}`; errors are the server's
//! `{"exception", "status", "error"}`.

use std::time::Instant;

use futures::StreamExt;
use rocket::form::{self, DataField, Form, FromForm, FromFormField, ValueField};
use rocket::fs::TempFile;
use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder};
use rocket::{post, Request, State};
use serde::Serialize;
use trd_core::domain::{AudioFile, Segment, StartOptions};
use utoipa::ToSchema;

use crate::app::App;
use crate::error::ApiError;
use crate::faces::now::{self, PacedAudio, Streamed, Whole};
use crate::identity::guard::{Access, Operate};
use crate::identity::paced::Paced;
use crate::jobs::{Audio, NowRequest};
use crate::shapes::Binary;

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![stt, stt_v1]
}

/// The form: the `audio` file, and any other field as a hot word with its boost.
#[derive(ToSchema)]
#[schema(as = DeepSpeechSttForm)]
pub struct SttForm<'r> {
    #[schema(value_type = Option<Binary>)]
    audio: Option<TempFile<'r>>,
    /// `word=boost` pairs, as sent.
    #[schema(ignore)]
    hot_words: Vec<(String, String)>,
}

pub struct SttContext<'r> {
    audio: Option<TempFile<'r>>,
    hot_words: Vec<(String, String)>,
    errors: form::Errors<'r>,
}

#[rocket::async_trait]
impl<'r> FromForm<'r> for SttForm<'r> {
    type Context = SttContext<'r>;

    fn init(_opts: form::Options) -> Self::Context {
        SttContext {
            audio: None,
            hot_words: Vec::new(),
            errors: form::Errors::new(),
        }
    }

    fn push_value(ctxt: &mut Self::Context, field: ValueField<'r>) {
        ctxt.hot_words
            .push((field.name.source().to_string(), field.value.to_owned()));
    }

    async fn push_data(ctxt: &mut Self::Context, field: DataField<'r, '_>) {
        if field.name.source() != "audio" {
            return;
        }
        match TempFile::from_data(field).await {
            Ok(file) => ctxt.audio = Some(file),
            Err(errors) => ctxt.errors.extend(errors),
        }
    }

    fn finalize(ctxt: Self::Context) -> form::Result<'r, Self> {
        if !ctxt.errors.is_empty() {
            return Err(ctxt.errors);
        }
        Ok(SttForm {
            audio: ctxt.audio,
            hot_words: ctxt.hot_words,
        })
    }
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeepSpeechTranscript)]
pub struct Transcript {
    pub message: String,
    /// Seconds the request took.
    pub time: f64,
}

impl Transcript {
    /// The text of a request that began at `started`.
    pub fn since(started: Instant, message: String) -> Self {
        Transcript {
            message,
            time: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }
}

#[utoipa::path(
    tag = "deepspeech",
    summary = "Transcribe audio (the original layout)",
    request_body(content = SttForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "The text", body = Transcript))
)]
#[post("/api/stt/http", data = "<form>")]
pub async fn stt(
    app: &State<App>,
    who: Access<Operate>,
    form: PacedAudio<Result<Form<SttForm<'_>>, form::Errors<'_>>>,
) -> Result<Streamed<futures::stream::BoxStream<'static, Vec<u8>>>, DsError> {
    transcribe(app, &who, form).await
}

#[utoipa::path(
    tag = "deepspeech",
    summary = "Transcribe audio (the current layout)",
    request_body(content = SttForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "The text", body = Transcript))
)]
#[post("/api/v1/stt/http", data = "<form>")]
pub async fn stt_v1(
    app: &State<App>,
    who: Access<Operate>,
    form: PacedAudio<Result<Form<SttForm<'_>>, form::Errors<'_>>>,
) -> Result<Streamed<futures::stream::BoxStream<'static, Vec<u8>>>, DsError> {
    transcribe(app, &who, form).await
}

async fn transcribe(
    app: &App,
    who: &crate::identity::Principal,
    form: PacedAudio<Result<Form<SttForm<'_>>, form::Errors<'_>>>,
) -> Result<Streamed<futures::stream::BoxStream<'static, Vec<u8>>>, DsError> {
    let started = Instant::now();
    let Paced { body: form, slot } = form;
    let mut form = form.map_err(|e| DsError(now::form_error(app, e)))?;
    let Some(part) = form.audio.as_mut() else {
        return Err(DsError(ApiError::BadRequest("Audio not provided".into())));
    };
    let (audio, name) = now::spooled(app, part).await?;
    let request = request(who, &form.hot_words, audio, name.as_deref())?;
    let (live, decoded) = now::run(app, slot, request).await?;
    let body = now::document_stream(
        live,
        decoded,
        Whole(move |_: &AudioFile, s: &[Segment]| {
            serde_json::to_vec(&Transcript::since(started, trd_export::openai::text(s)))
                .expect("the transcript serialises")
        }),
    )
    .boxed();
    Ok(Streamed {
        content_type: ContentType::JSON,
        headers: Vec::new(),
        body,
    })
}

/// A recognize-now request for `audio` with the hot words as hints and words to avoid.
pub fn request(
    who: &crate::identity::Principal,
    hot_words: &[(String, String)],
    audio: Audio,
    name: Option<&str>,
) -> Result<NowRequest, ApiError> {
    let (hints, avoided) = hot_words_split(hot_words)?;
    Ok(NowRequest {
        location: now::location(who, None, name)?,
        audio,
        options: StartOptions {
            hints,
            avoided_words: avoided,
            diarization: Some("none".to_owned()),
            ..StartOptions::default()
        },
        keep: false,
    })
}

/// Hot words split by the sign of their boost: hints and words to avoid. A boost that is
/// not a number is refused.
fn hot_words_split(fields: &[(String, String)]) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let (mut hints, mut avoided) = (Vec::new(), Vec::new());
    for (word, boost) in fields {
        let word = word.trim();
        if word.is_empty() {
            continue;
        }
        let boost: f64 = boost.trim().parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "the hot word '{word}' needs a number as its boost, not '{boost}'"
            ))
        })?;
        if boost > 0.0 {
            hints.push(word.to_lowercase());
        } else if boost < 0.0 {
            avoided.push(word.to_lowercase());
        }
    }
    Ok((hints, avoided))
}

/// The server's error body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeepSpeechErrorBody)]
pub struct DsErrorBody {
    pub exception: String,
    pub status: u16,
    pub error: String,
}

impl DsErrorBody {
    pub fn new(status: Status, message: String) -> Self {
        DsErrorBody {
            exception: message,
            status: status.code,
            error: status.reason().unwrap_or("error").to_lowercase(),
        }
    }
}

/// Whether the catcher answers `path` in this face's error shape.
pub fn answers(path: &str) -> bool {
    path == "/api/stt/http" || path == "/api/v1/stt/http"
}

#[derive(Debug)]
pub struct DsError(ApiError);

impl From<ApiError> for DsError {
    fn from(e: ApiError) -> Self {
        DsError(e)
    }
}

impl<'r> Responder<'r, 'static> for DsError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let body = DsErrorBody::new(self.0.status(), self.0.message());
        now::error_response(req, &self.0, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boosts_split_hot_words_and_numbers_are_required() {
        let fields = vec![
            ("Paris".to_owned(), "10".to_owned()),
            ("power".to_owned(), "-1000".to_owned()),
            ("neutral".to_owned(), "0".to_owned()),
        ];
        let (hints, avoided) = hot_words_split(&fields).unwrap();
        assert_eq!(hints, ["paris"]);
        assert_eq!(avoided, ["power"]);
        assert!(hot_words_split(&[("x".into(), "lots".into())]).is_err());
    }
}
