//! The TRD contract's JSON shapes (`../shared/reference/trd-api.md`), each one Rust type that
//! the handlers return and the OpenAPI document describes: the compiler keeps the two in step.
//! Every shape is built from the domain model (`From<&AudioFile>`…), never assembled by hand.

use std::collections::BTreeMap;

use mongodb::bson::DateTime;
use serde::Serialize;
use trd_core::domain::{
    AudioChannel, AudioFile, AudioInfo, Control, Segment, SegmentStatus, StageError, Status, Word,
};
use trd_core::store::webhooks::{Attempt, Delivery, DeliveryState, Event};
use utoipa::ToSchema;

/// `Fri, 08 Mar 2019 18:02:16 GMT`: how the contract writes every date.
pub fn http_date(date: DateTime) -> String {
    let dt = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(date.timestamp_millis())
        .unwrap_or_default();
    dt.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// An audio file record (contract section 2). Fields in the order the service has always
/// written them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Record)]
pub struct RecordView {
    /// MongoDB ObjectId, 24 lowercase hex characters.
    #[serde(rename = "_id")]
    #[schema(pattern = "^[0-9a-f]{24}$")]
    pub id: String,
    /// Per channel, after normalization.
    #[serde(rename = "audioChannels", skip_serializing_if = "Option::is_none")]
    pub audio_channels: Option<Vec<AudioChannel>>,
    /// The batch folder, `null` for files directly in the work directory.
    #[schema(required = true)]
    pub batch: Option<String>,
    pub control: Control,
    /// HTTP date.
    pub create_date: String,
    /// Why the file FAILED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StageError>,
    pub filename: String,
    pub format: String,
    /// Technical metadata, after normalization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<AudioInfo>,
    /// HTTP date.
    pub last_update: String,
    pub md5: String,
    pub size: i64,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_segments: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_speech: Option<f64>,
    /// Hints the model cannot represent, a file damaged at the end…
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Webhook deliveries (only on `GET /trd/audiofile/{id}`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookDeliveryView>,
}

impl From<&AudioFile> for RecordView {
    fn from(r: &AudioFile) -> Self {
        RecordView {
            id: r.id.to_hex(),
            audio_channels: r.audio_channels.clone(),
            batch: r.batch.clone(),
            control: r.control,
            create_date: http_date(r.create_date),
            error: r.error.clone(),
            filename: r.filename.clone(),
            format: r.format.clone(),
            info: r.info.clone(),
            last_update: http_date(r.last_update),
            md5: r.md5.clone(),
            size: r.size,
            status: r.status,
            total_segments: r.total_segments,
            total_speech: r.total_speech,
            warnings: r.warnings.clone(),
            webhooks: Vec::new(),
        }
    }
}

impl RecordView {
    /// The record with its webhook deliveries' outcomes.
    pub fn with_deliveries(mut self, deliveries: &[Delivery]) -> Self {
        self.webhooks = deliveries.iter().map(WebhookDeliveryView::from).collect();
        self
    }
}

/// One webhook delivery's outcome, as shown on the record.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct WebhookDeliveryView {
    pub url: String,
    #[schema(value_type = String, example = "FINISHED")]
    pub event: Event,
    #[schema(value_type = String, example = "DELIVERED")]
    pub state: DeliveryState,
    pub attempts: u32,
    pub history: Vec<WebhookAttemptView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = WebhookAttempt)]
pub struct WebhookAttemptView {
    /// HTTP date.
    pub at: String,
    pub outcome: String,
}

impl From<&Attempt> for WebhookAttemptView {
    fn from(a: &Attempt) -> Self {
        WebhookAttemptView {
            at: http_date(a.at),
            outcome: a.outcome.clone(),
        }
    }
}

impl From<&Delivery> for WebhookDeliveryView {
    fn from(d: &Delivery) -> Self {
        WebhookDeliveryView {
            url: d.url.clone(),
            event: d.event,
            state: d.state,
            attempts: d.attempts,
            history: d.history.iter().map(WebhookAttemptView::from).collect(),
        }
    }
}

/// A record plus its segments ordered by start time (contract section 5).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TranscriptResult {
    #[serde(flatten)]
    pub record: RecordView,
    pub segments: Vec<SegmentView>,
}

impl TranscriptResult {
    pub fn new(record: &AudioFile, segments: &[Segment]) -> Self {
        TranscriptResult {
            record: RecordView::from(record),
            segments: segments.iter().map(SegmentView::from).collect(),
        }
    }
}

/// One speech segment of a result.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Segment)]
pub struct SegmentView {
    pub channel: u32,
    pub start: f64,
    pub end: f64,
    /// The speaker within the file (and channel).
    pub speaker: String,
    /// Confidence 0–100.
    pub score: u32,
    pub status: SegmentStatus,
    pub text: String,
    pub words: Vec<Word>,
    /// Why the segment was not recognized, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<&Segment> for SegmentView {
    fn from(s: &Segment) -> Self {
        SegmentView {
            channel: s.channel,
            start: s.start,
            end: s.end,
            speaker: s.speaker.clone(),
            score: s.score,
            status: s.status,
            text: s.text.clone(),
            words: s.words.clone(),
            reason: s.reason.clone(),
        }
    }
}

/// Speech seconds and segments with one recognition status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct SpeechTally {
    pub seconds: f64,
    pub segments: u64,
}

/// Files and their bytes with one control or status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct FilesTally {
    pub bytes: i64,
    pub files: u64,
}

/// `GET /trd/transcription/status/audiofile/{id}` (contract section 4).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FileStatus {
    /// Speech by segment recognition status (`RECOGNIZED`, `NO_MATCH`, `PROCESSING`…).
    pub accounted_speech: BTreeMap<String, SpeechTally>,
    pub total_segments: i64,
    pub total_speech: f64,
}

/// `GET /trd/transcription/status/batch/{batch}` (contract section 4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct BatchStatus {
    /// Estimated seconds until the batch is done; 0 when done.
    #[serde(rename = "ETA")]
    pub eta: f64,
    pub batch: String,
    /// Files by control (`FINISHED`…).
    pub accounted_control: BTreeMap<String, FilesTally>,
    /// Files by status (`RECOGNIZED`…).
    pub accounted_status: BTreeMap<String, FilesTally>,
    /// Speech by segment recognition status.
    pub accounted_recognition: BTreeMap<String, SpeechTally>,
    /// Fraction (0–1) of the batch's files past normalization.
    pub normalization: f64,
    pub diarization: f64,
    pub recognition: f64,
    /// Overall fraction of the batch's work done.
    pub progress: f64,
    pub speech2audio_rate: f64,
    pub speech2audio_rate_ch: f64,
    pub total_audio: f64,
    pub total_audio_ch: f64,
    pub total_bytes: i64,
    pub total_files: u64,
    pub total_segments: i64,
    pub total_speech: f64,
}

/// `{filename: url}` for the files concerned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct UrlMap(pub BTreeMap<String, String>);

/// Record URLs as the contract hands them back (`http://HOST:PORT/trd/audiofile/<id>`), on
/// the host and port the client addressed.
#[derive(Debug, Clone)]
pub struct RecordUrls {
    base: String,
}

impl RecordUrls {
    pub fn new(base: impl Into<String>) -> Self {
        RecordUrls { base: base.into() }
    }

    /// `http://host:port`, as the client addressed the service.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn of(&self, id: impl std::fmt::Display) -> String {
        format!("{}/trd/audiofile/{id}", self.base)
    }

    /// `{filename: url}` for these records.
    pub fn map<'a>(&self, records: impl IntoIterator<Item = &'a AudioFile>) -> UrlMap {
        UrlMap(
            records
                .into_iter()
                .map(|r| (r.filename.clone(), self.of(r.id)))
                .collect(),
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_http_dates() {
        let d = DateTime::from_millis(1_552_068_136_000);
        assert_eq!(http_date(d), "Fri, 08 Mar 2019 18:02:16 GMT");
    }
}
