//! The recognize stage. Its queue carries two kinds of message: a file (fan it out into one
//! message per run of segments still to recognize) and a segment (recognize the run that holds
//! it). The runs of one file are recognized in parallel by every recognizer process; the file
//! closes when its last segment is stored.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use tokio::task::JoinError;
use trd_core::domain::{AudioFile, Control, Segment, SegmentStatus, Stage};
use trd_core::logging::ErrorChain;
use trd_core::store::StoreError;
use trd_core::worker::{Job, StageFailure, StageWorker, WorkerContext};
use trd_core::WorkItem;

use crate::hints::{unknown_words, Hints};
use crate::models::{self, Decoding, LoadedModel, ModelError};
use crate::recognize::recognize_in_run;
use crate::runs::{group_into_runs, run_of};

pub struct Recognizer;

impl StageWorker for Recognizer {
    const STAGE: Stage = Stage::Recognize;

    async fn handle(&self, ctx: &WorkerContext, job: Job) -> Result<(), StageFailure> {
        match job.item {
            WorkItem::File { file } => fan_out(ctx, file).await,
            WorkItem::Segment { file, segment } => recognize_run(ctx, file, segment).await,
        }
    }

    /// Loading the default model takes seconds; done before consuming, no message waits on it.
    /// A model that cannot be loaded is only logged here: each file naming it fails with the
    /// reason when it gets there.
    async fn prepare(&self, ctx: &WorkerContext) {
        let id = ctx.settings.default_model.clone();
        match load_model(ctx, id.clone()).await {
            Ok(_) => tracing::info!(model = %id, "recognition model ready"),
            Err(e) => {
                tracing::warn!(model = %id, error = %ErrorChain(&e), "the default recognition model cannot be loaded")
            }
        }
    }

    /// Live streams, beside the queue's batch and interactive work.
    fn serve(&self, ctx: WorkerContext) -> impl std::future::Future<Output = ()> + Send + 'static {
        crate::live::serve_streams(ctx)
    }

    async fn sweep(&self, ctx: &WorkerContext) -> Result<(), StoreError> {
        for (file, segment) in ctx.store.abandoned_segments().await? {
            tracing::warn!(file = %file, segment = %segment, "re-queueing a segment whose recognizer vanished");
            let lane = ctx.store.lane_of(file).await?;
            let _ = ctx
                .queue
                .publish(Stage::Recognize, lane, &WorkItem::Segment { file, segment })
                .await;
        }
        for file in ctx.store.recognition_complete_but_open().await? {
            close_file(ctx, file).await?;
        }
        // A diarized file whose hand-on was lost: its fan-out is published again.
        trd_core::worker::sweeper::requeue_unqueued_files(ctx, Stage::Recognize).await
    }
}

/// A blocking task of the recognizer that died (a panic in Vosk's bindings): the attempt
/// failed, not the file.
#[derive(Debug, thiserror::Error)]
enum Crashed {
    #[error("recognition crashed: {0}")]
    Recognizing(#[source] JoinError),
    #[error("loading recognition model '{id}' crashed: {source}")]
    LoadingModel {
        id: String,
        #[source]
        source: JoinError,
    },
}

/// One message per run (see [`crate::runs`]) that still has segments to recognize, naming
/// its first such segment.
async fn fan_out(ctx: &WorkerContext, file: ObjectId) -> Result<(), StageFailure> {
    let Some(record) = ctx.store.begin_recognition(file).await? else {
        return Ok(());
    };
    tracing::info!(file = %file, status = %record.status, "stage started");
    if !record.options.hints.is_empty() {
        warn_about_unknown_hints(ctx, &record).await?;
    }
    let segments = ctx.store.segments_of(file).await?;
    let runs = group_into_runs(segments, ctx.settings.recognition_run_seconds);
    let pending: Vec<ObjectId> = runs
        .iter()
        .filter_map(|run| run.iter().find(|s| s.status == SegmentStatus::Processing))
        .map(|s| s.id)
        .collect();
    if pending.is_empty() {
        return Ok(close_file(ctx, file).await?);
    }
    for segment in pending {
        // On failure, redelivery of the file message fans out again; duplicates are no-ops.
        ctx.queue
            .publish(
                Stage::Recognize,
                record.options.lane,
                &WorkItem::Segment { file, segment },
            )
            .await?;
    }
    Ok(())
}

/// Recognizes the run that holds `segment`: claims the run's segments no one has recognized
/// or holds, then lets one new recognizer hear the run in order up to the last of them,
/// storing each claimed segment as soon as it is done. Segments of the run that are already
/// done (a previous attempt died half-way) are heard again but not stored, so the recognizer
/// reaches each segment having heard exactly what it always hears there, and results do not
/// depend on who did the work or how often.
async fn recognize_run(
    ctx: &WorkerContext,
    file: ObjectId,
    segment: ObjectId,
) -> Result<(), StageFailure> {
    let Some(record) = ctx.store.audiofile(file).await? else {
        return Ok(()); // deleted or reset: nothing to do
    };
    if record.control != Control::Running {
        return Ok(()); // paused: starting again re-queues what is pending
    }
    let model = model_for(ctx, &record).await?;
    let segments = ctx.store.segments_of(file).await?;
    let runs = group_into_runs(segments, ctx.settings.recognition_run_seconds);
    let Some(run) = run_of(runs, segment) else {
        return Ok(()); // the file was diarized again since: its new segments have messages
    };
    let mut claimed = HashSet::new();
    for s in run.iter().filter(|s| s.status == SegmentStatus::Processing) {
        if let Some(s) = ctx
            .store
            .claim_segment(s.id, &ctx.owner, ctx.lease_ttl())
            .await?
        {
            claimed.insert(s.id);
        }
    }
    let Some(last) = run.iter().rposition(|s| claimed.contains(&s.id)) else {
        return Ok(()); // done already, or another recognizer holds it
    };

    let rate = ctx.settings.sample_rate;
    let hints = Arc::new(Hints::with_avoided(
        &record.options.hints,
        &record.options.avoided_words,
    ));
    let mut recognizer = None;
    for (i, s) in run[..=last].iter().enumerate() {
        if ctx.shutdown.is_cancelled() {
            return hand_back(ctx, &record, &run, &claimed).await;
        }
        if i > 0 && !still_running(ctx, file).await? {
            // Paused (or gone): what is left waits for the next start, which queues it again.
            return Ok(release(ctx, &claimed).await?);
        }
        let heard = s.heard_span();
        let first_sample = (heard.start * rate as f64).round() as u64;
        let last_sample = (heard.end * rate as f64).round() as u64;
        let samples = ctx
            .store
            .read_pcm(file, s.channel, first_sample, last_sample)
            .await?;
        let offset = first_sample as f64 / rate as f64;
        let limit = recognition_time_limit(s.end - s.start);
        let (model, hints) = (model.clone(), hints.clone());
        let started = std::time::Instant::now();
        let (kept, outcome) = tokio::task::spawn_blocking(move || {
            recognize_in_run(recognizer, &model, rate, &samples, offset, limit, &hints)
        })
        .await
        .map_err(|e| StageFailure::attempt(Crashed::Recognizing(e)))?;
        recognizer = kept;
        let took = started.elapsed();
        let mine = claimed.remove(&s.id);
        if !claimed.is_empty() {
            let rest: Vec<ObjectId> = claimed.iter().copied().collect();
            ctx.store
                .renew_segment_leases(&rest, &ctx.owner, ctx.lease_ttl())
                .await?;
        }
        if !mine {
            continue; // heard only so that the recognizer hears the run as it always does
        }
        if ctx
            .store
            .complete_segment(s.id, &ctx.owner, &outcome)
            .await?
        {
            tracing::info!(file = %file, segment = %s.id, status = ?outcome.status,
                seconds = took.as_secs_f64(), "segment recognized");
            ctx.record_run(Stage::Recognize, took, s.end - s.start)
                .await;
        }
    }
    if ctx.store.count_pending_segments(file).await? == 0 {
        close_file(ctx, file).await?;
    }
    Ok(())
}

/// Shutdown mid-run: the segments not yet heard go back, with a message, so that another
/// recognizer takes them at once. Without the message they keep their leases, and the sweeper
/// re-queues them when the leases run out.
async fn hand_back(
    ctx: &WorkerContext,
    record: &AudioFile,
    run: &[Segment],
    claimed: &HashSet<ObjectId>,
) -> Result<(), StageFailure> {
    let Some(next) = run.iter().find(|s| claimed.contains(&s.id)) else {
        return Ok(());
    };
    let file = record.id;
    let message = WorkItem::Segment {
        file,
        segment: next.id,
    };
    if ctx
        .queue
        .publish(Stage::Recognize, record.options.lane, &message)
        .await
        .is_ok()
    {
        release(ctx, claimed).await?;
    }
    tracing::info!(file = %file, segments = claimed.len(), "shutting down: segments handed back");
    Ok(())
}

async fn release(ctx: &WorkerContext, claimed: &HashSet<ObjectId>) -> Result<(), StoreError> {
    for id in claimed {
        ctx.store.release_segment(*id, &ctx.owner).await?;
    }
    Ok(())
}

async fn still_running(ctx: &WorkerContext, file: ObjectId) -> Result<bool, StoreError> {
    Ok(ctx
        .store
        .audiofile(file)
        .await?
        .is_some_and(|r| r.control == Control::Running))
}

/// Hints the model cannot produce are listed on the record, so the caller learns why they had
/// no effect. A model that cannot be loaded is reported by the segments' recognition instead.
async fn warn_about_unknown_hints(
    ctx: &WorkerContext,
    record: &AudioFile,
) -> Result<(), StoreError> {
    let Ok(model) = model_for(ctx, record).await else {
        return Ok(());
    };
    let model_id = record
        .options
        .model
        .clone()
        .unwrap_or_else(|| ctx.settings.default_model.clone());
    let warnings: Vec<String> = unknown_words(&record.options.hints, |w| model.knows_word(w))
        .into_iter()
        .map(|w| {
            format!("hint '{w}' is not in the vocabulary of model '{model_id}' and has no effect")
        })
        .collect();
    for warning in &warnings {
        tracing::warn!(file = %record.id, %warning, "unusable hint");
    }
    ctx.store.add_warnings(record.id, &warnings).await
}

async fn close_file(ctx: &WorkerContext, file: ObjectId) -> Result<(), StoreError> {
    if let Some(done) = ctx.store.finish_recognition(file).await? {
        tracing::info!(file = %file, status = %done.status, control = %done.control, "file finished");
        if ctx.settings.pcm_retention_seconds == 0 {
            // Nothing reads a finished file's normalized audio; the API's sweep removes it
            // later if this fails.
            if let Err(e) = ctx.store.delete_pcm(file).await {
                tracing::warn!(file = %file, error = %trd_core::logging::ErrorChain(&e), "could not drop the normalized audio; the sweep will");
            }
        }
    }
    Ok(())
}

/// The file's model. One that is not configured or cannot be loaded is the file's fault (its
/// start named it): the file fails with the reason.
async fn model_for(
    ctx: &WorkerContext,
    record: &AudioFile,
) -> Result<Arc<LoadedModel>, StageFailure> {
    let id = record
        .options
        .model
        .clone()
        .unwrap_or_else(|| ctx.settings.default_model.clone());
    load_model(ctx, id).await
}

/// The model `id`, loaded once per process (see [`models::load`]).
pub(crate) async fn load_model(
    ctx: &WorkerContext,
    id: String,
) -> Result<Arc<LoadedModel>, StageFailure> {
    let dir = ctx
        .settings
        .model_dir(&id)
        .ok_or_else(|| StageFailure::file_fault(ModelError::Unknown(id.clone())))?
        .to_path_buf();
    let loading = id.clone();
    let decoding = Decoding {
        frames_per_chunk: ctx.settings.recognizer_frames_per_chunk,
    };
    tokio::task::spawn_blocking(move || models::load(&loading, &dir, decoding))
        .await
        .map_err(|source| StageFailure::attempt(Crashed::LoadingModel { id, source }))?
        .map_err(StageFailure::file_fault)
}

/// Recognition runs at a small fraction of real time; far beyond that something is wrong.
fn recognition_time_limit(audio_seconds: f64) -> Duration {
    Duration::from_secs_f64((audio_seconds * 10.0).max(60.0))
}
