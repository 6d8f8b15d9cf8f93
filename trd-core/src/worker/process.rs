//! The whole life of a worker binary: settings, logging, connections, run until SIGTERM.

use std::sync::Arc;

use super::backoff::Backoff;
use super::consume::run_stage;
use super::context::WorkerContext;
use super::shutdown::cancelled_on_termination;
use super::stage::StageWorker;
use crate::config::Settings;
use crate::logging::{init_logging, ErrorChain};

/// Runs `worker` as this process's stage until a termination signal.
pub async fn main_for<W: StageWorker>(worker: W) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    init_logging(settings.log_format);
    let shutdown = cancelled_on_termination();
    // A worker may start before MongoDB or RabbitMQ: wait for them with back-off.
    let mut backoff = Backoff::new();
    let ctx = loop {
        match WorkerContext::connect(settings.clone(), shutdown.clone()).await {
            Ok(ctx) => break ctx,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %ErrorChain(e.as_ref()), ?delay, "cannot connect yet; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    run_stage(Arc::new(worker), ctx).await
}
