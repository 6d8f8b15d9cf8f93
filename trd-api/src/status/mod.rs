//! Progress figures for a file and for a batch (contract section 4):
//!
//! - [`sums`]: what MongoDB sums for a batch;
//! - [`estimate`]: the work done and left, progress and ETA, from the sums;
//! - [`cache`]: figures of large batches shared between polls;
//! - here: the contract's figures ([`FileStatus`], [`BatchStatus`]) from those.

mod cache;
mod estimate;
mod sums;

use std::collections::BTreeMap;
use std::time::Instant;

use trd_core::domain::{AudioFile, BatchName, Status};
use trd_core::store::figures::{FileGroup, SpeechTally as SpeechSum};
use trd_core::Store;

use cache::FigureCache;
use cache::Hit;
use estimate::Work;
pub use sums::BatchSums;

use crate::error::{ApiError, ApiResult};
use crate::shapes::{BatchStatus, FileStatus, FilesTally, SpeechTally};

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Speech per recognition status, seconds rounded to milliseconds.
fn speech_by_status(sums: &[SpeechSum]) -> BTreeMap<String, SpeechTally> {
    let mut by_status: BTreeMap<String, SpeechTally> = BTreeMap::new();
    for t in sums {
        let tally = by_status.entry(t.status.as_str().to_owned()).or_default();
        tally.seconds += t.seconds;
        tally.segments += t.segments;
    }
    for tally in by_status.values_mut() {
        tally.seconds = round3(tally.seconds);
    }
    by_status
}

/// The figures of files and batches, as the status endpoints serve them.
#[derive(Clone)]
pub struct Figures {
    store: Store,
    cache: FigureCache,
    /// Worker threads one worker process runs, for the estimate before anything is measured.
    cores: usize,
}

impl Figures {
    pub fn new(store: Store, cores: usize) -> Self {
        Figures {
            store,
            cache: FigureCache::default(),
            cores,
        }
    }

    pub async fn file_status(&self, record: &AudioFile) -> ApiResult<FileStatus> {
        let speech = self.store.speech_by_status(&[record.id]).await?;
        Ok(FileStatus {
            accounted_speech: speech_by_status(&speech),
            total_segments: record.total_segments.unwrap_or(0),
            total_speech: round3(record.total_speech.unwrap_or(0.0)),
        })
    }

    /// A batch's figures as of now, bypassing (and refreshing) the shared snapshot: for
    /// answers that must reflect a change just made, like a reset.
    pub async fn batch_status_now(&self, batch: &BatchName) -> ApiResult<BatchStatus> {
        let started = Instant::now();
        let sums = match BatchSums::load(&self.store, batch).await {
            Ok(sums) => sums,
            Err(e) => {
                self.cache.forget(batch);
                return Err(e.into());
            }
        };
        if sums.groups.is_empty() {
            self.cache.forget(batch);
            return Err(ApiError::NotFound(format!(
                "no batch '{batch}' (no registered files in it)"
            )));
        }
        let figures = batch_figures(batch, &sums, self.cores);
        self.cache.put(batch, &figures, started, started.elapsed());
        Ok(figures)
    }

    /// The batch status clients poll: shared figures while fresh (see [`cache`]), else summed
    /// now.
    pub async fn batch_status(&self, batch: &BatchName) -> ApiResult<BatchStatus> {
        match self.cache.get(batch) {
            Some(Hit { figures, refresh }) => {
                if refresh {
                    let (figures, batch) = (self.clone(), batch.clone());
                    tokio::spawn(async move {
                        if let Err(e) = figures.batch_status_now(&batch).await {
                            tracing::warn!(batch = %batch, error = %e.message(), "refreshing batch figures failed");
                        }
                    });
                }
                Ok(figures)
            }
            None => self.batch_status_now(batch).await,
        }
    }
}

/// The contract's batch status from the sums.
pub fn batch_figures(batch: &BatchName, sums: &BatchSums, cores: usize) -> BatchStatus {
    let groups = &sums.groups;
    let sum = |f: &dyn Fn(&FileGroup) -> f64| groups.iter().map(f).sum::<f64>();
    let total_files = sum(&|g| g.files as f64) as u64;
    let total_audio = sum(&|g| g.audio);
    let total_audio_ch = sum(&|g| g.audio_ch);
    let total_speech = sum(&|g| g.speech);
    let past = |stage: Status| {
        if total_files == 0 {
            return 0.0;
        }
        sum(&|g| {
            if g.status >= stage {
                g.files as f64
            } else {
                0.0
            }
        }) / total_files as f64
    };
    let rate = |speech: f64, audio: f64| if audio > 0.0 { speech / audio } else { 0.0 };
    let work = Work::new(sums);
    BatchStatus {
        eta: work.eta(sums, cores),
        batch: batch.as_str().to_owned(),
        accounted_control: files_and_bytes(groups, |g| g.control.as_str()),
        accounted_status: files_and_bytes(groups, |g| g.status.as_str()),
        accounted_recognition: speech_by_status(&sums.recognition),
        normalization: past(Status::Normalized),
        diarization: past(Status::Diarized),
        recognition: past(Status::Recognized),
        progress: work.progress(),
        speech2audio_rate: rate(total_speech, total_audio),
        speech2audio_rate_ch: rate(total_speech, total_audio_ch),
        total_audio: round3(total_audio),
        total_audio_ch: round3(total_audio_ch),
        total_bytes: sum(&|g| g.bytes as f64) as i64,
        total_files,
        total_segments: sum(&|g| g.segments as f64) as i64,
        total_speech: round3(total_speech),
    }
}

fn files_and_bytes(
    groups: &[FileGroup],
    key: impl Fn(&FileGroup) -> &'static str,
) -> BTreeMap<String, FilesTally> {
    let mut acc: BTreeMap<String, FilesTally> = BTreeMap::new();
    for g in groups {
        let tally = acc.entry(key(g).to_owned()).or_default();
        tally.bytes += g.bytes;
        tally.files += g.files;
    }
    acc
}
