//! The OpenAPI 3 document (`GET /trd/openapi.json`) and the Swagger UI (`GET /trd/docs`).
//!
//! Operations are generated from the route handlers themselves (`#[utoipa::path]` sits on each
//! Rocket route, which supplies the method, path and parameters), so a route cannot exist
//! without its entry. The handlers build their JSON with `view.rs`; the shapes below describe
//! that JSON, and the schemathesis test checks every response against them.

use std::collections::BTreeMap;

use serde::Serialize;
use trd_core::domain::{Control, SegmentStatus, Status};
use utoipa::openapi::path::{Paths, PathsBuilder};
use utoipa::{OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// Where the document and the UI are served (the UI's index needs the trailing slash so
/// that its relative asset URLs resolve inside it).
pub const DOCUMENT_PATH: &str = "/trd/openapi.json";
pub const UI_PATH: &str = "/trd/docs/";

/// The contract's error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated.
    status: u16,
    /// The status's reason phrase (`Not Found`).
    reason: String,
    /// What went wrong, in words a person can act on.
    message: String,
}

/// An audio file record (contract section 2).
#[derive(Serialize, ToSchema)]
pub struct Record {
    /// MongoDB ObjectId, 24 lowercase hex characters.
    #[serde(rename = "_id")]
    #[schema(pattern = "^[0-9a-f]{24}$")]
    id: String,
    /// The batch folder, `null` for files directly in the work directory.
    #[schema(required = true)]
    batch: Option<String>,
    filename: String,
    format: String,
    size: i64,
    md5: String,
    /// HTTP date.
    create_date: String,
    /// HTTP date.
    last_update: String,
    control: Control,
    status: Status,
    /// Technical metadata, after normalization (`BitRate`, `Duration`, `RedundantChannel`…).
    #[schema(value_type = Option<Object>)]
    info: Option<serde_json::Value>,
    #[serde(rename = "audioChannels")]
    audio_channels: Option<Vec<AudioChannel>>,
    error: Option<StageError>,
    total_segments: Option<i64>,
    total_speech: Option<f64>,
    warnings: Option<Vec<String>>,
    /// Webhook deliveries (only on `GET /trd/audiofile/{id}`).
    webhooks: Option<Vec<WebhookDelivery>>,
}

#[derive(Serialize, ToSchema)]
pub struct AudioChannel {
    /// Effective bandwidth in Hz, as a string.
    bandwidth: String,
    channel: u32,
    /// Seconds.
    duration: f64,
}

#[derive(Serialize, ToSchema)]
pub struct StageError {
    stage: Status,
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookDelivery {
    url: String,
    /// `FINISHED`, `FAILED`, `RESET` or `DELETED`.
    event: String,
    /// `PENDING`, `DELIVERED` or `GAVE_UP`.
    state: String,
    attempts: u32,
    history: Vec<WebhookAttempt>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookAttempt {
    /// HTTP date.
    at: String,
    outcome: String,
}

/// A record plus its segments ordered by start time (contract section 5).
#[derive(Serialize, ToSchema)]
pub struct TranscriptResult {
    #[serde(flatten)]
    record: Record,
    segments: Vec<SegmentView>,
}

#[derive(Serialize, ToSchema)]
#[schema(title = "Segment")]
pub struct SegmentView {
    channel: u32,
    start: f64,
    end: f64,
    speaker: String,
    /// Confidence 0–100.
    score: u32,
    status: SegmentStatus,
    text: String,
    words: Vec<Word>,
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Word {
    text: String,
    start: f64,
    end: f64,
    score: u32,
}

#[derive(Serialize, ToSchema)]
pub struct SpeechTally {
    seconds: f64,
    segments: u64,
}

#[derive(Serialize, ToSchema)]
pub struct FilesTally {
    bytes: i64,
    files: u64,
}

/// `GET /trd/transcription/status/audiofile/{id}` (contract section 4).
#[derive(Serialize, ToSchema)]
pub struct FileStatus {
    /// Speech by segment recognition status.
    accounted_speech: BTreeMap<String, SpeechTally>,
    total_segments: i64,
    total_speech: f64,
}

/// `GET /trd/transcription/status/batch/{batch}` (contract section 4).
#[derive(Serialize, ToSchema)]
pub struct BatchStatus {
    /// Estimated seconds until the batch is done; 0 when done.
    #[serde(rename = "ETA")]
    eta: f64,
    batch: String,
    accounted_control: BTreeMap<String, FilesTally>,
    accounted_status: BTreeMap<String, FilesTally>,
    accounted_recognition: BTreeMap<String, SpeechTally>,
    normalization: f64,
    diarization: f64,
    recognition: f64,
    progress: f64,
    speech2audio_rate: f64,
    speech2audio_rate_ch: f64,
    total_audio: f64,
    total_audio_ch: f64,
    total_bytes: i64,
    total_files: u64,
    total_segments: i64,
    total_speech: f64,
}

/// `{filename: url}` for the files concerned.
#[derive(Serialize, ToSchema)]
pub struct UrlMap(BTreeMap<String, String>);

/// Optional query parameters of a start, on a file or a batch.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StartQuery {
    /// Recognition model id (one of the configured models; unknown ids are refused).
    #[serde(rename = "lm.uri")]
    lm_uri: Option<String>,
    /// Comma-separated words or phrases expected in the audio.
    #[serde(rename = "hints.words")]
    hints_words: Option<String>,
    /// URL to notify when the file ends (repeatable).
    webhook: Option<Vec<String>>,
    /// `auto`, `speaker`, `channel` or `none`.
    diarization: Option<String>,
    /// Exact number of speakers (1–32).
    speakers: Option<u32>,
    min_speakers: Option<u32>,
    max_speakers: Option<u32>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueryCollection {
    Audiofiles,
    Segments,
}

/// Bytes: a file part of an upload, a ZIP download.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// `POST /trd/audiofile/upload`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// One part per file; the part's file name becomes the record's `filename`.
    files: Vec<Binary>,
    /// The batch folder to store them in (none: the work directory itself).
    batch: Option<String>,
}

/// Optional JSON body of `POST /trd/webhook/validate/{host}/{port}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ValidateRequest {
    /// PEM certificate to trust for HTTPS; empty or absent: plain HTTP.
    crt: Option<String>,
    /// Sent back with every webhook delivery to this host and port.
    token: Option<String>,
}

/// `GET /trd/health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every dependency answers, `unavailable` otherwise.
    status: String,
    mongodb: Dependency,
    rabbitmq: Dependency,
    /// Per stage queue (and its dead-letter queue): messages ready and consumers attached.
    queues: BTreeMap<String, QueueHealth>,
    /// On 503: the contract's error detail, naming what is down.
    error: Option<ErrorDetail>,
}

#[derive(Serialize, ToSchema)]
pub struct Dependency {
    ok: bool,
    /// What failed, when it did.
    error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct QueueHealth {
    messages: u32,
    consumers: u32,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "TRD",
        description = "Folder-batch speech transcription: upload or drop audio files, start a \
            batch, follow its progress, download transcripts. Every path also answers with a \
            trailing slash. Errors are `{\"error\": {\"status\", \"reason\", \"message\"}}`."
    ),
    paths(
        crate::routes::audiofile::get_record,
        crate::routes::audiofile::list_all,
        crate::routes::audiofile::list_batch,
        crate::routes::audiofile::create_file,
        crate::routes::audiofile::create_batch,
        crate::routes::audiofile::delete_file,
        crate::routes::audiofile::delete_batch,
        crate::routes::upload::upload,
        crate::routes::transcription::start_one,
        crate::routes::transcription::start_batch,
        crate::routes::transcription::stop_one,
        crate::routes::transcription::stop_batch,
        crate::routes::transcription::reset_one,
        crate::routes::transcription::reset_batch,
        crate::routes::transcription::status_one,
        crate::routes::transcription::status_batch,
        crate::routes::transcription::result_one,
        crate::routes::transcription::result_batch,
        crate::routes::query::query_collection,
        crate::routes::webhook::whoami,
        crate::routes::webhook::validate_get,
        crate::routes::webhook::validate_post,
        crate::routes::operations::health,
        crate::routes::operations::metrics,
    ),
    components(schemas(QueryCollection)),
    tags(
        (name = "audiofile", description = "Records, uploads, registration and deletion"),
        (name = "transcription", description = "Start, stop, reset, status and results"),
        (name = "query", description = "Raw records as newline-delimited JSON"),
        (name = "webhook", description = "Callback targets"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// The document, with the `/trd` mount point in front of every path (the handlers are
/// declared relative to it).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let mut paths: Paths = PathsBuilder::new().build();
    for (path, item) in std::mem::take(&mut doc.paths.paths) {
        paths.paths.insert(format!("/trd{path}"), item);
    }
    doc.paths = paths;
    doc
}

/// The routes serving the document and the UI (assets compiled into the binary).
pub fn routes() -> Vec<rocket::Route> {
    SwaggerUi::new(format!("{UI_PATH}<_..>"))
        .url(DOCUMENT_PATH, document())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_under_trd_and_operations_have_responses() {
        let doc = document();
        assert!(doc.paths.paths.len() >= 20);
        for (path, item) in &doc.paths.paths {
            assert!(path.starts_with("/trd/"), "{path}");
            for op in [&item.get, &item.post, &item.delete].into_iter().flatten() {
                assert!(!op.responses.responses.is_empty(), "{path}");
            }
        }
    }
}
