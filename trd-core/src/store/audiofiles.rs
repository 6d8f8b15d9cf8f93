//! Audio file records and the transitions of their control and status.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{self, doc, oid::ObjectId, DateTime, Document};
use mongodb::options::ReturnDocument;

use super::webhooks::WEBHOOKS_DUE;
use super::{is_duplicate_key, MongoResultExt, Page, Store, StoreError, StoreResult};
use crate::domain::names::PRIVATE_PREFIX;
use crate::domain::{
    AudioFile, BatchName, Control, FileLocation, Lane, Lease, Stage, StageError, StartOptions,
    Status,
};
use crate::workdir_files::Fingerprint;

/// The outcome of registering a file found on disk.
#[derive(Debug)]
pub enum Registration {
    Created(AudioFile),
    /// A record for that batch and filename exists already.
    Exists(AudioFile),
}

impl Registration {
    pub fn record(&self) -> &AudioFile {
        match self {
            Registration::Created(r) | Registration::Exists(r) => r,
        }
    }
}

#[derive(Debug)]
pub enum StartOutcome {
    /// The file moved to RUNNING and must be queued at `stage`.
    Started(AudioFile),
    /// The file's control does not allow a start.
    NotStartable(AudioFile),
    NotFound,
}

#[derive(Debug)]
pub enum StopOutcome {
    Paused(AudioFile),
    NotRunning(AudioFile),
    NotFound,
}

fn batch_filter(batch: Option<&BatchName>) -> Document {
    match batch {
        Some(b) => doc! {"batch": b.as_str()},
        None => doc! {"batch": null},
    }
}

fn lease_free(now: DateTime) -> Document {
    doc! {"$or": [{"lease": null}, {"lease.until": {"$lt": now}}]}
}

fn lease_for(owner: &str, ttl: Duration) -> bson::Bson {
    let until = DateTime::from_millis(DateTime::now().timestamp_millis() + ttl.as_millis() as i64);
    bson::to_bson(&Lease {
        owner: owner.to_owned(),
        until,
    })
    .expect("a lease always serialises")
}

fn after() -> ReturnDocument {
    ReturnDocument::After
}

impl Store {
    pub async fn register(
        &self,
        location: &FileLocation,
        size: u64,
        md5: String,
    ) -> StoreResult<Registration> {
        let print = Fingerprint {
            size,
            md5,
            modified_ms: None,
        };
        self.register_as(ObjectId::new(), location, print).await
    }

    /// Registers the file at `location` as it was read (`print`), under the id `id`.
    pub async fn register_as(
        &self,
        id: ObjectId,
        location: &FileLocation,
        print: Fingerprint,
    ) -> StoreResult<Registration> {
        let Fingerprint {
            size,
            md5,
            modified_ms,
        } = print;
        let now = DateTime::now();
        let record = AudioFile {
            id,
            batch: location.batch.as_ref().map(|b| b.as_str().to_owned()),
            filename: location.filename.as_str().to_owned(),
            format: location.filename.format(),
            size: size as i64,
            md5,
            create_date: now,
            last_update: now,
            control: Control::Idle,
            status: Status::Initial,
            info: None,
            audio_channels: None,
            error: None,
            total_segments: None,
            total_speech: None,
            options: StartOptions::default(),
            warnings: Vec::new(),
            mtime: modified_ms,
            lease: None,
        };
        // A record that collides may be deleted before it is read back (a delete racing the
        // registration): then the location is free again and the insert is tried anew.
        for _ in 0..3 {
            match self.audiofiles.insert_one(&record).await {
                Ok(_) => return Ok(Registration::Created(record)),
                Err(e) if is_duplicate_key(&e) => {
                    if let Some(existing) = self.find_by_location(location).await? {
                        return Ok(Registration::Exists(existing));
                    }
                }
                Err(e) => return Err(StoreError::from_mongo(e)),
            }
        }
        Err(StoreError::Malformed(
            "the location stayed taken by records deleted as they were read".into(),
        ))
    }

    /// The file at `old`'s location was rewritten (`print` is what it holds now): `old` leaves
    /// the location, to a private batch of its own with a warning naming its successor (its
    /// results belong to the audio it was made from), and a new record takes the place.
    pub async fn supersede(
        &self,
        old: &AudioFile,
        location: &FileLocation,
        print: Fingerprint,
    ) -> StoreResult<Registration> {
        let successor = ObjectId::new();
        let aside = BatchName::private(&format!("replaced-{}", old.id.to_hex()))
            .expect("a hex id is a private batch tag");
        let warning = format!(
            "the file '{}' changed on disk after it was registered; it is now record {}, and this \
             record keeps what was made from the audio it held (md5 {})",
            old.filename,
            successor.to_hex(),
            old.md5
        );
        let mut at = batch_filter(location.batch.as_ref());
        at.insert("_id", old.id);
        at.insert("filename", location.filename.as_str());
        // The record as it is now (it may have moved on since `old` was read), set aside.
        if let Some(mut current) = self.audiofiles.find_one(at.clone()).await.store()? {
            current.batch = Some(aside.as_str().to_owned());
            current.last_update = DateTime::now();
            current.warnings.push(warning);
            // Moved by a delete and an insert of the same document, not an update: the
            // MongoDB-wire server the tests run (secantusd-rs) keeps an updated document's old
            // entry in the unique (batch, filename) index, so the place would stay taken.
            // A crash between the two leaves the old record's segments to the orphan sweep.
            self.audiofiles.delete_one(at).await.store()?;
            self.audiofiles.insert_one(&current).await.store()?;
        }
        self.register_as(successor, location, print).await
    }

    /// Records that the file of `id`, unchanged in content, was touched (`modified_ms`).
    pub async fn note_modified(&self, id: ObjectId, modified_ms: Option<i64>) -> StoreResult<()> {
        self.audiofiles
            .update_one(doc! {"_id": id}, doc! {"$set": {"mtime": modified_ms}})
            .await
            .store()?;
        Ok(())
    }

    pub async fn find_by_location(
        &self,
        location: &FileLocation,
    ) -> StoreResult<Option<AudioFile>> {
        let mut filter = batch_filter(location.batch.as_ref());
        filter.insert("filename", location.filename.as_str());
        self.audiofiles.find_one(filter).await.store()
    }

    pub async fn audiofile(&self, id: ObjectId) -> StoreResult<Option<AudioFile>> {
        self.audiofiles.find_one(doc! {"_id": id}).await.store()
    }

    /// All records outside private batches, or those of one batch (`Some(None)` selects
    /// files without a batch).
    pub async fn list(&self, batch: Option<Option<&BatchName>>) -> StoreResult<Vec<AudioFile>> {
        self.list_page(batch, None, Page::ALL)
            .await?
            .try_collect()
            .await
            .store()
    }

    /// Records as [`Self::list`] orders them, only those in the batches `within` (when
    /// given), one page of them, read as they are sent.
    pub async fn list_page(
        &self,
        batch: Option<Option<&BatchName>>,
        within: Option<&[String]>,
        page: Page,
    ) -> StoreResult<mongodb::Cursor<AudioFile>> {
        let mut filter = batch.map(batch_filter).unwrap_or_else(|| {
            // The prefix starts with '.', the one character in it a pattern must escape.
            let private = bson::Regex {
                pattern: format!("^\\{PRIVATE_PREFIX}"),
                options: String::new(),
            };
            doc! {"batch": {"$not": private}}
        });
        if let Some(batches) = within {
            filter = doc! {"$and": [filter, {"batch": {"$in": batches}}]};
        }
        let mut find = self
            .audiofiles
            .find(filter)
            .sort(doc! {"batch": 1, "filename": 1})
            .skip(page.skip);
        if let Some(limit) = page.limit {
            find = find.limit(limit as i64);
        }
        find.await.store()
    }

    /// A batch's records, newest first: at most `limit`, created within the bounds given.
    pub async fn list_newest(
        &self,
        batch: &BatchName,
        created_after: Option<DateTime>,
        created_before: Option<DateTime>,
        limit: i64,
    ) -> StoreResult<Vec<AudioFile>> {
        let mut filter = batch_filter(Some(batch));
        let mut created = Document::new();
        if let Some(after) = created_after {
            created.insert("$gt", after);
        }
        if let Some(before) = created_before {
            created.insert("$lt", before);
        }
        if !created.is_empty() {
            filter.insert("create_date", created);
        }
        self.audiofiles
            .find(filter)
            .sort(doc! {"create_date": -1, "_id": -1})
            .limit(limit)
            .await
            .store()?
            .try_collect()
            .await
            .store()
    }

    pub async fn batch_exists(&self, batch: &BatchName) -> StoreResult<bool> {
        Ok(self
            .audiofiles
            .find_one(batch_filter(Some(batch)))
            .await
            .store()?
            .is_some())
    }

    pub async fn start(&self, id: ObjectId, options: &StartOptions) -> StoreResult<StartOutcome> {
        let startable: Vec<&str> = Control::STARTABLE.iter().map(|c| c.as_str()).collect();
        let updated = self
            .audiofiles
            .find_one_and_update(
                doc! {"_id": id, "control": {"$in": startable}},
                doc! {"$set": {
                    "control": Control::Running.as_str(),
                    "options": bson::to_bson(options).expect("options serialise"),
                    // What the webhook sweep looks for once the file ends (see
                    // `enqueue_ended_webhooks`).
                    WEBHOOKS_DUE: options.notifies(),
                    "last_update": DateTime::now(),
                }},
            )
            .return_document(after())
            .await
            .store()?;
        Ok(match updated {
            Some(r) => StartOutcome::Started(r),
            None => match self.audiofile(id).await? {
                Some(r) => StartOutcome::NotStartable(r),
                None => StartOutcome::NotFound,
            },
        })
    }

    /// Undoes a start whose message could not be queued.
    pub async fn revert_start(&self, id: ObjectId, back_to: Control) -> StoreResult<()> {
        self.audiofiles
            .update_one(
                doc! {"_id": id, "control": Control::Running.as_str()},
                doc! {"$set": {"control": back_to.as_str(), "last_update": DateTime::now()}},
            )
            .await
            .store()?;
        Ok(())
    }

    pub async fn stop(&self, id: ObjectId) -> StoreResult<StopOutcome> {
        let updated = self
            .audiofiles
            .find_one_and_update(
                doc! {"_id": id, "control": Control::Running.as_str()},
                doc! {"$set": {"control": Control::Paused.as_str(), "last_update": DateTime::now()}},
            )
            .return_document(after())
            .await
            .store()?;
        Ok(match updated {
            Some(r) => StopOutcome::Paused(r),
            None => match self.audiofile(id).await? {
                Some(r) => StopOutcome::NotRunning(r),
                None => StopOutcome::NotFound,
            },
        })
    }

    /// Claims a file for `stage`: it must be RUNNING and either waiting for the stage or stuck
    /// in it with an expired lease (its previous worker vanished).
    pub async fn claim_stage(
        &self,
        id: ObjectId,
        stage: Stage,
        owner: &str,
        ttl: Duration,
    ) -> StoreResult<Option<AudioFile>> {
        let now = DateTime::now();
        let filter = doc! {
            "_id": id,
            "control": Control::Running.as_str(),
            "$or": [
                {"status": stage.ready_status().as_str()},
                {"status": stage.active_status().as_str(), "$and": [lease_free(now)]},
            ],
        };
        self.audiofiles
            .find_one_and_update(
                filter,
                doc! {"$set": {
                    "status": stage.active_status().as_str(),
                    "lease": lease_for(owner, ttl),
                    "last_update": now,
                }},
            )
            .return_document(after())
            .await
            .store()
    }

    /// Whether `holder` holds the file's lease now (and it has not run out).
    pub async fn holds_lease(&self, id: ObjectId, holder: &str) -> StoreResult<bool> {
        let held = self
            .audiofiles
            .clone_with_type::<Document>()
            .find_one(
                doc! {"_id": id, "lease.owner": holder, "lease.until": {"$gt": DateTime::now()}},
            )
            .projection(doc! {"_id": 1})
            .await
            .store()?;
        Ok(held.is_some())
    }

    /// Extends the lease of a worker still busy with a file. `false`: the lease was lost (the
    /// file was deleted, reset, or taken over), so the work in hand must be abandoned.
    pub async fn renew_lease(&self, id: ObjectId, owner: &str, ttl: Duration) -> StoreResult<bool> {
        let r = self
            .audiofiles
            .update_one(
                doc! {"_id": id, "lease.owner": owner},
                doc! {"$set": {"lease": lease_for(owner, ttl)}},
            )
            .await
            .store()?;
        Ok(r.matched_count == 1)
    }

    /// Commits the end of a stage together with its results (`set`). Returns the updated
    /// record, or `None` when the caller no longer holds the file.
    pub async fn complete_stage(
        &self,
        id: ObjectId,
        stage: Stage,
        owner: &str,
        mut set: Document,
    ) -> StoreResult<Option<AudioFile>> {
        set.insert("status", stage.done_status().as_str());
        set.insert("last_update", DateTime::now());
        self.audiofiles
            .find_one_and_update(
                doc! {"_id": id, "status": stage.active_status().as_str(), "lease.owner": owner},
                doc! {"$set": set, "$unset": {"lease": ""}},
            )
            .return_document(after())
            .await
            .store()
    }

    /// Gives a claimed file back without finishing (shutdown): another worker may claim it.
    pub async fn release_stage(&self, id: ObjectId, owner: &str) -> StoreResult<()> {
        self.audiofiles
            .update_one(
                doc! {"_id": id, "lease.owner": owner},
                doc! {"$unset": {"lease": ""}},
            )
            .await
            .store()?;
        Ok(())
    }

    /// Ends a file FAILED with a reason. With `owner`, only while that worker holds it.
    pub async fn fail(
        &self,
        id: ObjectId,
        stage: Status,
        reason: &str,
        owner: Option<&str>,
    ) -> StoreResult<Option<AudioFile>> {
        let mut filter = doc! {"_id": id, "control": {"$in": [Control::Running.as_str(), Control::Paused.as_str()]}};
        if let Some(owner) = owner {
            filter.insert("lease.owner", owner);
        }
        let error = StageError {
            stage,
            reason: reason.to_owned(),
        };
        self.audiofiles
            .find_one_and_update(
                filter,
                doc! {
                    "$set": {
                        "control": Control::Failed.as_str(),
                        "error": bson::to_bson(&error).expect("errors serialise"),
                        "last_update": DateTime::now(),
                    },
                    "$unset": {"lease": ""},
                },
            )
            .return_document(after())
            .await
            .store()
    }

    /// Marks a file whose every segment is recognized as RECOGNIZED/FINISHED. Exactly one
    /// caller wins when several segments finish at once.
    pub async fn finish_recognition(&self, id: ObjectId) -> StoreResult<Option<AudioFile>> {
        self.audiofiles
            .find_one_and_update(
                doc! {
                    "_id": id,
                    "status": Status::Recognizing.as_str(),
                    "control": {"$in": [Control::Running.as_str(), Control::Paused.as_str()]},
                },
                doc! {"$set": {
                    "status": Status::Recognized.as_str(),
                    "control": Control::Finished.as_str(),
                    "last_update": DateTime::now(),
                }},
            )
            .return_document(after())
            .await
            .store()
    }

    /// Moves a diarized, running file into recognition (no lease: the work is in its segments).
    pub async fn begin_recognition(&self, id: ObjectId) -> StoreResult<Option<AudioFile>> {
        self.audiofiles
            .find_one_and_update(
                doc! {
                    "_id": id,
                    "control": Control::Running.as_str(),
                    "status": {"$in": [Status::Diarized.as_str(), Status::Recognizing.as_str()]},
                },
                doc! {"$set": {"status": Status::Recognizing.as_str(), "last_update": DateTime::now()}},
            )
            .return_document(after())
            .await
            .store()
    }

    /// Adds `warnings` to the record's list, each at most once.
    pub async fn add_warnings(&self, id: ObjectId, warnings: &[String]) -> StoreResult<()> {
        if warnings.is_empty() {
            return Ok(());
        }
        self.audiofiles
            .update_one(
                doc! {"_id": id},
                doc! {"$addToSet": {"warnings": {"$each": warnings}}},
            )
            .await
            .store()?;
        Ok(())
    }

    /// Running files stuck in `stage` whose worker's lease expired: the sweeper re-queues them.
    pub async fn abandoned_in_stage(&self, stage: Stage) -> StoreResult<Vec<ObjectId>> {
        let filter = doc! {
            "control": Control::Running.as_str(),
            "status": stage.active_status().as_str(),
            "lease.until": {"$lt": DateTime::now()},
        };
        self.audiofile_ids(filter).await
    }

    /// Running files that have waited for `stage` since before `since`, unclaimed: if the
    /// stage's queue is empty, their message was lost.
    pub async fn waiting_for_stage(
        &self,
        stage: Stage,
        since: DateTime,
    ) -> StoreResult<Vec<ObjectId>> {
        let filter = doc! {
            "control": Control::Running.as_str(),
            "status": stage.ready_status().as_str(),
            "lease": {"$exists": false},
            "last_update": {"$lt": since},
        };
        self.audiofile_ids(filter).await
    }

    /// The ids of the records matching `filter`.
    pub(super) async fn audiofile_ids(&self, filter: Document) -> StoreResult<Vec<ObjectId>> {
        ids_of(
            self.audiofiles
                .clone_with_type::<Document>()
                .find(filter)
                .projection(doc! {"_id": 1})
                .await
                .store()?,
        )
        .await
    }

    /// The lane a file's work travels (batch for a file that is gone).
    pub async fn lane_of(&self, id: ObjectId) -> StoreResult<Lane> {
        Ok(self
            .audiofile(id)
            .await?
            .map(|r| r.options.lane)
            .unwrap_or_default())
    }

    /// Temporary jobs whose server stopped pushing `discard_after` forward: their client went,
    /// or the API serving them died.
    pub async fn expired_temporary_jobs(&self) -> StoreResult<Vec<ObjectId>> {
        self.audiofile_ids(doc! {"options.discard_after": {"$lt": DateTime::now()}})
            .await
    }

    /// Pushes a temporary job's `discard_after` to `until`; `false` when the job is gone.
    pub async fn hold_temporary_job(&self, id: ObjectId, until: DateTime) -> StoreResult<bool> {
        let result = self
            .audiofiles
            .update_one(
                doc! {"_id": id, "options.discard_after": {"$exists": true}},
                doc! {"$set": {"options.discard_after": until}},
            )
            .await
            .store()?;
        Ok(result.matched_count == 1)
    }

    /// Deletes a record and everything derived from it; returns the removed record.
    pub async fn delete_audiofile(&self, id: ObjectId) -> StoreResult<Option<AudioFile>> {
        let removed = self
            .audiofiles
            .find_one_and_delete(doc! {"_id": id})
            .await
            .store()?;
        if removed.is_some() {
            self.purge_derived(id).await?;
        }
        Ok(removed)
    }

    /// Replaces a record by a fresh IDLE/INITIAL one with a new id (the contract's reset).
    /// `None` when the record is gone (a concurrent reset or delete won).
    pub async fn reset_audiofile(&self, id: ObjectId) -> StoreResult<Option<AudioFile>> {
        let Some(old) = self.delete_audiofile(id).await? else {
            return Ok(None);
        };
        let now = DateTime::now();
        let fresh = AudioFile {
            id: ObjectId::new(),
            control: Control::Idle,
            status: Status::Initial,
            info: None,
            audio_channels: None,
            error: None,
            total_segments: None,
            total_speech: None,
            options: StartOptions::default(),
            warnings: Vec::new(),
            lease: None,
            create_date: now,
            last_update: now,
            ..old
        };
        match self.audiofiles.insert_one(&fresh).await {
            Ok(_) => Ok(Some(fresh)),
            // The watcher saw the file without a record and registered it afresh meanwhile:
            // that record is the reset's outcome.
            Err(e) if is_duplicate_key(&e) => self
                .audiofiles
                .find_one(doc! {"batch": &fresh.batch, "filename": &fresh.filename})
                .await
                .store(),
            Err(e) => Err(StoreError::from_mongo(e)),
        }
    }
}

pub(super) async fn ids_of(cursor: mongodb::Cursor<Document>) -> StoreResult<Vec<ObjectId>> {
    let docs: Vec<Document> = cursor.try_collect().await.store()?;
    Ok(docs
        .iter()
        .filter_map(|d| d.get_object_id("_id").ok())
        .collect())
}
