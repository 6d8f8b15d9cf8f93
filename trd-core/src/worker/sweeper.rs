//! Work whose worker vanished (crashed, killed, cut off) holds a lease nobody renews; once it
//! runs out, the sweeper puts the work back on its queue.

use super::context::WorkerContext;
use crate::domain::Stage;
use crate::logging::ErrorChain;
use crate::queue::WorkItem;
use crate::store::StoreError;

/// Re-queues the files of a file-level stage whose lease ran out. A failed publish is left to
/// the next sweep.
pub async fn requeue_abandoned_files(ctx: &WorkerContext, stage: Stage) -> Result<(), StoreError> {
    for file in ctx.store.abandoned_in_stage(stage).await? {
        tracing::warn!(file = %file, stage = %stage, "re-queueing a file whose worker vanished");
        let lane = ctx.store.lane_of(file).await?;
        if let Err(e) = ctx
            .queue
            .publish(stage, lane, &WorkItem::File { file })
            .await
        {
            tracing::warn!(file = %file, stage = %stage, error = %ErrorChain(&e), "could not re-queue; the next sweep tries again");
        }
    }
    Ok(())
}
