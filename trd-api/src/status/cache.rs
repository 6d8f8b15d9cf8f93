//! Batch figures shared between polls. Figures that take long to sum (batches of hundreds of
//! files or more) are served from a snapshot while it is fresh enough, and one past its refresh time is
//! refreshed in the background, so polling never waits for MongoDB to sum the batch again.
//! Batches under [`SHARED_FROM_FILES`] files are always summed on the spot, however busy the
//! machine: a change to a small batch shows in the next poll. The cache belongs to one API
//! instance's [`super::Figures`], so two instances in one process never share figures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trd_core::domain::BatchName;

use crate::shapes::BatchStatus;

/// Summing a batch longer than this makes its figures worth sharing between polls...
const SLOW_FIGURES: Duration = Duration::from_millis(25);
/// ...if it has at least this many files. Time alone would decide by the machine's load: a
/// busy machine would serve a two-file batch from a snapshot. From a few hundred files a summing
/// reads the batch's records and its segments several times over (tens of milliseconds of
/// MongoDB's CPU for 300 files); a contact centre's batch polled twice a second would spend a
/// noticeable part of a core on it.
pub const SHARED_FROM_FILES: u64 = 100;
/// Shortest time between two summings of a shared batch.
const SNAPSHOT_REFRESH: Duration = Duration::from_secs(1);

struct Snapshot {
    figures: BatchStatus,
    /// When the summing began: the figures are at least that old.
    taken: Instant,
    /// How long the summing took.
    cost: Duration,
    refreshing: bool,
}

impl Snapshot {
    /// Re-summing at most a fifth of the time keeps MongoDB free for the pipeline.
    fn refresh_after(&self) -> Duration {
        SNAPSHOT_REFRESH.max(self.cost * 4)
    }

    /// Long enough for a background refresh to land before the snapshot expires.
    fn serve_for(&self) -> Duration {
        self.refresh_after() + self.cost * 4
    }
}

/// Fresh figures a poll found in the cache.
pub struct Hit {
    pub figures: BatchStatus,
    /// The caller should re-sum them in the background (it is the only caller told so until
    /// the refresh lands).
    pub refresh: bool,
}

#[derive(Clone, Default)]
pub struct FigureCache(Arc<Mutex<HashMap<BatchName, Snapshot>>>);

impl FigureCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BatchName, Snapshot>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, batch: &BatchName) -> Option<Hit> {
        let mut shared = self.lock();
        let s = shared.get_mut(batch)?;
        let age = s.taken.elapsed();
        if age >= s.serve_for() {
            return None;
        }
        let refresh = age >= s.refresh_after() && !s.refreshing;
        if refresh {
            s.refreshing = true;
        }
        Some(Hit {
            figures: s.figures.clone(),
            refresh,
        })
    }

    /// Keeps figures that took `cost` to sum (from `taken` on) if they were slow to make and
    /// the batch is large, forgets the batch's snapshot otherwise; drops expired snapshots of
    /// every batch.
    pub fn put(&self, batch: &BatchName, figures: &BatchStatus, taken: Instant, cost: Duration) {
        let mut shared = self.lock();
        shared.retain(|_, s| s.taken.elapsed() < s.serve_for());
        if cost >= SLOW_FIGURES && figures.total_files >= SHARED_FROM_FILES {
            let snapshot = Snapshot {
                figures: figures.clone(),
                taken,
                cost,
                refreshing: false,
            };
            shared.insert(batch.clone(), snapshot);
        } else {
            shared.remove(batch);
        }
    }

    pub fn forget(&self, batch: &BatchName) {
        self.lock().remove(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(total_files: u64) -> BatchStatus {
        BatchStatus {
            total_files,
            ..BatchStatus::default()
        }
    }

    #[test]
    fn only_large_batches_that_were_slow_to_sum_are_shared() {
        let cache = FigureCache::default();
        let batch = BatchName::parse("b").unwrap();
        let slow = SLOW_FIGURES * 4;
        cache.put(&batch, &figures(2), Instant::now(), slow);
        assert!(
            cache.get(&batch).is_none(),
            "a small batch is summed on every poll"
        );
        cache.put(
            &batch,
            &figures(SHARED_FROM_FILES),
            Instant::now(),
            Duration::ZERO,
        );
        assert!(
            cache.get(&batch).is_none(),
            "a quick batch is summed on every poll"
        );
        cache.put(&batch, &figures(SHARED_FROM_FILES), Instant::now(), slow);
        let hit = cache.get(&batch).expect("a large, slow batch is shared");
        assert_eq!(hit.figures.total_files, SHARED_FROM_FILES);
        assert!(!hit.refresh, "fresh figures need no refresh");
    }
}
