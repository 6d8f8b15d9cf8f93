//! What can go wrong with a job, whatever protocol asked: each face turns it into its own error
//! shape ([`crate::error::ApiError`] for TRD's).

use mongodb::bson::oid::ObjectId;
use trd_core::domain::{AudioFile, Control, FileLocation, Status};
use trd_core::queue::QueueError;
use trd_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no audio file with id {0}")]
    NotFound(ObjectId),
    #[error("file {id} cannot be started: its control is {control} (only IDLE or PAUSED files start; reset a FINISHED or FAILED file first)")]
    NotStartable { id: ObjectId, control: Control },
    #[error("file {id} is not running (its control is {control})")]
    NotRunning { id: ObjectId, control: Control },
    #[error("'{}' exists already in this batch; delete it or upload under another name", .0.filename)]
    NameTaken(FileLocation),
    /// The options ask for something the service cannot do (an unknown model, a webhook it
    /// may not call, impossible speaker counts).
    #[error("{0}")]
    InvalidOptions(String),
    #[error("no file '{0}' in the work directory")]
    NoSuchAudio(String),
    #[error("'{0}' is not a valid file location inside the work directory")]
    InvalidLocation(String),
    /// A symbolic link, a path behind one, or not a regular file: TRD does not follow links
    /// out of the work directory.
    #[error("{0}")]
    UnsafePath(String),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The work directory is missing (unmounted) or its storage is sick (full, failing, read
    /// only): the service's trouble, not the request's, and it passes.
    #[error("{context}")]
    Storage {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Every interactive slot is taken: try again after `retry_after` seconds.
    #[error("every recognition slot is busy; try again in {retry_after} s")]
    Busy { retry_after: u64 },
    /// No worker took an interactive job in time.
    #[error("no worker took the request within {} s; try again in {retry_after} s", .waited.as_secs())]
    NoWorker {
        waited: std::time::Duration,
        retry_after: u64,
    },
    #[error("the audio is empty")]
    EmptyAudio,
    /// The job ended FAILED (the audio could not be decoded, a stage gave up).
    #[error("{reason}")]
    Failed {
        /// The stage the job failed at (a file the normalizer cannot decode is the client's
        /// mistake; a later stage failing is the service's).
        status: Status,
        reason: String,
    },
    /// The job vanished while a request waited on it (deleted by someone else).
    #[error("the job was deleted while its result was awaited")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl JobError {
    /// A FAILED job, with the reason its stage recorded.
    pub fn failed(record: &AudioFile) -> Self {
        match &record.error {
            Some(error) => JobError::Failed {
                status: error.stage,
                reason: error.reason.clone(),
            },
            None => JobError::Failed {
                status: record.status,
                reason: "the job failed".to_owned(),
            },
        }
    }

    /// An I/O failure: [`JobError::Storage`] when it says the storage is sick.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        let context = context.into();
        if trd_core::workdir_files::storage_is_sick(&source) {
            JobError::Storage { context, source }
        } else {
            JobError::Io { context, source }
        }
    }
}

impl From<crate::registry::RegisterError> for JobError {
    fn from(e: crate::registry::RegisterError) -> Self {
        use crate::registry::RegisterError;
        match e {
            RegisterError::InvalidLocation(p) => JobError::InvalidLocation(p),
            RegisterError::Refused(e) => JobError::UnsafePath(e.to_string()),
            RegisterError::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                JobError::NoSuchAudio(path)
            }
            RegisterError::Io { path, source } => {
                JobError::io(format!("cannot read {path}"), source)
            }
            RegisterError::Store(e) => JobError::Store(e),
        }
    }
}

pub type JobResult<T> = Result<T, JobError>;
