//! What is kept of a file's derived data, and for how long. Normalized PCM is only worth its
//! disk while a file is still being worked on (about 115 MB per channel-hour): once a file has
//! ended (FINISHED or FAILED; a reset makes a new record that normalizes again) it is dropped
//! after `pcm_retention_seconds`. Segments are a file's results and stay with their record.
//! Derived data whose record is gone (a delete or reset interrupted between its two writes)
//! is an orphan and goes at the next sweep of its kind (the API paces the scan for orphaned
//! segments by its cost, `trd_api::jobs::sweep_derived_data`).

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};

use super::error::MongoResultExt;
use super::{Store, StoreResult};
use crate::domain::Control;

/// Ids asked about in one query.
const IDS_PER_QUERY: usize = 1_000;
/// The keys of the index each collection of derived data is read in (see `Store::ensure_indexes`).
pub(super) const PCM_ORDER: &[&str] = &["audiofile_id", "channel", "start_sample"];
pub(super) const SEGMENT_ORDER: &[&str] = &["audiofile_id", "start", "channel"];

/// `keys` ascending, as an index's keys or a sort in that index's order.
pub(super) fn ascending(keys: &[&str]) -> Document {
    keys.iter()
        .map(|key| (key.to_string(), Bson::Int32(1)))
        .collect()
}

impl Store {
    /// Drops the normalized audio of files that ended more than `retention` ago, and of
    /// records that no longer exist; answers how many files' audio went. Safe to run anywhere
    /// at any time: ids are never reused, and only an ended or missing record's data is
    /// touched. Cheap at any age of the store: only files still in work keep their audio.
    pub async fn sweep_pcm(&self, retention: Duration) -> StoreResult<usize> {
        let cutoff = DateTime::from_system_time(
            SystemTime::now()
                .checked_sub(retention)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let ended_long_ago = doc! {
            "control": {"$in": [Control::Finished.as_str(), Control::Failed.as_str()]},
            "last_update": {"$lt": cutoff},
        };
        self.drop_data_unless(&self.pcm, PCM_ORDER, doc! {"$nor": [ended_long_ago]})
            .await
    }

    /// Drops the segments of records that no longer exist; answers how many files' segments
    /// went. It reads the file id of every segment stored, so its cost grows with the archive
    /// (about 0.3 s of the MongoDB-wire server's CPU for 54,000 segments).
    pub async fn sweep_orphaned_segments(&self) -> StoreResult<usize> {
        self.drop_data_unless(&self.segments, SEGMENT_ORDER, doc! {})
            .await
    }

    /// Deletes the documents of `collection` (keyed by `audiofile_id`) whose record is gone or
    /// does not match `kept`; answers how many files' data went.
    async fn drop_data_unless<T: Send + Sync>(
        &self,
        collection: &mongodb::Collection<T>,
        index: &[&str],
        kept: Document,
    ) -> StoreResult<usize> {
        let mut dropped_files = 0;
        for ids in self
            .files_with_data(collection, index)
            .await?
            .chunks(IDS_PER_QUERY)
        {
            let mut filter = kept.clone();
            filter.insert("_id", doc! {"$in": ids});
            let kept: HashSet<ObjectId> = self.audiofile_ids(filter).await?.into_iter().collect();
            let dropped: Vec<ObjectId> = ids
                .iter()
                .filter(|id| !kept.contains(id))
                .copied()
                .collect();
            if !dropped.is_empty() {
                collection
                    .delete_many(doc! {"audiofile_id": {"$in": &dropped}})
                    .await
                    .store()?;
                dropped_files += dropped.len();
            }
        }
        Ok(dropped_files)
    }

    /// The distinct `audiofile_id`s of a collection whose index begins with `audiofile_id`
    /// (`index`: its keys, in order). Read as the index's keys alone, in its order: the
    /// server answers from the index without reading a document (a covered query), and the
    /// repeats are dropped here. `distinct` read every document on the MongoDB-wire server
    /// TRD runs on (every chunk of normalized audio, 320 kB each) and took several times as
    /// long, every quarter lease.
    async fn files_with_data<T: Send + Sync>(
        &self,
        collection: &mongodb::Collection<T>,
        index: &[&str],
    ) -> StoreResult<Vec<ObjectId>> {
        let mut keys = collection
            .clone_with_type::<Document>()
            .find(doc! {})
            .projection(doc! {"_id": 0, "audiofile_id": 1})
            .sort(ascending(index))
            .await
            .store()?;
        let mut ids: Vec<ObjectId> = Vec::new();
        while let Some(key) = keys.try_next().await.store()? {
            if let Ok(id) = key.get_object_id("audiofile_id") {
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }
}
