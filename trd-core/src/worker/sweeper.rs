//! Work whose worker vanished (crashed, killed, cut off) holds a lease nobody renews; once it
//! runs out, the sweeper puts the work back on its queue. Work whose message never reached a
//! queue (a publish lost between the store's commit and the broker) waits unclaimed while the
//! queue is empty; the sweeper publishes it again.

use std::time::{Duration, SystemTime};

use mongodb::bson::DateTime;

use super::context::WorkerContext;
use crate::domain::Stage;
use crate::logging::ErrorChain;
use crate::queue::WorkItem;
use crate::store::StoreError;

/// Re-queues the files of a file-level stage whose lease ran out, and the files waiting for the
/// stage whose message was lost. A failed publish is left to the next sweep.
pub async fn requeue_abandoned_files(ctx: &WorkerContext, stage: Stage) -> Result<(), StoreError> {
    for file in ctx.store.abandoned_in_stage(stage).await? {
        tracing::warn!(file = %file, stage = %stage, "re-queueing a file whose worker vanished");
        requeue(ctx, stage, file).await?;
    }
    requeue_unqueued_files(ctx, stage).await
}

/// Re-queues the files that have waited for `stage` longer than a lease while its queues hold
/// no message: a message a worker holds is claimed at once, so such a file's message was lost.
/// A duplicate, should the guess be wrong, finds the file claimed and is dropped.
pub async fn requeue_unqueued_files(ctx: &WorkerContext, stage: Stage) -> Result<(), StoreError> {
    // While RabbitMQ does not answer, nothing can be told (or published).
    if !matches!(ctx.queue.depth(stage).await, Ok(0)) {
        return Ok(());
    }
    let since = SystemTime::now()
        .checked_sub(Duration::from_secs(ctx.settings.lease_seconds))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    for file in ctx
        .store
        .waiting_for_stage(stage, DateTime::from_system_time(since))
        .await?
    {
        tracing::warn!(file = %file, stage = %stage, "re-queueing a file whose message was lost");
        requeue(ctx, stage, file).await?;
    }
    Ok(())
}

async fn requeue(
    ctx: &WorkerContext,
    stage: Stage,
    file: mongodb::bson::oid::ObjectId,
) -> Result<(), StoreError> {
    let lane = ctx.store.lane_of(file).await?;
    if let Err(e) = ctx
        .queue
        .publish(stage, lane, &WorkItem::File { file })
        .await
    {
        tracing::warn!(file = %file, stage = %stage, error = %ErrorChain(&e), "could not re-queue; the next sweep tries again");
    }
    Ok(())
}
