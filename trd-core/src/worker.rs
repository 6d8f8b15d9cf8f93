//! The loop every pipeline worker runs: consume its stage queue, let the stage handle each
//! message, acknowledge only after the stage committed, fail files whose messages were
//! dead-lettered, re-queue work whose worker vanished, and stop cleanly on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Settings;
use crate::domain::{AudioFile, Control, Stage};
use crate::queue::{next_delivery, Queue, WorkItem};
use crate::store::{Store, StoreError};
use mongodb::bson::{oid::ObjectId, Document};

/// What to do with a message once its handler returns.
#[derive(Debug)]
pub enum Disposition {
    /// Done, or nothing to do (stale or duplicate hint): acknowledge.
    Ack,
    /// A transient failure (a dependency is down): put the message back. Each return counts
    /// towards the queue's delivery limit.
    Retry(String),
}

impl From<StoreError> for Disposition {
    fn from(e: StoreError) -> Self {
        Disposition::Retry(e.to_string())
    }
}

impl From<crate::queue::QueueError> for Disposition {
    fn from(e: crate::queue::QueueError) -> Self {
        Disposition::Retry(e.to_string())
    }
}

/// Everything a stage handler may use.
#[derive(Clone)]
pub struct WorkerContext {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub queue: Queue,
    /// Identifies this worker process in leases.
    pub owner: String,
    pub shutdown: CancellationToken,
}

impl WorkerContext {
    pub async fn connect(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let store = Store::connect(&settings).await?;
        let queue = Queue::connect(&settings).await?;
        let owner = format!(
            "{}:{}:{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Ok(Self {
            settings: Arc::new(settings),
            store,
            queue,
            owner,
            shutdown,
        })
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.settings.lease_seconds)
    }

    /// Publishes the file to the queue of the next stage, if it has one.
    pub async fn hand_on(
        &self,
        stage: Stage,
        file: mongodb::bson::oid::ObjectId,
    ) -> crate::queue::QueueResult<()> {
        if let Some(next) = stage.next() {
            self.queue.publish(next, &WorkItem::File { file }).await?;
        }
        Ok(())
    }

    /// Keeps the file's lease alive while `work` runs. Resolves to `None` if the lease was lost
    /// (the file was deleted, reset, or taken over): the work's result must then be dropped.
    pub async fn with_file_lease<F: Future>(
        &self,
        file: mongodb::bson::oid::ObjectId,
        work: F,
    ) -> Option<F::Output> {
        let ttl = self.lease_ttl();
        let renew = async {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match self.store.renew_lease(file, &self.owner, ttl).await {
                    Ok(true) | Err(_) => continue,
                    Ok(false) => return,
                }
            }
        };
        tokio::select! {
            out = work => Some(out),
            () = renew => None,
        }
    }
}

/// One message to handle.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub item: WorkItem,
    /// The broker delivered this message before (its worker died, or it was returned).
    pub redelivered: bool,
}

/// Why a stage could not finish a file.
#[derive(Debug)]
pub enum StageFailure {
    /// The file itself is the problem (undecodable audio…): it ends FAILED with this reason.
    Fatal(String),
    /// A dependency is the problem: the work is retried later.
    Transient(String),
}

impl From<StoreError> for StageFailure {
    fn from(e: StoreError) -> Self {
        StageFailure::Transient(e.to_string())
    }
}

/// The protocol of a stage that works on whole files (normalize, diarize): claim the record,
/// do the work under a renewed lease, commit the result and the new status in one update,
/// hand the file to the next stage if it is still running, and only then acknowledge.
pub async fn process_file_stage<F, Fut>(
    ctx: &WorkerContext,
    stage: Stage,
    job: Job,
    work: F,
) -> Disposition
where
    F: FnOnce(AudioFile) -> Fut,
    Fut: Future<Output = Result<Document, StageFailure>>,
{
    let WorkItem::File { file } = job.item else {
        tracing::warn!(stage = %stage, "ignoring a segment message on a file queue");
        return Disposition::Ack;
    };
    let record = match ctx
        .store
        .claim_stage(file, stage, &ctx.owner, ctx.lease_ttl())
        .await
    {
        Ok(Some(record)) => record,
        Ok(None) => return stale_file_hint(ctx, stage, file, job.redelivered).await,
        Err(e) => return e.into(),
    };
    tracing::info!(file = %file, status = %stage.active_status(), "stage started");
    let started = std::time::Instant::now();
    let outcome = ctx.with_file_lease(file, work(record)).await;
    match outcome {
        None => {
            tracing::warn!(file = %file, stage = %stage, "lost the file while working on it; dropping the result");
            discard_if_gone(ctx, file).await
        }
        Some(Ok(results)) => match ctx
            .store
            .complete_stage(file, stage, &ctx.owner, results)
            .await
        {
            Ok(Some(done)) => {
                let took = started.elapsed();
                tracing::info!(file = %file, status = %done.status, control = %done.control,
                    seconds = took.as_secs_f64(), "stage done");
                record_run(ctx, stage, took, done.audio_seconds()).await;
                if done.control == Control::Running {
                    if let Err(e) = ctx.hand_on(stage, file).await {
                        // Committed but not handed on: the redelivered message re-hands it.
                        return Disposition::Retry(e.to_string());
                    }
                }
                Disposition::Ack
            }
            Ok(None) => discard_if_gone(ctx, file).await,
            Err(e) => e.into(),
        },
        Some(Err(StageFailure::Fatal(reason))) => {
            match ctx
                .store
                .fail(file, stage.active_status(), &reason, Some(&ctx.owner))
                .await
            {
                Ok(_) => {
                    tracing::warn!(file = %file, status = %stage.active_status(), control = "FAILED", %reason, "file failed");
                    Disposition::Ack
                }
                Err(e) => e.into(),
            }
        }
        Some(Err(StageFailure::Transient(reason))) => {
            let _ = ctx.store.release_stage(file, &ctx.owner).await;
            Disposition::Retry(reason)
        }
    }
}

/// Adds a finished run to the stage's metrics. Metrics never hold up the work: a failure to
/// record one is logged and forgotten.
pub async fn record_run(ctx: &WorkerContext, stage: Stage, took: Duration, audio_seconds: f64) {
    if let Err(e) = ctx.store.record_stage_run(stage, took, audio_seconds).await {
        tracing::warn!(stage = %stage, error = %e, "could not record the stage's metrics");
    }
}

/// A message whose file cannot be claimed: usually a duplicate or stale hint. One case needs
/// action: the stage was committed but handing on failed, and this is the redelivery.
async fn stale_file_hint(
    ctx: &WorkerContext,
    stage: Stage,
    file: ObjectId,
    redelivered: bool,
) -> Disposition {
    if !redelivered {
        return Disposition::Ack;
    }
    match ctx.store.audiofile(file).await {
        Ok(Some(r)) if r.control == Control::Running && r.status == stage.done_status() => {
            match ctx.hand_on(stage, file).await {
                Ok(()) => Disposition::Ack,
                Err(e) => e.into(),
            }
        }
        Ok(_) => Disposition::Ack,
        Err(e) => e.into(),
    }
}

/// After losing a file: if it was deleted or reset, remove what this worker may have written.
async fn discard_if_gone(ctx: &WorkerContext, file: ObjectId) -> Disposition {
    match ctx.store.audiofile(file).await {
        Ok(None) => match ctx.store.purge_derived(file).await {
            Ok(()) => Disposition::Ack,
            Err(e) => e.into(),
        },
        Ok(Some(_)) => Disposition::Ack,
        Err(e) => e.into(),
    }
}

/// One pipeline stage.
pub trait StageWorker: Send + Sync + 'static {
    const STAGE: Stage;

    /// Handles one message. Business failures (bad audio…) end the file FAILED and return
    /// `Ack`; only transient trouble returns `Retry`.
    fn handle(&self, ctx: &WorkerContext, job: Job) -> impl Future<Output = Disposition> + Send;

    /// Re-queues work whose worker vanished. The default covers file-level stages.
    fn sweep(&self, ctx: &WorkerContext) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            for file in ctx.store.abandoned_in_stage(Self::STAGE).await? {
                tracing::warn!(file = %file, stage = %Self::STAGE, "re-queueing a file whose worker vanished");
                let _ = ctx
                    .queue
                    .publish(Self::STAGE, &WorkItem::File { file })
                    .await;
            }
            Ok(())
        }
    }
}

/// Runs a stage worker until `ctx.shutdown` is cancelled.
pub async fn run_stage<W: StageWorker>(worker: Arc<W>, ctx: WorkerContext) -> anyhow::Result<()> {
    let stage = W::STAGE;
    let concurrency = ctx.settings.concurrency();
    let prefetch = u16::try_from(concurrency).unwrap_or(u16::MAX);
    let mut consumer = ctx
        .queue
        .consume(
            &ctx.queue.queue_name(stage),
            &format!("{}-{}", stage, ctx.owner),
            prefetch,
        )
        .await?;
    let mut dead = ctx
        .queue
        .consume(
            &ctx.queue.dead_letter_queue_name(stage),
            &format!("{}-dead-{}", stage, ctx.owner),
            1,
        )
        .await?;
    let mut sweep =
        tokio::time::interval(Duration::from_secs((ctx.settings.lease_seconds / 2).max(1)));
    let mut tasks = JoinSet::new();
    tracing::info!(stage = %stage, concurrency, owner = %ctx.owner, "worker started");

    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            delivery = next_delivery(&mut consumer) => {
                let Some(delivery) = delivery else { anyhow::bail!("the {stage} consumer was cancelled by the broker") };
                let delivery = delivery?;
                let worker = worker.clone();
                let ctx = ctx.clone();
                let item = serde_json::from_slice::<WorkItem>(&delivery.data);
                // Every line logged while handling the message carries the file's id.
                let span = match &item {
                    Ok(item) => tracing::info_span!("job", file = %item.file_id(), stage = %stage),
                    Err(_) => tracing::info_span!("job", stage = %stage),
                };
                tasks.spawn(async move {
                    let disposition = match item {
                        Ok(item) => worker.handle(&ctx, Job { item, redelivered: delivery.redelivered }).await,
                        Err(e) => {
                            tracing::error!(stage = %stage, error = %e, "dropping a malformed message");
                            Disposition::Ack
                        }
                    };
                    let acked = match disposition {
                        Disposition::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
                        Disposition::Retry(reason) => {
                            tracing::warn!(stage = %stage, %reason, "returning a message to the queue");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            delivery.acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await
                        }
                    };
                    if let Err(e) = acked {
                        tracing::warn!(stage = %stage, error = %e, "could not settle a message; the broker will redeliver it");
                    }
                }.instrument(span));
            }
            delivery = next_delivery(&mut dead) => {
                let Some(delivery) = delivery else { anyhow::bail!("the {stage} dead-letter consumer was cancelled") };
                let delivery = delivery?;
                if let Ok(item) = serde_json::from_slice::<WorkItem>(&delivery.data) {
                    let reason = format!(
                        "gave up after {} attempts at the {stage} stage: the worker crashed or timed out on every attempt",
                        ctx.settings.max_delivery_attempts
                    );
                    match ctx.store.fail(item.file_id(), stage.active_status(), &reason, None).await {
                        Ok(_) => tracing::error!(file = %item.file_id(), stage = %stage, "file failed: poison message"),
                        Err(e) => {
                            tracing::warn!(error = %e, "could not fail a dead-lettered file; retrying");
                            let _ = delivery.acker.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
                            continue;
                        }
                    }
                }
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            }
            _ = sweep.tick() => {
                if let Err(e) = worker.sweep(&ctx).await {
                    tracing::warn!(stage = %stage, error = %e, "sweep failed");
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }

    tracing::info!(stage = %stage, in_flight = tasks.len(), "shutting down: finishing work in hand");
    let grace = Duration::from_secs(ctx.settings.lease_seconds);
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    tasks.abort_all();
    ctx.queue.close().await;
    Ok(())
}

/// Resolves when the process receives SIGTERM or Ctrl-C.
pub async fn termination_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Structured logs for binaries: `RUST_LOG` filters, `TRD_LOG_FORMAT=json` for JSON lines.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lapin=warn,mongodb=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("TRD_LOG_FORMAT").as_deref() == Ok("json") {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// The whole life of a worker binary: settings, connections, run until SIGTERM.
pub async fn main_for<W: StageWorker>(worker: W) -> anyhow::Result<()> {
    init_logging();
    let settings = Settings::load()?;
    let shutdown = CancellationToken::new();
    let ctx = WorkerContext::connect(settings, shutdown.clone()).await?;
    tokio::spawn(async move {
        termination_signal().await;
        shutdown.cancel();
    });
    run_stage(Arc::new(worker), ctx).await
}
