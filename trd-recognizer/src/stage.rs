//! The recognize stage. Its queue carries two kinds of message: a file (fan it out into one
//! message per pending segment) and a segment (recognize it). Segments of one file are
//! recognized in parallel by every recognizer process; the file closes when the last is stored.

use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use trd_core::domain::{AudioFile, Control, Stage};
use trd_core::store::StoreError;
use trd_core::worker::{record_run, Disposition, Job, StageWorker, WorkerContext};
use trd_core::WorkItem;

use crate::hints::{unknown_words, Hints};
use crate::models::{self, LoadedModel, ModelError};
use crate::recognize::recognize_segment;

pub struct Recognizer;

impl StageWorker for Recognizer {
    const STAGE: Stage = Stage::Recognize;

    async fn handle(&self, ctx: &WorkerContext, job: Job) -> Disposition {
        let result = match job.item {
            WorkItem::File { file } => fan_out(ctx, file).await,
            WorkItem::Segment { file, segment } => recognize_one(ctx, file, segment).await,
        };
        match result {
            Ok(()) => Disposition::Ack,
            Err(e) => e.into(),
        }
    }

    async fn sweep(&self, ctx: &WorkerContext) -> Result<(), StoreError> {
        for (file, segment) in ctx.store.abandoned_segments().await? {
            tracing::warn!(file = %file, segment = %segment, "re-queueing a segment whose recognizer vanished");
            let _ = ctx
                .queue
                .publish(Stage::Recognize, &WorkItem::Segment { file, segment })
                .await;
        }
        for file in ctx.store.recognition_complete_but_open().await? {
            close_file(ctx, file).await?;
        }
        Ok(())
    }
}

async fn fan_out(ctx: &WorkerContext, file: ObjectId) -> Result<(), StoreError> {
    let Some(record) = ctx.store.begin_recognition(file).await? else {
        return Ok(());
    };
    tracing::info!(file = %file, status = %record.status, "stage started");
    if !record.options.hints.is_empty() {
        warn_about_unknown_hints(ctx, &record).await?;
    }
    let pending = ctx.store.pending_segment_ids(file).await?;
    if pending.is_empty() {
        return close_file(ctx, file).await;
    }
    for segment in pending {
        if let Err(e) = ctx
            .queue
            .publish(Stage::Recognize, &WorkItem::Segment { file, segment })
            .await
        {
            // Redelivery of the file message fans out again; duplicates are no-ops.
            return Err(StoreError::Unavailable(e.to_string()));
        }
    }
    Ok(())
}

async fn recognize_one(
    ctx: &WorkerContext,
    file: ObjectId,
    segment: ObjectId,
) -> Result<(), StoreError> {
    let Some(record) = ctx.store.audiofile(file).await? else {
        return Ok(()); // deleted or reset: nothing to do
    };
    if record.control != Control::Running {
        return Ok(()); // paused: starting again re-queues what is pending
    }
    let model = match model_for(ctx, &record).await {
        Ok(m) => m,
        Err(e) => {
            ctx.store
                .fail(file, record.status, &e.to_string(), None)
                .await?;
            return Ok(());
        }
    };
    let Some(claimed) = ctx
        .store
        .claim_segment(segment, &ctx.owner, ctx.lease_ttl())
        .await?
    else {
        return Ok(()); // done already, or another recognizer holds it
    };
    let rate = ctx.settings.sample_rate;
    let heard = claimed.heard_span();
    let first = (heard.start * rate as f64).round() as u64;
    let last = (heard.end * rate as f64).round() as u64;
    let samples = ctx
        .store
        .read_pcm(file, claimed.channel, first, last)
        .await?;
    let offset = first as f64 / rate as f64;
    let limit = recognition_time_limit(claimed.end - claimed.start);
    let hints = Hints::new(&record.options.hints);
    let started = std::time::Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        recognize_segment(&model, &samples, rate, offset, limit, &hints)
    })
    .await
    .map_err(|e| StoreError::Malformed(format!("recognition crashed: {e}")))?;
    let took = started.elapsed();
    if !ctx
        .store
        .complete_segment(segment, &ctx.owner, &outcome)
        .await?
    {
        return Ok(());
    }
    tracing::info!(file = %file, segment = %segment, status = ?outcome.status,
        seconds = took.as_secs_f64(), "segment recognized");
    record_run(ctx, Stage::Recognize, took, claimed.end - claimed.start).await;
    if ctx.store.count_pending_segments(file).await? == 0 {
        close_file(ctx, file).await?;
    }
    Ok(())
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
    }
    Ok(())
}

async fn model_for(
    ctx: &WorkerContext,
    record: &AudioFile,
) -> Result<Arc<LoadedModel>, ModelError> {
    let id = record
        .options
        .model
        .clone()
        .unwrap_or_else(|| ctx.settings.default_model.clone());
    let dir = ctx
        .settings
        .model_dir(&id)
        .ok_or_else(|| ModelError::Unknown(id.clone()))?
        .to_path_buf();
    tokio::task::spawn_blocking(move || models::load(&id, &dir))
        .await
        .unwrap_or_else(|e| {
            Err(ModelError::Unloadable {
                id: "?".into(),
                path: e.to_string(),
            })
        })
}

/// Recognition runs at a small fraction of real time; far beyond that something is wrong.
fn recognition_time_limit(audio_seconds: f64) -> Duration {
    Duration::from_secs_f64((audio_seconds * 10.0).max(60.0))
}
