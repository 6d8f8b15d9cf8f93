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
    check_webhook_targets(app, options).await?;
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

/// The contract's reset: the record and its transcription data go, a fresh IDLE/INITIAL record
/// with a new id takes its place. Webhooks of the old record are told.
pub async fn reset_file(app: &App, id: ObjectId) -> ApiResult<Option<AudioFile>> {
    if let Some(record) = app.store.audiofile(id).await? {
        crate::webhooks::enqueue_removal(app, &record, crate::webhooks::Event::Reset).await?;
    }
    let fresh = app.store.reset_audiofile(id).await?;
    if let Some(f) = &fresh {
        tracing::info!(file = %id, new_file = %f.id, control = %f.control, status = %f.status, "reset");
    }
    Ok(fresh)
}

/// Deletes a record and its transcription data; webhooks of the record are told.
pub async fn delete_file(app: &App, id: ObjectId) -> ApiResult<Option<AudioFile>> {
    if let Some(record) = app.store.audiofile(id).await? {
        crate::webhooks::enqueue_removal(app, &record, crate::webhooks::Event::Deleted).await?;
    }
    let removed = app.store.delete_audiofile(id).await?;
    if removed.is_some() {
        tracing::info!(file = %id, "deleted");
    }
    Ok(removed)
}

/// Refuses, at start, webhook URLs the service would never be allowed to call.
async fn check_webhook_targets(app: &App, options: &StartOptions) -> ApiResult<()> {
    if options.webhooks.is_empty() {
        return Ok(());
    }
    let allow = crate::webhooks::allow::AllowList::new(&app.settings.webhook_allow);
    for url in &options.webhooks {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| ApiError::BadRequest(format!("webhook '{url}': {e}")))?;
        let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
            return Err(ApiError::BadRequest(format!("webhook '{url}' has no host")));
        };
        allow
            .check(host, port)
            .await
            .map_err(|e| ApiError::BadRequest(format!("webhook '{url}': {e}")))?;
    }
    Ok(())
}
