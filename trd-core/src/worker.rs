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
    /// The attempt failed (timed out, or an unexpected error): put the message back. Each
    /// return counts towards the queue's delivery limit, so a message that fails every time is
    /// dead-lettered and its file fails.
    Retry(String),
    /// A dependency (MongoDB, RabbitMQ) is down: keep the message and handle it again once the
    /// dependency answers. An outage is not the message's fault, so it does not count as an
    /// attempt.
    Wait(String),
}

impl From<StoreError> for Disposition {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            Disposition::Wait(e.to_string())
        } else {
            Disposition::Retry(e.to_string())
        }
    }
}

impl From<crate::queue::QueueError> for Disposition {
    fn from(e: crate::queue::QueueError) -> Self {
        Disposition::Wait(e.to_string())
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
    /// Something outside the file went wrong: the work is retried later, as a new attempt.
    Transient(String),
    /// A dependency is down: the work is retried once it answers, not counted as an attempt.
    Unavailable(String),
}

impl From<StoreError> for StageFailure {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            StageFailure::Unavailable(e.to_string())
        } else {
            StageFailure::Transient(e.to_string())
        }
    }
}

/// The protocol of a stage that works on whole files (normalize, diarize): claim the record,
/// do the work under a renewed lease, commit the result and the new status in one update,
/// hand the file to the next stage if it is still running, and only then acknowledge. Work
/// that outlasts `stage_timeout_seconds` is abandoned and counts as a failed attempt.
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
    let limit = Duration::from_secs(ctx.settings.stage_timeout_seconds);
    let outcome = match tokio::time::timeout(limit, ctx.with_file_lease(file, work(record))).await {
        Ok(outcome) => outcome,
        Err(_) => Some(Err(StageFailure::Transient(format!(
            "the {stage} stage took longer than {} s",
            limit.as_secs()
        )))),
    };
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
                        // Committed but not handed on: handling the message again re-hands it.
                        return e.into();
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
            tracing::warn!(file = %file, stage = %stage, %reason, "attempt failed");
            let _ = ctx.store.release_stage(file, &ctx.owner).await;
            Disposition::Retry(reason)
        }
        Some(Err(StageFailure::Unavailable(reason))) => {
            let _ = ctx.store.release_stage(file, &ctx.owner).await;
            Disposition::Wait(reason)
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

/// Doubling back-off between reconnection attempts and in-place retries, capped.
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Self(Self::FIRST)
    }

    /// The delay to wait now; the next one is twice as long.
    fn next_delay(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        delay
    }
}

/// Sleeps unless shutdown comes first; `false` on shutdown.
async fn pause(ctx: &WorkerContext, delay: Duration) -> bool {
    tokio::select! {
        () = ctx.shutdown.cancelled() => false,
        () = tokio::time::sleep(delay) => true,
    }
}

/// Handles one delivery and settles it. While a dependency is down the message is kept and
/// handled again with back-off (as a redelivery: the previous attempt may have committed).
async fn handle_delivery<W: StageWorker>(
    worker: &W,
    ctx: &WorkerContext,
    delivery: lapin::message::Delivery,
) {
    let stage = W::STAGE;
    let item = match serde_json::from_slice::<WorkItem>(&delivery.data) {
        Ok(item) => item,
        Err(e) => {
            tracing::error!(stage = %stage, error = %e, "dropping a malformed message");
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            return;
        }
    };
    let mut job = Job {
        item,
        redelivered: delivery.redelivered,
    };
    let mut backoff = Backoff::new();
    let settled = loop {
        match worker.handle(ctx, job).await {
            Disposition::Ack => break delivery.acker.ack(BasicAckOptions::default()).await,
            Disposition::Retry(reason) => {
                tracing::warn!(stage = %stage, file = %item.file_id(), %reason, "returning a message to the queue");
                tokio::time::sleep(Duration::from_millis(500)).await;
                break delivery.acker.nack(requeue()).await;
            }
            Disposition::Wait(reason) => {
                let delay = backoff.next_delay();
                tracing::warn!(stage = %stage, file = %item.file_id(), %reason, ?delay, "a dependency is down; keeping the message");
                if !pause(ctx, delay).await {
                    break delivery.acker.nack(requeue()).await;
                }
                job.redelivered = true;
            }
        }
    };
    if let Err(e) = settled {
        tracing::warn!(stage = %stage, error = %e, "could not settle a message; the broker will redeliver it");
    }
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        requeue: true,
        ..Default::default()
    }
}

/// A dead-lettered message: its file failed at this stage on every attempt.
async fn handle_dead_letter(ctx: &WorkerContext, stage: Stage, delivery: lapin::message::Delivery) {
    if let Ok(item) = serde_json::from_slice::<WorkItem>(&delivery.data) {
        let reason = format!(
            "gave up after {} attempts at the {stage} stage: the worker crashed or timed out on every attempt",
            ctx.settings.max_delivery_attempts
        );
        let mut backoff = Backoff::new();
        loop {
            match ctx
                .store
                .fail(item.file_id(), stage.active_status(), &reason, None)
                .await
            {
                Ok(_) => {
                    tracing::error!(file = %item.file_id(), stage = %stage, control = "FAILED", %reason, "file failed: poison message");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not fail a dead-lettered file; retrying");
                    if !pause(ctx, backoff.next_delay()).await {
                        let _ = delivery.acker.nack(requeue()).await;
                        return;
                    }
                }
            }
        }
    }
    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
}

/// Runs a stage worker until `ctx.shutdown` is cancelled. When RabbitMQ goes away the worker
/// reconnects with back-off and resumes consuming; work in hand carries on meanwhile.
pub async fn run_stage<W: StageWorker>(worker: Arc<W>, ctx: WorkerContext) -> anyhow::Result<()> {
    let stage = W::STAGE;
    let concurrency = ctx.settings.concurrency();
    let prefetch = u16::try_from(concurrency).unwrap_or(u16::MAX);
    let mut sweep =
        tokio::time::interval(Duration::from_secs((ctx.settings.lease_seconds / 2).max(1)));
    let mut tasks = JoinSet::new();
    let mut backoff = Backoff::new();
    tracing::info!(stage = %stage, concurrency, owner = %ctx.owner, "worker started");

    'connection: loop {
        let consumers = async {
            let work = ctx
                .queue
                .consume(
                    &ctx.queue.queue_name(stage),
                    &format!("{}-{}", stage, ctx.owner),
                    prefetch,
                )
                .await?;
            let dead = ctx
                .queue
                .consume(
                    &ctx.queue.dead_letter_queue_name(stage),
                    &format!("{}-dead-{}", stage, ctx.owner),
                    1,
                )
                .await?;
            Ok::<_, crate::queue::QueueError>((work, dead))
        };
        let (mut consumer, mut dead) = tokio::select! {
            () = ctx.shutdown.cancelled() => break 'connection,
            consumers = consumers => match consumers {
                Ok(c) => c,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(stage = %stage, error = %e, ?delay, "cannot consume; retrying");
                    if pause(&ctx, delay).await { continue 'connection } else { break 'connection }
                }
            },
        };
        backoff = Backoff::new();
        tracing::info!(stage = %stage, "consuming");

        loop {
            tokio::select! {
                () = ctx.shutdown.cancelled() => break 'connection,
                delivery = next_delivery(&mut consumer) => {
                    let Some(Ok(delivery)) = delivery else {
                        tracing::warn!(stage = %stage, "lost the connection to RabbitMQ; reconnecting");
                        continue 'connection;
                    };
                    let worker = worker.clone();
                    let ctx = ctx.clone();
                    // Every line logged while handling the message carries the file's id.
                    let span = match serde_json::from_slice::<WorkItem>(&delivery.data) {
                        Ok(item) => tracing::info_span!("job", file = %item.file_id(), stage = %stage),
                        Err(_) => tracing::info_span!("job", stage = %stage),
                    };
                    tasks.spawn(
                        async move { handle_delivery(&*worker, &ctx, delivery).await }
                            .instrument(span),
                    );
                }
                delivery = next_delivery(&mut dead) => {
                    let Some(Ok(delivery)) = delivery else {
                        tracing::warn!(stage = %stage, "lost the dead-letter consumer; reconnecting");
                        continue 'connection;
                    };
                    handle_dead_letter(&ctx, stage, delivery).await;
                }
                _ = sweep.tick() => {
                    if let Err(e) = worker.sweep(&ctx).await {
                        tracing::warn!(stage = %stage, error = %e, "sweep failed");
                    }
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
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
    let signal = shutdown.clone();
    tokio::spawn(async move {
        termination_signal().await;
        signal.cancel();
    });
    // A worker may start before MongoDB or RabbitMQ: wait for them with back-off.
    let mut backoff = Backoff::new();
    let ctx = loop {
        match WorkerContext::connect(settings.clone(), shutdown.clone()).await {
            Ok(ctx) => break ctx,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, ?delay, "cannot connect yet; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    run_stage(Arc::new(worker), ctx).await
}
