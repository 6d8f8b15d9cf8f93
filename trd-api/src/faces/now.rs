//! What every recognize-now face shares (OpenAI, whisper-asr-webservice, UWebASR, DeepSpeech,
//! Nanotrix, `POST /trd/recognize`): the admission guard, where a request's audio is stored,
//! and the response body that grows with the job.
//!
//! A face parses its request into a [`NowRequest`] (through [`location`]), starts it with
//! `Jobs::recognize_now`, waits for [`LiveJob::decoded`] (so audio that cannot be read gets an
//! error status before anything is sent) and answers with a [`Streamed`] body built by
//! [`document_stream`] from its format's [`Document`].

use futures::{Stream, StreamExt};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, stream::ByteStream, Responder, Response};
use trd_core::domain::{AudioFile, BatchName, FileLocation, Segment};

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::identity::paced::{Admit, Paced};
use crate::identity::refusal::{self, Refusal};
use crate::identity::secrets::sha256_hex;
use crate::identity::Principal;
use crate::jobs::{Admission, Audio, JobError, LiveJob, NowRequest};

/// A slot among `interactive_in_flight`; without one the request is refused at once with 503
/// and `Retry-After`. A request that carries its audio takes it through [`Paced`], once the
/// audio's first bytes are in (so clients that trickle cannot hold every slot); one that names
/// its audio by URL, or a socket, takes it as a request guard.
pub struct Slot(pub Admission);

/// A recognize-now request's audio, read at a pace, under a recognition slot.
pub type PacedAudio<T> = Paced<T, Slot>;

impl Admit for Slot {
    fn admit(app: &App) -> Result<Self, Refusal> {
        match app.jobs.admit() {
            Ok(admission) => Ok(Slot(admission)),
            Err(e @ JobError::Busy { retry_after }) => {
                Err(Refusal::busy(e.to_string(), retry_after))
            }
            Err(e) => Err(Refusal::busy(e.to_string(), 1)),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Slot {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let Some(app) = req.rocket().state::<App>() else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        match Slot::admit(app) {
            Ok(slot) => Outcome::Success(slot),
            Err(refusal) => {
                let status = refusal.status;
                refusal::keep(req, refusal);
                Outcome::Error((status, ()))
            }
        }
    }
}

/// Where a request's audio is stored: a kept job in the caller's `batch` (listed like any
/// file), a temporary one in the caller's private batch (never listed, deleted after the
/// response). The name is fresh, keeping the client's extension (the decoder's hint).
pub fn location(
    principal: &Principal,
    keep: Option<BatchName>,
    client_name: Option<&str>,
) -> Result<FileLocation, crate::error::ApiError> {
    let batch = match keep {
        Some(batch) => {
            principal.check_destination(Some(&batch))?;
            batch
        }
        None => {
            let digest = sha256_hex(&principal.label);
            BatchName::private(&format!("now-{}", &digest[..24]))
                .expect("a hex digest is a valid private batch tag")
        }
    };
    Ok(FileLocation {
        batch: Some(batch),
        filename: crate::jobs::fresh_name(client_name),
    })
}

/// The batch a kept job goes to when the caller names none.
pub const KEPT_BATCH: &str = "recognized";

/// The batch for `keep=true` (`batch` or [`KEPT_BATCH`]), or `None` for a temporary job.
pub fn kept_batch(
    keep: Option<bool>,
    batch: Option<&str>,
) -> Result<Option<BatchName>, crate::error::ApiError> {
    if !keep.unwrap_or(false) {
        return Ok(None);
    }
    Ok(Some(BatchName::parse(batch.unwrap_or(KEPT_BATCH))?))
}

/// An uploaded file part, moved into the spool: the job's audio and the client's name for it.
pub async fn spooled(
    app: &App,
    part: &mut rocket::fs::TempFile<'_>,
) -> ApiResult<(Audio, Option<String>)> {
    let name = part
        .raw_name()
        .map(|n| n.dangerous_unsafe_unsanitized_raw().as_str().to_owned());
    Ok((Audio::Spooled(spool_part(app, part).await?), name))
}

/// Moves an uploaded part into the spool; its path there.
pub async fn spool_part(
    app: &App,
    part: &mut rocket::fs::TempFile<'_>,
) -> ApiResult<std::path::PathBuf> {
    let path = app.jobs.spool_path();
    // A small part Rocket kept in memory has no path. `move_copy_to` would write it and then
    // delete what it wrote (it removes the "temporary" file it just created), so such a part
    // is written with `persist_to`, which for a part in memory only writes it.
    let stored = if part.path().is_none() {
        part.persist_to(&path).await
    } else {
        part.move_copy_to(&path).await
    };
    stored.map_err(|e| ApiError::internal("storing the upload", e))?;
    Ok(path)
}

/// A form that did not parse: 413 over the size limit, 400 otherwise.
pub fn form_error(app: &App, errors: rocket::form::Errors<'_>) -> ApiError {
    // Only the body's size makes a 413; Rocket also says 413 for a malformed empty body.
    let too_large = errors.iter().any(|e| {
        e.status().code == 413 && matches!(e.kind, rocket::form::error::ErrorKind::Multipart(_))
    });
    if too_large {
        ApiError::PayloadTooLarge(format!(
            "the upload exceeds the size limit of {} bytes (setting `upload_limit_bytes`)",
            app.settings.upload_limit_bytes
        ))
    } else {
        ApiError::BadRequest(format!("malformed request: {errors}"))
    }
}

/// Starts the request and waits until its audio is decoded: a file that cannot be read is an
/// error status here, before any of the response is sent.
pub async fn run(app: &App, slot: Slot, request: NowRequest) -> ApiResult<(LiveJob, AudioFile)> {
    let live = app.jobs.recognize_now(slot.0, request).await?;
    let decoded = live.decoded().await?;
    Ok((live, decoded))
}

/// The model a request names: a configured model id as it is, else a language a model
/// serves; `None` (the default model) for names that are neither, such as `whisper-1`.
pub fn model_named(app: &App, name: Option<&str>) -> Option<String> {
    let name = name.map(str::trim).filter(|n| !n.is_empty())?;
    if app.settings.models.contains_key(name) {
        return Some(name.to_owned());
    }
    app.jobs.model_for_language(name).ok()
}

/// A prompt's words (OpenAI `prompt`, whisper `initial_prompt`), each a hint: punctuation
/// stripped (the recognizer's words have none), lower case, at most 100.
pub fn prompt_hints(prompt: &str) -> Vec<String> {
    let mut words: Vec<String> = prompt
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    words.dedup();
    words.truncate(100);
    words
}

/// A transcript document written as the job's result grows.
pub trait Document: Send + 'static {
    /// The document as far as `segments` go (the recognized segments no unrecognized one
    /// precedes); with `done`, the job has ended and `segments` are all of them. A document
    /// that streams writes each version as an extension of the one before; one that cannot
    /// (XML, a JSON object) streams nothing until `done`.
    fn render(&mut self, record: &AudioFile, segments: &[Segment], done: bool) -> Vec<u8>;

    /// Whether partial versions are worth sending.
    fn streams(&self) -> bool {
        true
    }
}

impl<F> Document for F
where
    F: FnMut(&AudioFile, &[Segment], bool) -> Vec<u8> + Send + 'static,
{
    fn render(&mut self, record: &AudioFile, segments: &[Segment], done: bool) -> Vec<u8> {
        self(record, segments, done)
    }
}

/// A document that is only written once the job has ended.
pub struct Whole<F>(pub F);

impl<F> Document for Whole<F>
where
    F: FnMut(&AudioFile, &[Segment]) -> Vec<u8> + Send + 'static,
{
    fn render(&mut self, record: &AudioFile, segments: &[Segment], _done: bool) -> Vec<u8> {
        (self.0)(record, segments)
    }

    fn streams(&self) -> bool {
        false
    }
}

/// One of TRD's export formats (`trd_export::render`) as a document: it grows with the job,
/// except Transcriber XML, which is written once at the end.
pub struct Export(pub trd_export::ExportFormat);

impl Document for Export {
    fn render(&mut self, record: &AudioFile, segments: &[Segment], _done: bool) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to memory cannot fail.
        let _ = trd_export::render(&self.0, record, segments, &mut out);
        out
    }

    fn streams(&self) -> bool {
        !matches!(
            self.0,
            trd_export::ExportFormat::Trs | trd_export::ExportFormat::ExtendedTrs
        )
    }
}

/// The bytes of `document` as the job grows: the opening at once (the client sees the
/// response start), then what each update adds. The stream owns the job: when the client
/// goes away the server drops the stream, and with it the job.
pub fn document_stream(
    live: LiveJob,
    decoded: AudioFile,
    mut document: impl Document,
) -> impl Stream<Item = Vec<u8>> + Send {
    let opening = if document.streams() {
        document.render(&decoded, &[], false)
    } else {
        Vec::new()
    };
    let mut sent = opening.clone();
    let updates = live.progress().filter_map(move |update| {
        let chunk = match update {
            Ok(progress) if progress.is_final() || document.streams() => {
                let version = document.render(
                    &progress.record,
                    &progress.segments,
                    progress.is_final(),
                );
                if version.starts_with(&sent) {
                    let fresh = version[sent.len()..].to_vec();
                    sent = version;
                    Some(fresh)
                } else {
                    // Never the case for the formats that stream; a document that rewrote what
                    // was sent cannot take it back, so the rest is left out rather than garbled.
                    tracing::error!(
                        "a streamed document changed what it had sent; the rest is left out"
                    );
                    None
                }
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %trd_core::logging::ErrorChain(&e), "a streamed job ended early");
                None
            }
        };
        std::future::ready(chunk.filter(|c| !c.is_empty()))
    });
    futures::stream::once(std::future::ready(opening))
        .filter(|c| std::future::ready(!c.is_empty()))
        .chain(updates)
}

/// A response whose body is a stream of bytes, with its content type and extra headers.
pub struct Streamed<S> {
    pub content_type: ContentType,
    pub headers: Vec<Header<'static>>,
    pub body: S,
}

impl<'r, S> Responder<'r, 'r> for Streamed<S>
where
    S: Stream<Item = Vec<u8>> + Send + 'static,
{
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'r> {
        let mut response = Response::build_from(ByteStream(self.body).respond_to(request)?);
        response.header(self.content_type);
        for header in self.headers {
            response.header(header);
        }
        response.ok()
    }
}

/// Answers `error` with a face's own error `body`: the error's status and headers
/// (`Retry-After`), and a 5xx logged with its causes.
pub fn error_response<B: serde::Serialize>(
    req: &Request<'_>,
    error: &ApiError,
    body: B,
) -> response::Result<'static> {
    let status = error.status();
    if status.code >= 500 {
        tracing::error!(uri = %req.uri(), error = %error.message(), "request failed");
    }
    let mut response = Response::build_from(rocket::serde::json::Json(body).respond_to(req)?);
    for header in error.headers() {
        response.header(header);
    }
    response.status(status).ok()
}
