//! Why a stage could not do its work on a message, and what that means for the message.

use std::time::Duration;

use crate::domain::Stage;
use crate::queue::QueueError;
use crate::store::StoreError;

/// Any error a stage's own code raises, kept whole so its causes reach the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The one failure type of stage work. Its kind alone decides what becomes of the message
/// ([`Disposition::of`]); the cause is kept for the log and, for a file fault, the record.
#[derive(Debug, thiserror::Error)]
pub enum StageFailure {
    /// The file itself is the problem (undecodable audio…): it ends FAILED, and the cause's
    /// message is the reason a person reads on the record.
    #[error("the file cannot be processed: {0}")]
    FileFault(#[source] Cause),
    /// Something outside the file went wrong (the attempt took too long, an unexpected error):
    /// the work is tried again as a new attempt, and a message that fails every attempt is
    /// dead-lettered.
    #[error("the attempt failed")]
    Attempt(#[source] Cause),
    /// A dependency is down: the work waits until it answers. Not the message's fault, so it
    /// does not count as an attempt.
    #[error("a dependency is down")]
    Outage(#[source] Outage),
    /// Another attempt took the file over while this one worked on it (this one's lease ran
    /// out: its worker stalled, or MongoDB was away for longer than a lease). The attempt
    /// writes nothing more and its message is done: the file is the other attempt's.
    #[error("another attempt took the file over")]
    Superseded,
}

/// Which dependency is down.
#[derive(Debug, thiserror::Error)]
pub enum Outage {
    #[error(transparent)]
    MongoDb(StoreError),
    #[error(transparent)]
    RabbitMq(#[from] QueueError),
    /// The work directory is gone (unmounted) or its storage fails (full, I/O errors).
    #[error("the work directory is unavailable: {0}")]
    WorkDirectory(String),
}

impl StageFailure {
    pub fn file_fault(cause: impl Into<Cause>) -> Self {
        StageFailure::FileFault(cause.into())
    }

    pub fn attempt(cause: impl Into<Cause>) -> Self {
        StageFailure::Attempt(cause.into())
    }

    /// The reason stored on a FAILED record: what the file's fault is, in the words of the
    /// error that found it.
    pub fn reason(&self) -> String {
        match self {
            StageFailure::FileFault(cause) => cause.to_string(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for StageFailure {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            StageFailure::Outage(Outage::MongoDb(e))
        } else {
            StageFailure::Attempt(Box::new(e))
        }
    }
}

impl From<QueueError> for StageFailure {
    fn from(e: QueueError) -> Self {
        StageFailure::Outage(Outage::RabbitMq(e))
    }
}

/// An attempt at a file stage that outlasted `stage_timeout_seconds` and was abandoned.
#[derive(Debug, thiserror::Error)]
#[error("the {stage} stage took longer than {} s", .limit.as_secs())]
pub struct StageTimeout {
    pub stage: Stage,
    pub limit: Duration,
}

/// What becomes of a message once its handler returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done: the stage committed, there was nothing to do (a stale or duplicate hint), or the
    /// file is at fault and has been failed.
    Ack,
    /// Put the message back. Each return counts towards the queue's delivery limit, so a
    /// message that fails every time is dead-lettered and its file fails.
    Retry,
    /// Keep the message and handle it again, with back-off, once the dependency answers.
    Wait,
}

impl Disposition {
    pub fn of(outcome: &Result<(), StageFailure>) -> Self {
        match outcome {
            Ok(()) | Err(StageFailure::FileFault(_) | StageFailure::Superseded) => Disposition::Ack,
            Err(StageFailure::Attempt(_)) => Disposition::Retry,
            Err(StageFailure::Outage(_)) => Disposition::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::ErrorChain;

    #[test]
    fn the_kind_alone_decides_the_disposition() {
        let timeout = StageTimeout {
            stage: Stage::Normalize,
            limit: Duration::from_secs(1),
        };
        assert_eq!(Disposition::of(&Ok(())), Disposition::Ack);
        assert_eq!(
            Disposition::of(&Err(StageFailure::file_fault("bad audio"))),
            Disposition::Ack
        );
        assert_eq!(
            Disposition::of(&Err(StageFailure::attempt(timeout))),
            Disposition::Retry
        );
        assert_eq!(
            Disposition::of(&Err(StageFailure::Superseded)),
            Disposition::Ack
        );
        let outage = StoreError::from_mongo(std::io::Error::other("no primary").into());
        assert!(outage.is_unavailable());
        assert_eq!(Disposition::of(&Err(outage.into())), Disposition::Wait);
    }

    #[test]
    fn a_file_fault_is_recorded_in_its_own_words_and_logged_whole() {
        let fault = StageFailure::file_fault("the file has no audio track");
        assert_eq!(fault.reason(), "the file has no audio track");
        let timeout = StageFailure::attempt(StageTimeout {
            stage: Stage::Diarize,
            limit: Duration::from_secs(3),
        });
        assert_eq!(
            ErrorChain(&timeout).to_string(),
            "the attempt failed: the diarize stage took longer than 3 s"
        );
    }
}
