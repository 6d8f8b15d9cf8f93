//! What MongoDB stores about a file and its speech segments.

use mongodb::bson::{oid::ObjectId, DateTime};
use serde::{Deserialize, Serialize};

use super::names::{BatchName, FileLocation, FileName, InvalidName};
use super::state::{Control, Lane, SegmentStatus, Status};

/// One audio file record (collection `audiofiles`). The API renders it in the contract's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AudioFile {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub batch: Option<String>,
    pub filename: String,
    pub format: String,
    pub size: i64,
    pub md5: String,
    pub create_date: DateTime,
    pub last_update: DateTime,
    pub control: Control,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<AudioInfo>,
    #[serde(
        rename = "audioChannels",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub audio_channels: Option<Vec<AudioChannel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StageError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_segments: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_speech: Option<f64>,
    #[serde(default)]
    pub options: StartOptions,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The file's modification time (ms since the epoch) when its size and md5 were taken:
    /// a file found with another one, or another size, is hashed again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<i64>,
    /// Which worker holds the file's current stage, and until when (renewed while it works).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

impl AudioFile {
    /// Whether the file on disk (its metadata `meta`) may not be the one this record was
    /// made from: its size differs, or its modification time does.
    pub fn may_differ_from(&self, meta: &std::fs::Metadata) -> bool {
        meta.len() != self.size as u64
            || self
                .mtime
                .is_some_and(|m| crate::workdir_files::modified_ms(meta) != Some(m))
    }

    /// Where the file lives in the work directory; `None` for a stored name that no longer
    /// parses (never the case for records the service created).
    pub fn location(&self) -> Option<FileLocation> {
        self.try_location().ok()
    }

    /// Where the file lives in the work directory, or why its stored name does not parse.
    pub fn try_location(&self) -> Result<FileLocation, InvalidName> {
        Ok(FileLocation {
            batch: self.batch.as_deref().map(BatchName::stored).transpose()?,
            filename: FileName::parse(&self.filename)?,
        })
    }

    /// The file's duration in seconds, once normalized (its longest channel); 0 before.
    pub fn audio_seconds(&self) -> f64 {
        self.audio_channels
            .iter()
            .flatten()
            .map(|c| c.duration)
            .fold(0.0, f64::max)
    }
}

/// Technical metadata written by the normalizer, key names as the original service spells them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AudioInfo {
    pub bit_rate: String,
    pub bit_rate_mode: String,
    pub channels: String,
    pub codec: String,
    pub comment: String,
    #[serde(rename = "Compression_Mode")]
    pub compression_mode: String,
    pub duration: String,
    pub encoded_library: String,
    pub file_created_date: String,
    pub file_modified_date: String,
    pub file_size: String,
    pub format: String,
    pub input_sampling_rate: String,
    pub output_sampling_rate: String,
    pub redundant_channel: bool,
    pub track: String,
}

/// One channel of a normalized file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AudioChannel {
    /// Effective audio bandwidth in Hz, as a string (the contract's spelling).
    pub bandwidth: String,
    /// 1-based channel number.
    pub channel: u32,
    /// Seconds.
    pub duration: f64,
}

/// Why a file ended FAILED: the stage and a reason a person can act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageError {
    pub stage: Status,
    pub reason: String,
}

/// What the user asked for when starting the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartOptions {
    /// Recognition model id (`lm.uri`); `None` means the configured default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Vocabulary hints (`hints.words`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// Words the recognizer should rather not hear: among near-tie readings, one without them
    /// wins (a DeepSpeech hot word with a negative boost).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub avoided_words: Vec<String>,
    /// Webhook URLs to notify when the file ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<String>,
    /// Diarization mode (`auto`, `speaker`, `channel`, `none`); `None` means auto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diarization: Option<String>,
    /// Bounds on the number of speakers (`speakers=N` sets both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_speakers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_speakers: Option<u32>,
    /// How readily the diarizer tells a new voice apart, 0–1 (`None`: its default, 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_sensitivity: Option<f64>,
    /// Notifications in a protocol's own form (a Speechmatics `notification_config`),
    /// sent when the file ends, through the same durable outbox as `webhooks`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// What the submitting protocol keeps about the job in its own terms (a Speechmatics
    /// job's config, data name and `meta`), written and read back only by that protocol's
    /// face; never part of the TRD record's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolNote>,
    /// The queues the file's work travels (interactive requests have their own lane).
    #[serde(default, skip_serializing_if = "Lane::is_batch")]
    pub lane: Lane,
    /// A temporary job (a recognize-now request): the API serving it keeps pushing this
    /// moment forward while its client waits; once it passes (the client went, or the API
    /// died), the job is deleted with its data and audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discard_after: Option<DateTime>,
}

impl StartOptions {
    /// Whether the file's end is to be told to anyone (webhooks or a face's notices).
    pub fn notifies(&self) -> bool {
        !self.webhooks.is_empty() || !self.notices.is_empty()
    }
}

/// A notification whose body and address a face renders: sent once the file has ended
/// (FINISHED or FAILED), never for a reset or delete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub url: String,
    /// The face that renders the request (its body, query and user agent).
    pub face: String,
    /// What the face attaches (`transcript.json-v2`, `jobinfo`…), in its terms.
    #[serde(default)]
    pub contents: Vec<String>,
    /// Headers the caller asked for, `Name: value`.
    #[serde(default)]
    pub headers: Vec<String>,
    /// `POST` or `PUT`.
    #[serde(default)]
    pub method: Option<String>,
}

/// A protocol's own note about a job: its face's name and a JSON document only that face
/// reads. Kept as text, so whatever the client sent is given back byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolNote {
    pub face: String,
    pub json: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime,
}

/// One speech segment (collection `segments`), created by the diarizer, filled by the recognizer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub audiofile_id: ObjectId,
    /// 1-based channel number.
    pub channel: u32,
    /// Seconds from the start of the file.
    pub start: f64,
    pub end: f64,
    pub speaker: String,
    pub score: u32,
    pub status: SegmentStatus,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub words: Vec<Word>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The audio the recognizer hears: the segment plus some of the silence around it, since
    /// speech detection trims the quiet edges of words. Segments without it are heard as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard: Option<Span>,
}

/// A stretch of a file, in seconds from its start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub start: f64,
    pub end: f64,
}

impl Segment {
    /// A segment the diarizer found, awaiting recognition.
    pub fn pending(
        audiofile_id: ObjectId,
        channel: u32,
        span: Span,
        speaker: String,
        heard: Option<Span>,
    ) -> Self {
        Segment {
            id: ObjectId::new(),
            audiofile_id,
            channel,
            start: span.start,
            end: span.end,
            speaker,
            score: 0,
            status: SegmentStatus::Processing,
            text: String::new(),
            words: Vec::new(),
            reason: None,
            lease: None,
            heard,
        }
    }

    /// What the recognizer should hear of this segment.
    pub fn heard_span(&self) -> Span {
        self.heard.unwrap_or(Span {
            start: self.start,
            end: self.end,
        })
    }

    pub fn duration(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }
}

/// One recognized word, times in seconds from the start of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Word {
    pub text: String,
    pub start: f64,
    pub end: f64,
    /// Confidence 0–100.
    pub score: u32,
}
