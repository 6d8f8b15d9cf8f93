//! Following a job as its result grows: the record and each segment as soon as the workers
//! have stored it, until the job ends. MongoDB is the truth, so following is reading it again
//! at a steady pace; any API process can follow any job, wherever its workers run.

use std::collections::HashSet;
use std::time::Duration;

use futures::Stream;
use mongodb::bson::oid::ObjectId;
use trd_core::domain::{AudioFile, Control, Segment, SegmentStatus};

use super::{JobResult, Jobs};

/// What changed since the previous update.
#[derive(Debug, Clone)]
pub struct JobUpdate {
    /// The record as it is now.
    pub record: AudioFile,
    /// Segments recognized since the previous update (each reported once), by start time.
    pub recognized: Vec<Segment>,
    /// Every segment as it is now, by start time (recognized or not).
    pub segments: Vec<Segment>,
}

impl JobUpdate {
    /// The job will not change any more: it FINISHED or FAILED.
    pub fn is_final(&self) -> bool {
        matches!(self.record.control, Control::Finished | Control::Failed)
    }
}

impl Jobs {
    /// Updates every `every` while anything changed, ending after the update that shows the
    /// job FINISHED or FAILED. A job deleted meanwhile ends the stream with
    /// [`super::JobError::NotFound`].
    pub fn follow(
        &self,
        id: ObjectId,
        every: Duration,
    ) -> impl Stream<Item = JobResult<JobUpdate>> {
        struct State {
            jobs: Jobs,
            id: ObjectId,
            every: Duration,
            reported: HashSet<ObjectId>,
            last: Option<(Control, trd_core::domain::Status)>,
            first: bool,
            done: bool,
        }
        let state = State {
            jobs: self.clone(),
            id,
            every,
            reported: HashSet::new(),
            last: None,
            first: true,
            done: false,
        };
        futures::stream::unfold(state, |mut s| async move {
            if s.done {
                return None;
            }
            loop {
                if !std::mem::take(&mut s.first) {
                    tokio::time::sleep(s.every).await;
                }
                let (record, segments) = match s.jobs.result(s.id).await {
                    Ok(result) => result,
                    Err(e) => {
                        s.done = true;
                        return Some((Err(e), s));
                    }
                };
                let recognized: Vec<Segment> = segments
                    .iter()
                    .filter(|seg| seg.status != SegmentStatus::Processing)
                    .filter(|seg| s.reported.insert(seg.id))
                    .cloned()
                    .collect();
                let state = (record.control, record.status);
                if recognized.is_empty() && s.last == Some(state) {
                    continue;
                }
                s.last = Some(state);
                let update = JobUpdate {
                    record,
                    recognized,
                    segments,
                };
                s.done = update.is_final();
                return Some((Ok(update), s));
            }
        })
    }
}
