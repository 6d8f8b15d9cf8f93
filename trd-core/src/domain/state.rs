//! The two state machines of a file (control: what the user asked; status: how far the pipeline
//! got) and the pipeline stages that move a file along.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the user asked for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Control {
    Idle,
    Running,
    Paused,
    Finished,
    Failed,
}

impl Control {
    pub const ALL: [Control; 5] = [
        Control::Idle,
        Control::Running,
        Control::Paused,
        Control::Finished,
        Control::Failed,
    ];

    /// Controls from which `start` may move a file to RUNNING.
    pub const STARTABLE: [Control; 2] = [Control::Idle, Control::Paused];

    pub fn as_str(self) -> &'static str {
        match self {
            Control::Idle => "IDLE",
            Control::Running => "RUNNING",
            Control::Paused => "PAUSED",
            Control::Finished => "FINISHED",
            Control::Failed => "FAILED",
        }
    }

    pub fn can_start(self) -> bool {
        Self::STARTABLE.contains(&self)
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far the pipeline got with a file.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Initial,
    Normalizing,
    Normalized,
    Diarizing,
    Diarized,
    Recognizing,
    Recognized,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Initial,
        Status::Normalizing,
        Status::Normalized,
        Status::Diarizing,
        Status::Diarized,
        Status::Recognizing,
        Status::Recognized,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initial => "INITIAL",
            Status::Normalizing => "NORMALIZING",
            Status::Normalized => "NORMALIZED",
            Status::Diarizing => "DIARIZING",
            Status::Diarized => "DIARIZED",
            Status::Recognizing => "RECOGNIZING",
            Status::Recognized => "RECOGNIZED",
        }
    }

    /// The stage a (re)started file must be queued at: a paused file resumes where it stopped,
    /// and a stage that was interrupted mid-way is redone from its start.
    pub fn next_stage(self) -> Option<Stage> {
        match self {
            Status::Initial | Status::Normalizing => Some(Stage::Normalize),
            Status::Normalized | Status::Diarizing => Some(Stage::Diarize),
            Status::Diarized | Status::Recognizing => Some(Stage::Recognize),
            Status::Recognized => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pipeline stage: one queue, one worker kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Normalize,
    Diarize,
    Recognize,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Normalize, Stage::Diarize, Stage::Recognize];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Normalize => "normalize",
            Stage::Diarize => "diarize",
            Stage::Recognize => "recognize",
        }
    }

    /// The status a file has while waiting for this stage.
    pub fn ready_status(self) -> Status {
        match self {
            Stage::Normalize => Status::Initial,
            Stage::Diarize => Status::Normalized,
            Stage::Recognize => Status::Diarized,
        }
    }

    /// The status a file has while this stage works on it.
    pub fn active_status(self) -> Status {
        match self {
            Stage::Normalize => Status::Normalizing,
            Stage::Diarize => Status::Diarizing,
            Stage::Recognize => Status::Recognizing,
        }
    }

    /// The status a file has once this stage is done with it.
    pub fn done_status(self) -> Status {
        match self {
            Stage::Normalize => Status::Normalized,
            Stage::Diarize => Status::Diarized,
            Stage::Recognize => Status::Recognized,
        }
    }

    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Normalize => Some(Stage::Diarize),
            Stage::Diarize => Some(Stage::Recognize),
            Stage::Recognize => None,
        }
    }
}

/// Which of a stage's two queues a file's messages travel: batch work, or the interactive lane
/// of requests a client waits on. Every worker consumes both, with slots reserved for the
/// interactive lane, so an interactive request never queues behind a batch. (Separate queues
/// rather than message priorities: quorum queues have none before RabbitMQ 3.12.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    #[default]
    Batch,
    Interactive,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Batch, Lane::Interactive];

    pub fn is_batch(&self) -> bool {
        *self == Lane::Batch
    }

    /// What the lane adds to a stage's queue name.
    pub fn queue_suffix(self) -> &'static str {
        match self {
            Lane::Batch => "",
            Lane::Interactive => ".now",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The recognition outcome of one speech segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SegmentStatus {
    Processing,
    Recognized,
    NoMatch,
    NoInputTimeout,
    RecognitionTimeout,
    NoSpeech,
    Failure,
}

impl SegmentStatus {
    pub const ALL: [SegmentStatus; 7] = [
        SegmentStatus::Processing,
        SegmentStatus::Recognized,
        SegmentStatus::NoMatch,
        SegmentStatus::NoInputTimeout,
        SegmentStatus::RecognitionTimeout,
        SegmentStatus::NoSpeech,
        SegmentStatus::Failure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SegmentStatus::Processing => "PROCESSING",
            SegmentStatus::Recognized => "RECOGNIZED",
            SegmentStatus::NoMatch => "NO_MATCH",
            SegmentStatus::NoInputTimeout => "NO_INPUT_TIMEOUT",
            SegmentStatus::RecognitionTimeout => "RECOGNITION_TIMEOUT",
            SegmentStatus::NoSpeech => "NO_SPEECH",
            SegmentStatus::Failure => "FAILURE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unfinished_status_resumes_at_a_stage_that_reaches_it() {
        for s in Status::ALL {
            match s.next_stage() {
                None => assert_eq!(s, Status::Recognized),
                Some(stage) => assert!(stage.ready_status() <= s && s <= stage.active_status()),
            }
        }
    }

    #[test]
    fn stages_chain_in_order() {
        assert_eq!(Stage::Normalize.next(), Some(Stage::Diarize));
        assert_eq!(Stage::Diarize.next(), Some(Stage::Recognize));
        assert_eq!(Stage::Recognize.next(), None);
        for st in Stage::ALL {
            if let Some(n) = st.next() {
                assert_eq!(st.done_status(), n.ready_status());
            }
        }
    }

    #[test]
    fn serialises_as_the_contract_spells_it() {
        assert_eq!(
            serde_json::to_string(&Control::Finished).unwrap(),
            "\"FINISHED\""
        );
        assert_eq!(
            serde_json::to_string(&Status::Recognizing).unwrap(),
            "\"RECOGNIZING\""
        );
        assert_eq!(
            serde_json::to_string(&SegmentStatus::NoMatch).unwrap(),
            "\"NO_MATCH\""
        );
    }
}
