//! Starting and stopping files: the store decides atomically, then the queue is told.

use mongodb::bson::oid::ObjectId;
use trd_core::domain::{AudioFile, Control, StartOptions};
use trd_core::store::{StartOutcome, StopOutcome};
use trd_core::WorkItem;

use crate::error::{ApiError, ApiResult};
use crate::guards::App;

pub enum Started {
    Queued(AudioFile),
    /// Not startable (RUNNING, FINISHED, FAILED): left as it is.
    Refused(AudioFile),
}

/// Moves an IDLE or PAUSED file to RUNNING and queues it at the stage its status implies.
/// Only the caller that made the transition publishes, so double starts never queue twice.
pub async fn start_file(app: &App, id: ObjectId, options: &StartOptions) -> ApiResult<Started> {
    let previous = app.store.audiofile(id).await?.map(|r| r.control);
    match app.store.start(id, options).await? {
        StartOutcome::NotFound => Err(ApiError::NotFound(format!("no audio file with id {id}"))),
        StartOutcome::NotStartable(r) => Ok(Started::Refused(r)),
        StartOutcome::Started(r) => {
            let Some(stage) = r.status.next_stage() else {
                return Ok(Started::Queued(r));
            };
            if let Err(e) = app
                .queue
                .publish(stage, &WorkItem::File { file: r.id })
                .await
            {
                // Not queued: undo, so the file is not left RUNNING with nothing to run it.
                let back = previous.filter(|c| c.can_start()).unwrap_or(Control::Idle);
                app.store.revert_start(r.id, back).await?;
                return Err(e.into());
            }
            tracing::info!(file = %r.id, control = %r.control, status = %r.status, stage = %stage, "started");
            Ok(Started::Queued(r))
        }
    }
}

pub async fn stop_file(app: &App, id: ObjectId) -> ApiResult<Option<AudioFile>> {
    match app.store.stop(id).await? {
        StopOutcome::NotFound => Err(ApiError::NotFound(format!("no audio file with id {id}"))),
        StopOutcome::NotRunning(_) => Ok(None),
        StopOutcome::Paused(r) => {
            tracing::info!(file = %r.id, control = %r.control, status = %r.status, "paused");
            Ok(Some(r))
        }
    }
}
