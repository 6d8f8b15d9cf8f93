//! Recognize now: one request that waits for its own transcript (the OpenAI, whisper, UWebASR,
//! DeepSpeech and Nanotrix faces, and `POST /trd/recognize`). The job is an ordinary record,
//! run by the same workers as a batch but in the interactive lane (`Lane::Interactive`), so it
//! never queues behind batch work; the API process only submits it and follows what the
//! workers store.
//!
//! - [`Jobs::admit`]: a slot among `interactive_in_flight`, or [`JobError::Busy`] at once.
//! - [`Jobs::recognize_now`]: the audio stored, the record started; a [`LiveJob`] back.
//! - [`LiveJob::decoded`] and [`LiveJob::progress`]: the job as the workers move it, the
//!   recognized segments in order as soon as every earlier one is done.
//! - Dropping the [`LiveJob`] (the response ended, or its client went away) deletes a
//!   temporary job with its segments, PCM and audio; the workers drop its remaining segments
//!   when they see it gone. A temporary job whose API process died is deleted by
//!   [`Jobs::discard_expired`] in whichever API process runs next, once its `discard_after`
//!   passes (a lease, renewed while the request lives).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use mongodb::bson::{oid::ObjectId, DateTime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use trd_core::domain::{
    AudioFile, Control, FileLocation, Lane, Segment, SegmentStatus, StartOptions, Status,
};

use super::{Audio, JobError, JobResult, Jobs};

/// How often a waiting request reads the job again. MongoDB is the truth and any API process
/// may serve the request, so following is polling; a tenth of a second is small beside
/// recognition and costs one indexed query.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// What a client is told to wait before trying again when every slot is taken.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// How long a request waits for a normalizer to take its job. Normalizers keep slots for the
/// interactive lane, so only a service without a free normalizer (none running, all stuck)
/// leaves a job waiting this long; the client hears 503 rather than waiting for ever.
const PICKUP_WAIT: Duration = Duration::from_secs(30);

/// The interactive requests one API process serves at once (`interactive_in_flight`).
#[derive(Clone)]
pub struct InteractiveSlots(Arc<Semaphore>);

impl InteractiveSlots {
    pub fn new(slots: usize) -> Self {
        InteractiveSlots(Arc::new(Semaphore::new(slots)))
    }
}

/// A slot held for one interactive request; released when the request's job is dropped.
pub struct Admission(#[allow(dead_code)] OwnedSemaphorePermit);

/// One recognize-now request.
pub struct NowRequest {
    /// Where the audio is stored: a private batch for a temporary job, the caller's batch for
    /// a kept one.
    pub location: FileLocation,
    pub audio: Audio,
    /// Model, hints, diarization: what a batch start would be given.
    pub options: StartOptions,
    /// Keep the job (and list it like any file) instead of deleting it after the response.
    pub keep: bool,
}

impl Jobs {
    /// Takes a slot for an interactive request, or refuses at once: above the bound the
    /// answer is 503 with `Retry-After`, never a request left to time out.
    pub fn admit(&self) -> JobResult<Admission> {
        self.interactive
            .0
            .clone()
            .try_acquire_owned()
            .map(Admission)
            .map_err(|_| JobError::Busy {
                retry_after: RETRY_AFTER_SECONDS,
            })
    }

    /// Stores the audio, registers and starts it in the interactive lane. From here on the
    /// returned [`LiveJob`] owns the job: dropping it deletes a temporary one.
    pub async fn recognize_now(
        &self,
        admission: Admission,
        request: NowRequest,
    ) -> JobResult<LiveJob> {
        let NowRequest {
            location,
            audio,
            mut options,
            keep,
        } = request;
        if matches!(&audio, Audio::Bytes(bytes) if bytes.is_empty()) {
            return Err(JobError::EmptyAudio);
        }
        options.lane = Lane::Interactive;
        options.discard_after = (!keep).then(|| self.hold_until());
        let checked = self.check_options(options).await?;
        let record = self.submit(&location, audio).await?;
        let live = LiveJob::new(self.clone(), record.id, keep, admission);
        if record.size == 0 {
            return Err(JobError::EmptyAudio);
        }
        self.start(record.id, &checked).await?;
        Ok(live)
    }

    /// Deletes the temporary jobs nobody waits for any more (their API process died); run
    /// periodically by every API process.
    pub async fn discard_expired(&self) -> JobResult<usize> {
        let expired = self.store.expired_temporary_jobs().await?;
        let mut deleted = 0;
        for id in expired {
            match self.delete(id, true).await {
                Ok(_) => deleted += 1,
                Err(JobError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    fn hold_until(&self) -> DateTime {
        let lease = Duration::from_secs(self.settings.lease_seconds);
        DateTime::from_system_time(std::time::SystemTime::now() + lease)
    }
}

/// Runs [`Jobs::discard_expired`] every quarter lease until shutdown, so a temporary job
/// whose API process died goes within about `lease_seconds` and a quarter.
pub async fn discard_expired_jobs(jobs: Jobs, shutdown: tokio_util::sync::CancellationToken) {
    let every = Duration::from_secs(jobs.settings.lease_seconds).div_f64(4.0);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match jobs.discard_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "temporary jobs nobody waits for deleted"),
            Err(e) => {
                tracing::warn!(error = %trd_core::logging::ErrorChain(&e), "could not discard expired temporary jobs; trying again")
            }
        }
    }
}

/// Sweeps derived data until shutdown: every quarter lease the normalized audio of files ended
/// more than `pcm_retention_seconds` ago ([`Store::sweep_pcm`]), and the segments a delete or
/// reset interrupted between its two writes left behind ([`Store::sweep_orphaned_segments`])
/// as often as its own cost allows (`next_orphan_scan`).
///
/// [`Store::sweep_pcm`]: trd_core::Store::sweep_pcm
/// [`Store::sweep_orphaned_segments`]: trd_core::Store::sweep_orphaned_segments
pub async fn sweep_derived_data(jobs: Jobs, shutdown: tokio_util::sync::CancellationToken) {
    let every = Duration::from_secs(jobs.settings.lease_seconds).div_f64(4.0);
    let retention = Duration::from_secs(jobs.settings.pcm_retention_seconds);
    let mut orphan_scan_due = Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match jobs.store.sweep_pcm(retention).await {
            Ok(0) => {}
            Ok(files) => tracing::info!(files, "normalized audio dropped"),
            Err(e) => {
                tracing::warn!(error = %trd_core::logging::ErrorChain(&e), "could not sweep normalized audio; trying again")
            }
        }
        if Instant::now() < orphan_scan_due {
            continue;
        }
        let began = Instant::now();
        match jobs.store.sweep_orphaned_segments().await {
            Ok(0) => {}
            Ok(files) => tracing::info!(files, "segments of deleted files dropped"),
            Err(e) => {
                tracing::warn!(error = %trd_core::logging::ErrorChain(&e), "could not sweep orphaned segments; trying again")
            }
        }
        orphan_scan_due = next_orphan_scan(began, began.elapsed());
    }
}

/// How many times its own duration an orphan scan waits before the next one.
const ORPHAN_SCAN_SPACING: u32 = 20;

/// When the scan for orphaned segments runs again after one that began at `began` and took
/// `took`. It reads every segment's file id, which grows with the archive: spaced by its own
/// cost, it takes at most a twentieth of the server's time however large the archive. While it
/// is quick (a store of ordinary size) the spacing is below the sweep's period, so it runs at
/// every sweep and an orphan goes within a quarter lease.
fn next_orphan_scan(began: Instant, took: Duration) -> Instant {
    began + took * ORPHAN_SCAN_SPACING
}

/// A running interactive job and the request waiting on it.
pub struct LiveJob {
    jobs: Jobs,
    id: ObjectId,
    keep: bool,
    started: Instant,
    /// Pushes a temporary job's `discard_after` forward while the request lives.
    hold: Option<tokio::task::JoinHandle<()>>,
    _admission: Admission,
}

/// The job as far as it got: the record and the recognized segments, in order, that no
/// unrecognized segment precedes.
#[derive(Debug, Clone)]
pub struct Progress {
    pub record: AudioFile,
    pub segments: Vec<Segment>,
    /// How many of `segments` (at the start) an earlier update already carried.
    pub reported: usize,
}

impl Progress {
    /// The job will not change any more (FINISHED or FAILED); `segments` are all of them.
    pub fn is_final(&self) -> bool {
        matches!(self.record.control, Control::Finished | Control::Failed)
    }

    /// The segments this update adds.
    pub fn fresh(&self) -> &[Segment] {
        &self.segments[self.reported..]
    }
}

impl LiveJob {
    fn new(jobs: Jobs, id: ObjectId, keep: bool, admission: Admission) -> Self {
        let hold = (!keep).then(|| {
            let jobs = jobs.clone();
            let every = Duration::from_secs(jobs.settings.lease_seconds) / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let until = jobs.hold_until();
                    if let Ok(false) = jobs.store.hold_temporary_job(id, until).await {
                        return;
                    }
                }
            })
        });
        LiveJob {
            jobs,
            id,
            keep,
            started: Instant::now(),
            hold,
            _admission: admission,
        }
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// Seconds since the request was admitted.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until the audio is decoded, so that a file that cannot be read is answered with
    /// an error status before any of the response is sent. A job that failed is
    /// [`JobError::Failed`].
    pub async fn decoded(&self) -> JobResult<AudioFile> {
        loop {
            let record = self.jobs.record(self.id).await?;
            if record.control == Control::Failed {
                return Err(JobError::failed(&record));
            }
            if record.status >= Status::Normalized {
                return Ok(record);
            }
            if record.status == Status::Initial && self.started.elapsed() > PICKUP_WAIT {
                return Err(JobError::NoWorker {
                    waited: PICKUP_WAIT,
                    retry_after: RETRY_AFTER_SECONDS,
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The job's progress, an update each time the in-order recognized prefix grows, ending
    /// with the final update. The stream owns the job: dropping it (the client went away)
    /// deletes a temporary job.
    pub fn progress(self) -> impl Stream<Item = JobResult<Progress>> + Send {
        use futures::StreamExt;
        let updates = self.jobs.follow(self.id, POLL_EVERY);
        // The stream owns the job: `live` moves into it and is dropped with it.
        let live = self;
        let mut reported = 0;
        updates.filter_map(move |update| {
            let _owner = &live;
            let progress = match update {
                Err(e) => Some(Err(e)),
                Ok(update) => {
                    let final_ = update.is_final();
                    // Segments exist from diarization on; before it ends they may be
                    // incomplete.
                    let listed = update.record.status >= Status::Diarized || final_;
                    let segments: Vec<Segment> = if final_ {
                        update.segments
                    } else if listed {
                        update
                            .segments
                            .into_iter()
                            .take_while(|seg| seg.status != SegmentStatus::Processing)
                            .collect()
                    } else {
                        Vec::new()
                    };
                    (final_ || segments.len() > reported).then(|| {
                        let progress = Progress {
                            record: update.record,
                            segments,
                            reported,
                        };
                        reported = progress.segments.len();
                        Ok(progress)
                    })
                }
            };
            std::future::ready(progress)
        })
    }
}

impl Drop for LiveJob {
    fn drop(&mut self) {
        if let Some(hold) = self.hold.take() {
            hold.abort();
        }
        if self.keep {
            return;
        }
        let (jobs, id) = (self.jobs.clone(), self.id);
        // Deleting needs the runtime; a request is always dropped inside it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                match jobs.delete(id, true).await {
                    Ok(_) | Err(JobError::NotFound(_)) => {
                        tracing::debug!(file = %id, "temporary job deleted")
                    }
                    // `discard_after` runs out and the janitor deletes it.
                    Err(e) => tracing::warn!(file = %id, error = %trd_core::logging::ErrorChain(&e), "could not delete a temporary job; it is discarded when its hold runs out"),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphan_scans_run_at_every_sweep_while_quick_and_spaced_by_their_cost_when_slow() {
        let began = Instant::now();
        let sweep_period = Duration::from_secs(60) / 4;
        // A store of ordinary size: the scan is due again before the next sweep.
        assert!(next_orphan_scan(began, Duration::from_millis(30)) < began + sweep_period);
        // A large archive: a 5-second scan waits 100 s, a twentieth of the server's time.
        let slow = next_orphan_scan(began, Duration::from_secs(5));
        assert!(slow > began + 6 * sweep_period);
        assert_eq!(slow - began, Duration::from_secs(100));
    }
}
