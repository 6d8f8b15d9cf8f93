//! What a pipeline stage is to the worker that runs it: a handler of one message at a time,
//! and a sweeper of work whose worker vanished.

use std::future::Future;

use super::context::WorkerContext;
use super::failure::StageFailure;
use super::sweeper;
use crate::domain::Stage;
use crate::queue::WorkItem;
use crate::store::StoreError;

/// One message to handle.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub item: WorkItem,
    /// The broker delivered this message before (its worker died, or it was returned).
    pub redelivered: bool,
}

/// One pipeline stage.
pub trait StageWorker: Send + Sync + 'static {
    const STAGE: Stage;

    /// Handles one message; the outcome alone decides what becomes of it
    /// ([`Disposition::of`](super::failure::Disposition::of)).
    fn handle(
        &self,
        ctx: &WorkerContext,
        job: Job,
    ) -> impl Future<Output = Result<(), StageFailure>> + Send;

    /// Gets ready before the first message is taken (the recognizer loads its default model),
    /// so a message is never held by a worker that is still starting: a worker killed while
    /// starting costs no file a delivery attempt.
    fn prepare(&self, _ctx: &WorkerContext) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Work the process does beside its queue, for as long as it runs (the recognizer serves
    /// live streams); it ends when `ctx.shutdown` is cancelled.
    fn serve(&self, _ctx: WorkerContext) -> impl Future<Output = ()> + Send + 'static {
        async {}
    }

    /// Re-queues work whose worker vanished. The default covers file-level stages.
    fn sweep(&self, ctx: &WorkerContext) -> impl Future<Output = Result<(), StoreError>> + Send {
        sweeper::requeue_abandoned_files(ctx, Self::STAGE)
    }
}
