//! The protocol of a stage that works on whole files (normalize, diarize): claim the record,
//! do the work under a renewed lease, commit the result and the new status in one update,
//! hand the file to the next stage if it is still running, and only then acknowledge.

use std::future::Future;
use std::time::{Duration, Instant};

use mongodb::bson::{oid::ObjectId, Document};

use super::context::WorkerContext;
use super::failure::{StageFailure, StageTimeout};
use super::stage::Job;
use crate::domain::{AudioFile, Control, Stage};
use crate::logging::ErrorChain;
use crate::queue::WorkItem;

/// Runs `work` on the file of a file-stage message. Work that outlasts
/// `stage_timeout_seconds` is abandoned and counts as a failed attempt; a file fault fails the
/// file here, under this worker's lease, so a file someone else has taken over is left alone.
pub async fn process_file_stage<F, Fut>(
    ctx: &WorkerContext,
    stage: Stage,
    job: Job,
    work: F,
) -> Result<(), StageFailure>
where
    F: FnOnce(AudioFile) -> Fut,
    Fut: Future<Output = Result<Document, StageFailure>>,
{
    let WorkItem::File { file } = job.item else {
        tracing::warn!(stage = %stage, "ignoring a segment message on a file queue");
        return Ok(());
    };
    let holder = ctx.claim_holder();
    let Some(record) = ctx
        .store
        .claim_stage(file, stage, &holder, ctx.lease_ttl())
        .await?
    else {
        return stale_file_hint(ctx, stage, file, job.redelivered).await;
    };
    tracing::info!(file = %file, status = %stage.active_status(), "stage started");
    let started = Instant::now();
    let limit = Duration::from_secs(ctx.settings.stage_timeout_seconds);
    let outcome =
        match tokio::time::timeout(limit, ctx.with_file_lease(file, &holder, work(record))).await {
            Ok(outcome) => outcome,
            Err(_) => Some(Err(StageFailure::attempt(StageTimeout { stage, limit }))),
        };
    let results = match outcome {
        None => {
            tracing::warn!(file = %file, stage = %stage, "lost the file while working on it; dropping the result");
            return discard_if_gone(ctx, file).await;
        }
        Some(Ok(results)) => results,
        Some(Err(StageFailure::Superseded)) => {
            tracing::warn!(file = %file, stage = %stage, "another attempt took the file over; dropping this one's work");
            return discard_if_gone(ctx, file).await;
        }
        Some(Err(failure @ StageFailure::FileFault(_))) => {
            return fail_file(ctx, stage, file, &failure, Some(&holder)).await;
        }
        Some(Err(failure)) => {
            // The lease goes at once, so the next attempt need not wait for it to run out.
            let _ = ctx.store.release_stage(file, &holder).await;
            return Err(failure);
        }
    };
    let Some(done) = ctx
        .store
        .complete_stage(file, stage, &holder, results)
        .await?
    else {
        return discard_if_gone(ctx, file).await;
    };
    let took = started.elapsed();
    tracing::info!(file = %file, status = %done.status, control = %done.control,
        seconds = took.as_secs_f64(), "stage done");
    ctx.record_run(stage, took, done.audio_seconds()).await;
    if done.control == Control::Running {
        // Committed but not handed on: handling the message again re-hands it.
        ctx.hand_on(stage, done.options.lane, file).await?;
    }
    Ok(())
}

/// Ends a file FAILED at `stage` with the failure's reason. With an `owner`, only while that
/// worker still holds the file's lease.
pub async fn fail_file(
    ctx: &WorkerContext,
    stage: Stage,
    file: ObjectId,
    failure: &StageFailure,
    owner: Option<&str>,
) -> Result<(), StageFailure> {
    let reason = failure.reason();
    ctx.store
        .fail(file, stage.active_status(), &reason, owner)
        .await?;
    tracing::warn!(file = %file, status = %stage.active_status(), control = "FAILED",
        %reason, error = %ErrorChain(failure), "file failed");
    Ok(())
}

/// A message whose file cannot be claimed: usually a duplicate or stale hint. One case needs
/// action: the stage was committed but handing on failed, and this is the redelivery.
async fn stale_file_hint(
    ctx: &WorkerContext,
    stage: Stage,
    file: ObjectId,
    redelivered: bool,
) -> Result<(), StageFailure> {
    if !redelivered {
        return Ok(());
    }
    match ctx.store.audiofile(file).await? {
        Some(r) if r.control == Control::Running && r.status == stage.done_status() => {
            Ok(ctx.hand_on(stage, r.options.lane, file).await?)
        }
        _ => Ok(()),
    }
}

/// After losing a file: if it was deleted or reset, remove what this worker may have written.
async fn discard_if_gone(ctx: &WorkerContext, file: ObjectId) -> Result<(), StageFailure> {
    if ctx.store.audiofile(file).await?.is_none() {
        ctx.store.purge_derived(file).await?;
    }
    Ok(())
}
