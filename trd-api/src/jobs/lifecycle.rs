//! Starting, stopping, resetting and deleting a job: the store decides atomically, then the
//! queue (or the webhooks) are told. Only the caller that made a transition acts on it, so a
//! double start never queues a file twice.

use mongodb::bson::{self, oid::ObjectId};
use trd_core::domain::{AudioFile, Control};
use trd_core::store::webhooks::Event;
use trd_core::store::{StartOutcome, StopOutcome};
use trd_core::WorkItem;

use super::{CheckedOptions, JobError, JobResult, Jobs};
use crate::shapes::TranscriptResult;

impl Jobs {
    /// Moves an IDLE or PAUSED file to RUNNING and queues it at the stage its status implies.
    pub async fn start(&self, id: ObjectId, options: &CheckedOptions) -> JobResult<AudioFile> {
        let previous = self.store.audiofile(id).await?.map(|r| r.control);
        let record = match self.store.start(id, options.options()).await? {
            StartOutcome::NotFound => return Err(JobError::NotFound(id)),
            StartOutcome::NotStartable(r) => {
                return Err(JobError::NotStartable {
                    id,
                    control: r.control,
                })
            }
            StartOutcome::Started(r) => r,
        };
        let Some(stage) = record.status.next_stage() else {
            return Ok(record);
        };
        if let Err(e) = self
            .queue
            .publish(
                stage,
                record.options.lane,
                &WorkItem::File { file: record.id },
            )
            .await
        {
            // Not queued: undo, so the file is not left RUNNING with nothing to run it.
            let back = previous.filter(|c| c.can_start()).unwrap_or(Control::Idle);
            self.store.revert_start(record.id, back).await?;
            return Err(e.into());
        }
        tracing::info!(file = %record.id, control = %record.control, status = %record.status, stage = %stage, "started");
        Ok(record)
    }

    /// RUNNING → PAUSED; the stage in hand completes first.
    pub async fn stop(&self, id: ObjectId) -> JobResult<AudioFile> {
        match self.store.stop(id).await? {
            StopOutcome::NotFound => Err(JobError::NotFound(id)),
            StopOutcome::NotRunning(r) => Err(JobError::NotRunning {
                id,
                control: r.control,
            }),
            StopOutcome::Paused(r) => {
                tracing::info!(file = %r.id, control = %r.control, status = %r.status, "paused");
                Ok(r)
            }
        }
    }

    /// The contract's reset: the record and its transcription data go, a fresh IDLE/INITIAL
    /// record with a new id takes its place. The old record's webhooks are told.
    pub async fn reset(&self, id: ObjectId) -> JobResult<AudioFile> {
        let record = self.record(id).await?;
        self.tell_webhooks_of_removal(&record, Event::Reset).await?;
        let fresh = self
            .store
            .reset_audiofile(id)
            .await?
            .ok_or(JobError::NotFound(id))?;
        tracing::info!(file = %id, new_file = %fresh.id, control = %fresh.control, status = %fresh.status, "reset");
        Ok(fresh)
    }

    /// Deletes the record and its transcription data (and the audio, with `on_disk`); the
    /// record's webhooks are told. Returns the removed record.
    pub async fn delete(&self, id: ObjectId, on_disk: bool) -> JobResult<AudioFile> {
        let record = self.record(id).await?;
        self.tell_webhooks_of_removal(&record, Event::Deleted)
            .await?;
        let removed = self
            .store
            .delete_audiofile(id)
            .await?
            .ok_or(JobError::NotFound(id))?;
        tracing::info!(file = %id, "deleted");
        if on_disk {
            self.remove_audio(&removed);
        }
        Ok(removed)
    }

    /// Queues the notifications for a file that is about to go, with its result as it stands
    /// (afterwards there is nothing left to read).
    async fn tell_webhooks_of_removal(&self, record: &AudioFile, event: Event) -> JobResult<()> {
        if record.options.webhooks.is_empty() {
            return Ok(());
        }
        let segments = self.store.segments_of(record.id).await?;
        let payload = bson::to_document(&TranscriptResult::new(record, &segments)).ok();
        self.store.enqueue_webhooks(record, event, payload).await?;
        Ok(())
    }

    fn remove_audio(&self, record: &AudioFile) {
        let Some(location) = record.location() else {
            return;
        };
        let path = location.path_in(&self.settings.workdir);
        // Unlinking never follows the file's own link, but a folder on the way may be a link
        // out of the work directory: then the file there is not TRD's to delete.
        let folder = path.parent().unwrap_or(&self.settings.workdir);
        if let Err(e) = trd_core::workdir_files::check_folder(&self.settings.workdir, folder) {
            if e.is_refused() {
                tracing::warn!(path = %path.display(), error = %e, "not deleting the audio file");
            }
            return;
        }
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "could not delete the audio file");
            }
        }
    }
}
