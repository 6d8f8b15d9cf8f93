//! A Speechmatics job as TRD keeps it: a record in the submitting principal's private batch
//! (so it has TRD's status, progress, metrics and audit, and no other principal can name it),
//! with the face's [`Note`] beside it: the name the audio came under, the config as sent and
//! the caller's `meta`.

use mongodb::bson::oid::ObjectId;
use serde::{Deserialize, Serialize};
use trd_core::domain::{AudioFile, BatchName, FileLocation, ProtocolNote, Segment, StartOptions};
use trd_export::json_v2::{self, Diarization, JobInfo, Transcript};

use super::config::JobConfig;
use super::error::{SmError, SmResult};
use super::shapes::{iso, JobDetails};
use super::vocab::Respelling;
use crate::app::App;
use crate::error::ApiError;
use crate::identity::secrets::sha256_hex;
use crate::identity::Principal;
use crate::jobs::{Audio, SPEAKERS};

/// The face's name in the notes it keeps.
pub const FACE: &str = "speechmatics";

/// What the face keeps about a job beside its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// The name the audio was submitted under (the record's own name is unique, not this).
    pub data_name: String,
    /// The config as the caller sent it, byte for byte.
    pub config: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
    /// For a job submitted through the appliance's v1 paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyNote>,
}

/// What a v1 submit said beyond the config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegacyNote {
    pub user_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
}

/// A job: its record, the note and the config the note holds.
#[derive(Debug, Clone)]
pub struct Job {
    pub record: AudioFile,
    pub note: Note,
    pub config: Option<JobConfig>,
}

/// The transcript formats a job is given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptFormat {
    JsonV2,
    /// The vendor's older JSON; TRD writes json-v2 for it, which the clients read alike.
    Json,
    Txt,
    Srt,
}

impl TranscriptFormat {
    pub fn parse(name: &str) -> SmResult<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "json-v2" => Self::JsonV2,
            "json" => Self::Json,
            "txt" => Self::Txt,
            "srt" => Self::Srt,
            _ => {
                return Err(SmError::bad_request(format!(
                    "format '{name}' is not one of json-v2, json, txt, srt"
                )))
            }
        })
    }
}

/// A transcript written out.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: String,
}

impl Job {
    pub fn of(record: AudioFile) -> Self {
        let note: Note = record
            .options
            .protocol
            .as_ref()
            .filter(|p| p.face == FACE)
            .and_then(|p| serde_json::from_str(&p.json).ok())
            .unwrap_or_else(|| Note {
                data_name: record.filename.clone(),
                ..Note::default()
            });
        let config = JobConfig::parse(&note.config).ok();
        Job {
            record,
            note,
            config,
        }
    }

    pub fn id(&self) -> String {
        self.record.id.to_hex()
    }

    /// The job as `GET /v2/jobs/{id}` shows it.
    pub fn details(&self) -> JobDetails {
        JobDetails::new(
            &self.record,
            &self.note.data_name,
            self.config.as_ref().map(|c| c.raw.clone()),
            self.note.meta.clone(),
        )
    }

    /// The json-v2 transcript of the job's `segments`.
    pub fn transcript(&self, segments: &[Segment]) -> Transcript {
        let config = self.config.as_ref();
        let respelled = self.respelled(segments);
        let request = json_v2::Request {
            job: JobInfo {
                id: self.id(),
                created_at: iso(self.record.create_date),
                data_name: self.note.data_name.clone(),
                duration: self.record.audio_seconds(),
            },
            created_at: iso(mongodb::bson::DateTime::now()),
            language: config.map(|c| c.language.clone()).unwrap_or_default(),
            transcription_config: config
                .and_then(|c| c.raw.get("transcription_config").cloned())
                .unwrap_or_default(),
            diarization: config.map(|c| c.diarization).unwrap_or_default(),
            channel_labels: config.map(|c| c.channel_labels.clone()).unwrap_or_default(),
            permitted_marks: config.and_then(|c| c.permitted_marks.clone()),
        };
        json_v2::transcript(&respelled, &request)
    }
}

impl Job {
    /// The transcript of the job's `segments` in `format`: json-v2 as `application/json`,
    /// txt and srt as `text/plain` (the new SDK picks its parser by the content type).
    pub fn render(&self, segments: &[Segment], format: TranscriptFormat) -> SmResult<Rendered> {
        let written = |what: &str, e: Box<dyn std::error::Error + Send + Sync>| {
            SmError::Api(ApiError::internal(
                format!("writing the {what} transcript"),
                e,
            ))
        };
        Ok(match format {
            TranscriptFormat::JsonV2 | TranscriptFormat::Json => Rendered {
                content_type: "application/json",
                body: serde_json::to_string(&self.transcript(segments))
                    .map_err(|e| written("json-v2", e.into()))?,
            },
            TranscriptFormat::Txt => Rendered {
                content_type: "text/plain; charset=utf-8",
                body: self.transcript(segments).text(),
            },
            TranscriptFormat::Srt => {
                let config = self.config.as_ref();
                let options = trd_export::ExportOptions {
                    max_line_length: config.and_then(|c| c.srt_max_line_length),
                    max_lines: config.and_then(|c| c.srt_max_lines),
                };
                let srt = trd_export::ExportFormat::parse("srt", options)
                    .map_err(|e| SmError::bad_request(e.to_string()))?;
                let mut out = Vec::new();
                trd_export::render(&srt, &self.record, &self.respelled(segments), &mut out)
                    .map_err(|e| written("srt", e.into()))?;
                Rendered {
                    content_type: "text/plain; charset=utf-8",
                    body: String::from_utf8(out).map_err(|e| written("srt", e.into()))?,
                }
            }
        })
    }

    /// `segments` with the words the caller spelled in `additional_vocab` written so.
    fn respelled(&self, segments: &[Segment]) -> Vec<Segment> {
        self.config
            .as_ref()
            .map(|c| Respelling::new(&c.vocab))
            .unwrap_or_default()
            .apply(segments)
    }
}

/// The private batch a principal's jobs live in: named by a digest of the principal, so one
/// key's jobs are invisible to another and a key's name never reaches the disk.
pub fn owner_batch(principal: &Principal) -> BatchName {
    let digest = sha256_hex(&principal.label);
    BatchName::private(&format!("sm-{}", &digest[..24]))
        .expect("a hex digest is a valid private batch tag")
}

/// The caller's job `id`; 404 for an id that is malformed, unknown or another principal's.
pub async fn find(app: &App, principal: &Principal, id: &str) -> SmResult<Job> {
    let not_found = || SmError::Api(ApiError::NotFound(format!("no job with id '{id}'")));
    let object_id = ObjectId::parse_str(id).map_err(|_| not_found())?;
    let record = match app.jobs.record(object_id).await {
        Ok(record) => record,
        Err(crate::jobs::JobError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if record.batch.as_deref() != Some(owner_batch(principal).as_str()) {
        return Err(not_found());
    }
    Ok(Job::of(record))
}

/// The caller's jobs, newest first.
pub async fn list(
    app: &App,
    principal: &Principal,
    created_after: Option<mongodb::bson::DateTime>,
    created_before: Option<mongodb::bson::DateTime>,
    limit: i64,
) -> SmResult<Vec<Job>> {
    let records = app
        .store
        .list_newest(
            &owner_batch(principal),
            created_after,
            created_before,
            limit,
        )
        .await
        .map_err(ApiError::from)?;
    Ok(records.into_iter().map(Job::of).collect())
}

/// What a submit brings, whichever path it came by.
pub struct Submission {
    pub config: JobConfig,
    /// The config's notifications, and the v1 `callback`'s.
    pub notifications: Vec<super::config::Notification>,
    pub note: Note,
    pub audio: Audio,
}

/// The model serving `language` (400 naming the languages served otherwise).
fn model_for(app: &App, language: &str) -> SmResult<String> {
    app.jobs
        .model_for_language(language)
        .map_err(|e| SmError::bad_request(e.to_string()))
}

/// TRD's diarization mode for the one asked for. Speaker changes need speakers told apart,
/// within each channel when channels are kept apart too.
fn diarization_mode(diarization: Diarization) -> &'static str {
    match diarization {
        Diarization::None => "none",
        Diarization::Speaker | Diarization::SpeakerChange => "speaker",
        Diarization::Channel => "channel",
        Diarization::ChannelAndSpeakerChange => "auto",
    }
}

/// What `transcription_config` asks of recognition: the model for its language, its
/// vocabulary as hints, its diarization (shared by batch jobs and real-time file sessions).
pub(super) fn recognition_options(app: &App, config: &JobConfig) -> SmResult<StartOptions> {
    let mut hints = Vec::new();
    for entry in &config.vocab {
        hints.push(entry.content.clone());
        hints.extend(entry.sounds_like.iter().cloned());
    }
    Ok(StartOptions {
        model: Some(model_for(app, &config.language)?),
        hints,
        diarization: Some(diarization_mode(config.diarization).to_owned()),
        max_speakers: config.max_speakers.map(|n| n.min(*SPEAKERS.end())),
        speaker_sensitivity: config.speaker_sensitivity,
        ..StartOptions::default()
    })
}

/// Checks the job, stores its audio in the caller's private batch and starts it. Nothing is
/// stored for a job that would be refused; a job that cannot be queued is removed again.
pub async fn submit(app: &App, principal: &Principal, submission: Submission) -> SmResult<Job> {
    let Submission {
        config,
        notifications,
        note,
        audio,
    } = submission;
    let notices = super::notify::notices(&notifications)?;
    let options = StartOptions {
        notices,
        protocol: Some(ProtocolNote {
            face: FACE.to_owned(),
            json: serde_json::to_string(&note)
                .map_err(|e| ApiError::internal("the job note", e))?,
        }),
        ..recognition_options(app, &config)?
    };
    let checked = app.jobs.check_options(options).await?;
    let location = FileLocation {
        batch: Some(owner_batch(principal)),
        filename: crate::jobs::fresh_name(Some(&note.data_name)),
    };
    let record = app.jobs.submit(&location, audio).await?;
    match app.jobs.start(record.id, &checked).await {
        Ok(started) => Ok(Job::of(started)),
        Err(e) => {
            if let Err(cleanup) = app.jobs.delete(record.id, true).await {
                tracing::warn!(file = %record.id, error = %crate::error::chain(&cleanup), "could not remove a job that was not queued");
            }
            Err(e.into())
        }
    }
}
