//! What is kept of a file's derived data, and for how long. Normalized PCM is only worth its
//! disk while a file is still being worked on (about 115 MB per channel-hour): once a file has
//! ended (FINISHED or FAILED; a reset makes a new record that normalizes again) it is dropped
//! after `pcm_retention_seconds`. Segments are a file's results and stay with their record.
//! Derived data whose record is gone (a delete or reset interrupted between its two writes)
//! is an orphan and goes at the next sweep.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime};

use super::error::MongoResultExt;
use super::{Store, StoreResult};
use crate::domain::Control;

/// Ids asked about in one query.
const IDS_PER_QUERY: usize = 1_000;

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Files whose normalized audio was dropped (ended past retention, or orphaned).
    pub pcm_files: usize,
    /// Files gone whose segments were left behind.
    pub orphaned_segment_files: usize,
}

impl Store {
    /// Drops the normalized audio of files that ended more than `retention` ago and the
    /// derived data of records that no longer exist. Safe to run anywhere at any time: ids are
    /// never reused, and only an ended or missing record's data is touched.
    pub async fn sweep_derived(&self, retention: Duration) -> StoreResult<Swept> {
        let cutoff = DateTime::from_system_time(
            SystemTime::now()
                .checked_sub(retention)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let mut swept = Swept::default();
        let with_pcm = self.distinct_ids(&self.pcm, "audiofile_id").await?;
        for ids in with_pcm.chunks(IDS_PER_QUERY) {
            let kept = self
                .audiofile_ids_matching(doc! {
                    "_id": {"$in": ids},
                    "$nor": [{
                        "control": {"$in": [Control::Finished.as_str(), Control::Failed.as_str()]},
                        "last_update": {"$lt": cutoff},
                    }],
                })
                .await?;
            let dropped: Vec<ObjectId> = ids
                .iter()
                .filter(|id| !kept.contains(id))
                .copied()
                .collect();
            if !dropped.is_empty() {
                self.pcm
                    .delete_many(doc! {"audiofile_id": {"$in": &dropped}})
                    .await
                    .store()?;
                swept.pcm_files += dropped.len();
            }
        }
        let with_segments = self.distinct_ids(&self.segments, "audiofile_id").await?;
        for ids in with_segments.chunks(IDS_PER_QUERY) {
            let existing = self
                .audiofile_ids_matching(doc! {"_id": {"$in": ids}})
                .await?;
            let orphaned: Vec<ObjectId> = ids
                .iter()
                .filter(|id| !existing.contains(id))
                .copied()
                .collect();
            if !orphaned.is_empty() {
                self.segments
                    .delete_many(doc! {"audiofile_id": {"$in": &orphaned}})
                    .await
                    .store()?;
                swept.orphaned_segment_files += orphaned.len();
            }
        }
        Ok(swept)
    }

    /// The distinct ids in `field` of a collection.
    async fn distinct_ids<T: Send + Sync>(
        &self,
        collection: &mongodb::Collection<T>,
        field: &str,
    ) -> StoreResult<Vec<ObjectId>> {
        let values = collection.distinct(field, doc! {}).await.store()?;
        Ok(values
            .into_iter()
            .filter_map(|v| match v {
                Bson::ObjectId(id) => Some(id),
                _ => None,
            })
            .collect())
    }

    async fn audiofile_ids_matching(
        &self,
        filter: mongodb::bson::Document,
    ) -> StoreResult<HashSet<ObjectId>> {
        Ok(self.audiofile_ids(filter).await?.into_iter().collect())
    }
}
