//! Speech segments: written by the diarizer, claimed and filled one by one by recognizers.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{self, doc, oid::ObjectId, DateTime, Document};

use super::audiofiles::ids_of;
use super::{MongoResultExt, Store, StoreResult};
use crate::domain::{Control, Lease, Segment, SegmentStatus, Status, Word};

/// What a recognizer found in one segment.
#[derive(Debug, Clone)]
pub struct SegmentOutcome {
    pub status: SegmentStatus,
    pub text: String,
    pub words: Vec<Word>,
    pub score: u32,
    pub reason: Option<String>,
}

impl Store {
    /// Replaces the file's segments (a redone diarization must not leave the old ones behind).
    pub async fn replace_segments(&self, file: ObjectId, segments: &[Segment]) -> StoreResult<()> {
        self.segments
            .delete_many(doc! {"audiofile_id": file})
            .await
            .store()?;
        if !segments.is_empty() {
            self.segments.insert_many(segments).await.store()?;
        }
        Ok(())
    }

    pub async fn segments_of(&self, file: ObjectId) -> StoreResult<Vec<Segment>> {
        self.segments
            .find(doc! {"audiofile_id": file})
            .sort(doc! {"start": 1, "channel": 1})
            .await
            .store()?
            .try_collect()
            .await
            .store()
    }

    pub async fn segment(&self, id: ObjectId) -> StoreResult<Option<Segment>> {
        self.segments.find_one(doc! {"_id": id}).await.store()
    }

    pub async fn pending_segment_ids(&self, file: ObjectId) -> StoreResult<Vec<ObjectId>> {
        let cursor = self
            .segments
            .clone_with_type::<Document>()
            .find(doc! {"audiofile_id": file, "status": SegmentStatus::Processing.as_str()})
            .projection(doc! {"_id": 1})
            .sort(doc! {"start": 1})
            .await
            .store()?;
        ids_of(cursor).await
    }

    pub async fn count_pending_segments(&self, file: ObjectId) -> StoreResult<u64> {
        self.segments
            .count_documents(
                doc! {"audiofile_id": file, "status": SegmentStatus::Processing.as_str()},
            )
            .await
            .store()
    }

    /// Claims a segment that is still to be recognized and not held by a live worker.
    pub async fn claim_segment(
        &self,
        id: ObjectId,
        owner: &str,
        ttl: Duration,
    ) -> StoreResult<Option<Segment>> {
        let now = DateTime::now();
        let until = DateTime::from_millis(now.timestamp_millis() + ttl.as_millis() as i64);
        let lease = bson::to_bson(&Lease {
            owner: owner.to_owned(),
            until,
        })
        .expect("a lease always serialises");
        self.segments
            .find_one_and_update(
                doc! {
                    "_id": id,
                    "status": SegmentStatus::Processing.as_str(),
                    "$or": [{"lease": null}, {"lease.until": {"$lt": now}}],
                },
                doc! {"$set": {"lease": lease}},
            )
            .return_document(mongodb::options::ReturnDocument::After)
            .await
            .store()
    }

    /// Extends the caller's leases on `ids` (segments it holds and has yet to recognize).
    pub async fn renew_segment_leases(
        &self,
        ids: &[ObjectId],
        owner: &str,
        ttl: Duration,
    ) -> StoreResult<()> {
        let until =
            DateTime::from_millis(DateTime::now().timestamp_millis() + ttl.as_millis() as i64);
        self.segments
            .update_many(
                doc! {
                    "_id": {"$in": ids},
                    "status": SegmentStatus::Processing.as_str(),
                    "lease.owner": owner,
                },
                doc! {"$set": {"lease.until": until}},
            )
            .await
            .store()?;
        Ok(())
    }

    /// Stores a recognition result; `false` when the caller no longer held the segment.
    pub async fn complete_segment(
        &self,
        id: ObjectId,
        owner: &str,
        outcome: &SegmentOutcome,
    ) -> StoreResult<bool> {
        let mut set = doc! {
            "status": outcome.status.as_str(),
            "text": &outcome.text,
            "words": bson::to_bson(&outcome.words).expect("words serialise"),
            "score": outcome.score as i64,
            // When, for the throughput behind the batch ETA.
            "recognized_at": DateTime::now(),
        };
        if let Some(reason) = &outcome.reason {
            set.insert("reason", reason);
        }
        let r = self
            .segments
            .update_one(
                doc! {"_id": id, "status": SegmentStatus::Processing.as_str(), "lease.owner": owner},
                doc! {"$set": set, "$unset": {"lease": ""}},
            )
            .await
            .store()?;
        Ok(r.modified_count == 1)
    }

    pub async fn release_segment(&self, id: ObjectId, owner: &str) -> StoreResult<()> {
        self.segments
            .update_one(
                doc! {"_id": id, "lease.owner": owner},
                doc! {"$unset": {"lease": ""}},
            )
            .await
            .store()?;
        Ok(())
    }

    /// Segments whose recognizer vanished (lease expired), for the sweeper: (file, segment).
    pub async fn abandoned_segments(&self) -> StoreResult<Vec<(ObjectId, ObjectId)>> {
        let docs: Vec<Document> = self
            .segments
            .clone_with_type::<Document>()
            .find(doc! {
                "status": SegmentStatus::Processing.as_str(),
                "lease.until": {"$lt": DateTime::now()},
            })
            .projection(doc! {"_id": 1, "audiofile_id": 1})
            .await
            .store()?
            .try_collect()
            .await
            .store()?;
        Ok(docs
            .iter()
            .filter_map(|d| {
                Some((
                    d.get_object_id("audiofile_id").ok()?,
                    d.get_object_id("_id").ok()?,
                ))
            })
            .collect())
    }

    /// Running files in recognition with nothing left to recognize: a worker died between
    /// storing the last segment and closing the file. The sweeper closes them.
    pub async fn recognition_complete_but_open(&self) -> StoreResult<Vec<ObjectId>> {
        let cursor = self
            .audiofiles
            .clone_with_type::<Document>()
            .find(
                doc! {"status": Status::Recognizing.as_str(), "control": Control::Running.as_str()},
            )
            .projection(doc! {"_id": 1})
            .await
            .store()?;
        let mut done = Vec::new();
        for id in ids_of(cursor).await? {
            if self.count_pending_segments(id).await? == 0 {
                done.push(id);
            }
        }
        Ok(done)
    }
}
