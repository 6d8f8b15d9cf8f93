//! What a stage handler works with: the settings, the connections, its identity in leases,
//! and the lease that keeps its claim on a file alive.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::{AudioFile, Lane, Stage};
use crate::logging::ErrorChain;
use crate::queue::{Queue, QueueResult, WorkItem};
use crate::store::Store;
use crate::worker::StageFailure;

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
            settings.worker_name,
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

    /// The lease holder of one claim: the worker, and which of its claims. Two attempts at the
    /// same file in one process (a message handled while a redelivered copy of it is) hold
    /// different leases, so neither can renew, commit or fence as the other.
    pub fn claim_holder(&self) -> String {
        format!("{}/{}", self.owner, ObjectId::new().to_hex())
    }

    /// Fails with [`StageFailure::Superseded`] unless `record`'s claim still holds its lease:
    /// what a stage checks before it deletes or replaces what an attempt stores for the file,
    /// so that an attempt whose lease ran out never wipes the work of the one that took over.
    pub async fn still_holding(&self, record: &AudioFile) -> Result<(), StageFailure> {
        let Some(lease) = &record.lease else {
            return Err(StageFailure::Superseded);
        };
        if self.store.holds_lease(record.id, &lease.owner).await? {
            Ok(())
        } else {
            Err(StageFailure::Superseded)
        }
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.settings.lease_seconds)
    }

    /// Publishes the file to the lane's queue of the next stage, if it has one.
    pub async fn hand_on(&self, stage: Stage, lane: Lane, file: ObjectId) -> QueueResult<()> {
        if let Some(next) = stage.next() {
            self.queue
                .publish(next, lane, &WorkItem::File { file })
                .await?;
        }
        Ok(())
    }

    /// Keeps the file's lease alive while `work` runs. Resolves to `None` if the lease was lost
    /// (the file was deleted, reset, or taken over): the work's result must then be dropped.
    pub async fn with_file_lease<F: Future>(
        &self,
        file: ObjectId,
        holder: &str,
        work: F,
    ) -> Option<F::Output> {
        let ttl = self.lease_ttl();
        let renew = async {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match self.store.renew_lease(file, holder, ttl).await {
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

    /// Adds a finished run to the stage's metrics. Metrics never hold up the work: a failure
    /// to record one is logged and forgotten.
    pub async fn record_run(&self, stage: Stage, took: Duration, audio_seconds: f64) {
        if let Err(e) = self
            .store
            .record_stage_run(stage, took, audio_seconds)
            .await
        {
            tracing::warn!(stage = %stage, error = %ErrorChain(&e), "could not record the stage's metrics");
        }
    }
}
