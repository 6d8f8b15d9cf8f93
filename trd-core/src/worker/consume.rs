//! The loop every worker runs: consume the stage's queues (the batch lane and the interactive
//! lane, each with its own slots) and its dead-letter queue, hand each message to the stage, settle it as the outcome's [`Disposition`] says, sweep abandoned work,
//! and on shutdown finish what is in hand.

use std::sync::Arc;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::backoff::{pause, Backoff};
use super::context::WorkerContext;
use super::failure::{Disposition, StageFailure};
use super::file_stage::fail_file;
use super::stage::{Job, StageWorker};
use crate::domain::{Lane, Stage};
use crate::logging::ErrorChain;
use crate::queue::{next_delivery, QueueError, WorkItem};

/// Runs a stage worker until `ctx.shutdown` is cancelled. When RabbitMQ goes away the worker
/// reconnects with back-off and resumes consuming; work in hand carries on meanwhile.
pub async fn run_stage<W: StageWorker>(worker: Arc<W>, ctx: WorkerContext) -> anyhow::Result<()> {
    let stage = W::STAGE;
    let concurrency = ctx.settings.concurrency();
    let prefetch = u16::try_from(concurrency).unwrap_or(u16::MAX);
    // The interactive lane's slots come on top of the batch lane's, so a worker busy with a
    // batch still takes an interactive request at once.
    let interactive_prefetch = u16::try_from(ctx.settings.interactive_slots()).unwrap_or(u16::MAX);
    let mut sweep =
        tokio::time::interval(Duration::from_secs((ctx.settings.lease_seconds / 2).max(1)));
    let mut tasks = JoinSet::new();
    let mut backoff = Backoff::new();
    tracing::info!(stage = %stage, concurrency, owner = %ctx.owner, "worker started");
    tokio::select! {
        () = ctx.shutdown.cancelled() => return Ok(()),
        () = worker.prepare(&ctx) => {}
    }
    let serving = tokio::spawn(worker.serve(ctx.clone()));

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
            let now = ctx
                .queue
                .consume(
                    &ctx.queue.lane_queue_name(stage, Lane::Interactive),
                    &format!("{}-now-{}", stage, ctx.owner),
                    interactive_prefetch,
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
            Ok::<_, QueueError>((work, now, dead))
        };
        let (mut consumer, mut now, mut dead) = tokio::select! {
            () = ctx.shutdown.cancelled() => break 'connection,
            consumers = consumers => match consumers {
                Ok(c) => c,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(stage = %stage, error = %ErrorChain(&e), ?delay, "cannot consume; retrying");
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
                    spawn_delivery(&mut tasks, &worker, &ctx, Lane::Batch, delivery);
                }
                delivery = next_delivery(&mut now) => {
                    let Some(Ok(delivery)) = delivery else {
                        tracing::warn!(stage = %stage, "lost the interactive lane's consumer; reconnecting");
                        continue 'connection;
                    };
                    spawn_delivery(&mut tasks, &worker, &ctx, Lane::Interactive, delivery);
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
                        tracing::warn!(stage = %stage, error = %ErrorChain(&e), "sweep failed");
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
    serving.abort();
    // Closing the connection returns whatever is still held (a live stream's offer and its
    // unheard input among it) to the broker for another worker.
    ctx.queue.close().await;
    Ok(())
}

/// Handles a delivery on a task of its own; every line logged meanwhile carries the file's id.
fn spawn_delivery<W: StageWorker>(
    tasks: &mut JoinSet<()>,
    worker: &Arc<W>,
    ctx: &WorkerContext,
    lane: Lane,
    delivery: Delivery,
) {
    let stage = W::STAGE;
    let worker = worker.clone();
    let ctx = ctx.clone();
    let span = match serde_json::from_slice::<WorkItem>(&delivery.data) {
        Ok(item) => {
            tracing::info_span!("job", file = %item.file_id(), stage = %stage, lane = ?lane)
        }
        Err(_) => tracing::info_span!("job", stage = %stage, lane = ?lane),
    };
    tasks.spawn(async move { handle_delivery(&*worker, &ctx, delivery).await }.instrument(span));
}

/// Handles one delivery and settles it. While a dependency is down the message is kept and
/// handled again with back-off (as a redelivery: the previous attempt may have committed).
async fn handle_delivery<W: StageWorker>(worker: &W, ctx: &WorkerContext, delivery: Delivery) {
    let stage = W::STAGE;
    let item = match serde_json::from_slice::<WorkItem>(&delivery.data) {
        Ok(item) => item,
        Err(e) => {
            tracing::error!(stage = %stage, error = %e, "dropping a malformed message");
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            return;
        }
    };
    let file = item.file_id();
    let mut job = Job {
        item,
        redelivered: delivery.redelivered,
    };
    let mut backoff = Backoff::new();
    let settled = loop {
        let outcome = match worker.handle(ctx, job).await {
            // A file fault the handler did not record itself: the file ends FAILED here.
            Err(fault @ StageFailure::FileFault(_)) => {
                fail_file(ctx, stage, file, &fault, None).await
            }
            handled => handled,
        };
        let error = outcome.as_ref().err().map(|e| ErrorChain(e).to_string());
        match Disposition::of(&outcome) {
            Disposition::Ack => break delivery.acker.ack(BasicAckOptions::default()).await,
            Disposition::Retry => {
                tracing::warn!(stage = %stage, file = %file, error = error.as_deref(), "attempt failed; returning the message to the queue");
                tokio::time::sleep(Duration::from_millis(500)).await;
                break delivery.acker.nack(requeue()).await;
            }
            Disposition::Wait => {
                let delay = backoff.next_delay();
                tracing::warn!(stage = %stage, file = %file, error = error.as_deref(), ?delay, "a dependency is down; keeping the message");
                if !pause(ctx, delay).await {
                    break delivery.acker.nack(requeue()).await;
                }
                job.redelivered = true;
            }
        }
    };
    if let Err(e) = settled {
        tracing::warn!(stage = %stage, error = %ErrorChain(&e), "could not settle a message; the broker will redeliver it");
    }
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        requeue: true,
        ..Default::default()
    }
}

/// A dead-lettered message: its file failed at this stage on every attempt.
#[derive(Debug, thiserror::Error)]
#[error("gave up after {attempts} attempts at the {stage} stage: the worker crashed or timed out on every attempt")]
struct GaveUp {
    attempts: u32,
    stage: Stage,
}

/// Fails the file of a dead-lettered message, retrying while MongoDB is away.
async fn handle_dead_letter(ctx: &WorkerContext, stage: Stage, delivery: Delivery) {
    if let Ok(item) = serde_json::from_slice::<WorkItem>(&delivery.data) {
        let gave_up = StageFailure::file_fault(GaveUp {
            attempts: ctx.settings.max_delivery_attempts,
            stage,
        });
        let mut backoff = Backoff::new();
        while let Err(e) = fail_file(ctx, stage, item.file_id(), &gave_up, None).await {
            tracing::warn!(file = %item.file_id(), error = %ErrorChain(&e), "could not fail a dead-lettered file; retrying");
            if !pause(ctx, backoff.next_delay()).await {
                let _ = delivery.acker.nack(requeue()).await;
                return;
            }
        }
    }
    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
}
