//! What the batch figures are computed from (`trd_core::store::figures`): files grouped by
//! control and status, speech by recognition status, the work done recently and what each
//! stage costs.

use std::collections::HashSet;

use mongodb::bson::{oid::ObjectId, DateTime};
use trd_core::domain::{BatchName, Control, SegmentStatus, Stage, Status};
use trd_core::store::figures::{
    file_groups, tally_by_status, FileBrief, FileGroup, RecentWork, SpeechTally,
};
use trd_core::store::stage_metrics::StageTimings;
use trd_core::store::StoreResult;
use trd_core::Store;

/// How far back "the throughput the workers are achieving now" looks.
const THROUGHPUT_WINDOW_MS: i64 = 3 * 60 * 1000;
/// Shortest stretch of work the throughput is measured over.
const MIN_MEASURED_MS: i64 = 4 * 1000;

/// Everything the batch figures are computed from, as MongoDB summed it.
#[derive(Debug)]
pub struct BatchSums {
    pub groups: Vec<FileGroup>,
    /// Segments of every file of the batch, per recognition status.
    pub recognition: Vec<SpeechTally>,
    /// Files in recognition that are not over yet (not FINISHED or FAILED).
    pub in_recognition: Vec<FileBrief>,
    /// Their segments' speech per (file, status).
    pub in_recognition_speech: Vec<(ObjectId, SegmentStatus, f64)>,
    pub diarized_recently: RecentWork,
    pub recognized_recently: RecentWork,
    /// What each stage's work costs, from every run the workers have recorded.
    pub costs: StageCosts,
    pub now: DateTime,
}

/// Worker seconds per second of audio (normalize, diarize) or of speech (recognize), as the
/// stage metrics have measured them; `None` until the stage has run.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct StageCosts {
    pub normalize: Option<f64>,
    pub diarize: Option<f64>,
    pub recognize: Option<f64>,
}

impl StageCosts {
    pub(super) fn from_timings(timings: &[StageTimings]) -> Self {
        let of = |stage: Stage| {
            timings
                .iter()
                .find(|t| t.stage == stage.name())
                .and_then(StageTimings::real_time_factor)
        };
        Self {
            normalize: of(Stage::Normalize),
            diarize: of(Stage::Diarize),
            recognize: of(Stage::Recognize),
        }
    }
}

impl Default for BatchSums {
    fn default() -> Self {
        Self {
            groups: Vec::new(),
            recognition: Vec::new(),
            in_recognition: Vec::new(),
            in_recognition_speech: Vec::new(),
            diarized_recently: RecentWork::default(),
            recognized_recently: RecentWork::default(),
            costs: StageCosts::default(),
            now: DateTime::now(),
        }
    }
}

impl BatchSums {
    /// Four reads: the batch's files, their segments' speech, the segments of recent work,
    /// and the stages' costs. The figures of a batch of hundreds of files are summed about
    /// once a second while it is watched, so every read here is one the MongoDB-wire server
    /// pays for again and again.
    pub async fn load(store: &Store, batch: &BatchName) -> StoreResult<Self> {
        let now = DateTime::now();
        let since = DateTime::from_millis(now.timestamp_millis() - THROUGHPUT_WINDOW_MS);
        let files = store.batch_briefs(batch).await?;
        let groups = file_groups(&files);
        let with_segments: Vec<&FileBrief> = files
            .iter()
            .filter(|f| f.status >= Status::Diarizing)
            .collect();
        let all: Vec<ObjectId> = with_segments.iter().map(|f| f.id).collect();
        let in_recognition: Vec<FileBrief> = with_segments
            .iter()
            .filter(|f| !is_over(f.control) && f.status >= Status::Diarized)
            .map(|f| (*f).clone())
            .collect();
        let open: HashSet<ObjectId> = in_recognition.iter().map(|f| f.id).collect();
        // Only files still open, or closed within the window, can have recent work.
        let recent: Vec<ObjectId> = with_segments
            .iter()
            .filter(|f| !is_over(f.control) || f.last_update >= since)
            .map(|f| f.id)
            .collect();
        let (speech, recent_segments, timings) = futures::try_join!(
            store.speech_by_file(&all),
            store.segments_since(&recent, since),
            store.stage_timings(),
        )?;
        let recognition = tally_by_status(&speech);
        let in_recognition_speech = speech
            .iter()
            .filter(|s| open.contains(&s.file))
            .map(|s| (s.file, s.tally.status, s.tally.seconds))
            .collect();
        let mut diarized_recently = recent_segments.diarized_since(since);
        let mut recognized_recently = recent_segments.recognized_since(since);
        // A batch's first seconds are its slowest (models loading, stages filling up); once it
        // has run a while, only the later half of its time in the window is measured.
        let first = [diarized_recently.started, recognized_recently.started]
            .into_iter()
            .flatten()
            .min();
        if let Some(first) = first {
            let running_for = now.timestamp_millis() - first.timestamp_millis();
            if running_for >= 2 * MIN_MEASURED_MS {
                let later = DateTime::from_millis(first.timestamp_millis() + running_for / 2);
                diarized_recently = recent_segments.diarized_since(later);
                recognized_recently = recent_segments.recognized_since(later);
            }
        }
        Ok(Self {
            groups,
            recognition,
            in_recognition,
            in_recognition_speech,
            diarized_recently,
            recognized_recently,
            costs: StageCosts::from_timings(&timings),
            now,
        })
    }
}

pub(super) fn is_over(control: Control) -> bool {
    matches!(control, Control::Finished | Control::Failed)
}
