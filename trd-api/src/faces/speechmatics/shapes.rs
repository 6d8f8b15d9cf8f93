//! The Speechmatics job shapes, built from a TRD record. The clients accept exactly five
//! statuses (`running`, `done`, `rejected`, `deleted`, `expired`) and raise on anything else,
//! so TRD's states fold into them here, and nowhere else.

use serde::Serialize;
use serde_json::Value;
use trd_core::domain::{AudioFile, Control};
use utoipa::ToSchema;

/// A job's status as the clients know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Queued or being processed (any TRD state short of an end).
    Running,
    Done,
    /// Failed; `errors` says why.
    Rejected,
    Deleted,
}

impl JobStatus {
    pub fn of(record: &AudioFile) -> Self {
        match record.control {
            Control::Finished => Self::Done,
            Control::Failed => Self::Rejected,
            Control::Idle | Control::Running | Control::Paused => Self::Running,
        }
    }
}

/// Why a job was rejected.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobError {
    /// ISO 8601.
    pub timestamp: String,
    pub message: String,
}

/// `GET /v2/jobs/{id}`'s `job`, and each entry of the job list.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobDetails {
    pub id: String,
    pub status: JobStatus,
    /// ISO 8601.
    pub created_at: String,
    pub data_name: String,
    /// Seconds of audio; 0 until the audio has been read (the old SDK reads it before polling).
    pub duration: f64,
    /// As submitted, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<JobError>,
    /// What the job could not do as asked (vocabulary the model cannot write…); the clients
    /// ignore keys they do not know.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl JobDetails {
    /// `data_name` is the name the audio was submitted under, kept apart from the record's
    /// unique stored name; `config` the submitted config.
    pub fn new(
        record: &AudioFile,
        data_name: &str,
        config: Option<Value>,
        meta: Option<String>,
    ) -> Self {
        let errors = record
            .error
            .iter()
            .map(|e| JobError {
                timestamp: iso(record.last_update),
                message: format!("failed at {}: {}", e.stage, e.reason),
            })
            .collect();
        JobDetails {
            id: record.id.to_hex(),
            status: JobStatus::of(record),
            created_at: iso(record.create_date),
            data_name: data_name.to_owned(),
            duration: record.audio_seconds(),
            config,
            meta,
            errors,
            warnings: record.warnings.clone(),
        }
    }
}

/// ISO 8601 with milliseconds, UTC (`2026-12-01T09:00:00.000Z`), as the vendor writes dates.
pub fn iso(date: mongodb::bson::DateTime) -> String {
    chrono::DateTime::from_timestamp_millis(date.timestamp_millis())
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use mongodb::bson::{oid::ObjectId, DateTime};
    use trd_core::domain::{AudioChannel, StageError, Status};

    use super::*;

    fn record(control: Control) -> AudioFile {
        AudioFile {
            id: ObjectId::new(),
            batch: None,
            filename: "x.wav".into(),
            format: "wav".into(),
            size: 1,
            md5: String::new(),
            create_date: DateTime::from_millis(1_764_579_600_000),
            last_update: DateTime::from_millis(1_764_579_660_000),
            control,
            status: Status::Initial,
            info: None,
            audio_channels: None,
            error: None,
            total_segments: None,
            total_speech: None,
            options: Default::default(),
            warnings: Vec::new(),
            mtime: None,
            lease: None,
        }
    }

    #[test]
    fn every_trd_state_is_one_of_the_statuses_the_clients_know() {
        for (control, status) in [
            (Control::Idle, "running"),
            (Control::Running, "running"),
            (Control::Paused, "running"),
            (Control::Finished, "done"),
            (Control::Failed, "rejected"),
        ] {
            let details = JobDetails::new(&record(control), "call.wav", None, None);
            assert_eq!(serde_json::to_value(details.status).unwrap(), status);
        }
    }

    #[test]
    fn duration_is_zero_until_known_then_the_longest_channel() {
        let mut r = record(Control::Running);
        let duration = |r: &AudioFile| JobDetails::new(r, "a.wav", None, None).duration;
        assert_eq!(duration(&r), 0.0);
        r.audio_channels = Some(
            [(1, 12.5), (2, 12.75)]
                .map(|(channel, duration)| AudioChannel {
                    bandwidth: "4000".into(),
                    channel,
                    duration,
                })
                .to_vec(),
        );
        assert_eq!(duration(&r), 12.75);
    }

    #[test]
    fn a_rejected_job_says_why_and_the_dates_are_iso() {
        let mut r = record(Control::Failed);
        r.error = Some(StageError {
            stage: Status::Normalizing,
            reason: "not audio".into(),
        });
        let v = serde_json::to_value(JobDetails::new(&r, "call.wav", None, None)).unwrap();
        assert_eq!(v["created_at"], "2025-12-01T09:00:00.000Z");
        assert_eq!(v["errors"][0]["timestamp"], "2025-12-01T09:01:00.000Z");
        assert!(v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not audio"));
        assert!(v.get("config").is_none(), "no config is left out, not null");
        assert_eq!(v["duration"], 0.0);
    }
}
