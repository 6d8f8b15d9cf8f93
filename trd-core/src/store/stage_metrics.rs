//! Per-stage work figures for `/trd/metrics`, kept in MongoDB (collection `stage_metrics`) so
//! that workers on any host feed the one scrape target, the API.
//!
//! One document per stage holds cumulative counters: runs, wall seconds, audio seconds and a
//! cumulative histogram of run durations. A worker adds one finished run with a single atomic
//! `$inc`, so concurrent workers never lose an update and the documents never grow.

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};

use super::figures::number;
use super::{MongoResultExt, Store, StoreResult};
use crate::domain::{Control, Stage, Status};

/// Upper bounds (seconds) of the run-duration histogram buckets. The recognize stage counts
/// segments (seconds each); normalize and diarize count files (seconds to minutes).
pub const DURATION_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// What a stage has done since the database was created.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimings {
    pub stage: String,
    /// Finished runs (files for normalize and diarize, segments for recognize).
    pub runs: u64,
    /// Wall-clock seconds the runs took, summed.
    pub wall_seconds: f64,
    /// Audio seconds the runs processed, summed.
    pub audio_seconds: f64,
    /// Cumulative: `buckets[i]` runs took at most `DURATION_BUCKETS[i]` seconds.
    pub buckets: Vec<u64>,
}

impl StageTimings {
    /// Seconds of work per second of audio (below 1: faster than real time).
    pub fn real_time_factor(&self) -> Option<f64> {
        (self.audio_seconds > 0.0).then(|| self.wall_seconds / self.audio_seconds)
    }
}

fn bucket_key(i: usize) -> String {
    format!("b{i:02}")
}

impl Store {
    fn stage_metrics(&self) -> mongodb::Collection<Document> {
        self.db.collection("stage_metrics")
    }

    /// Adds one finished run of `stage`.
    pub async fn record_stage_run(
        &self,
        stage: Stage,
        wall: Duration,
        audio_seconds: f64,
    ) -> StoreResult<()> {
        let seconds = wall.as_secs_f64();
        let mut inc = doc! {
            "runs": 1_i64,
            "wall_seconds": seconds,
            "audio_seconds": audio_seconds.max(0.0),
        };
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                inc.insert(format!("buckets.{}", bucket_key(i)), 1_i64);
            }
        }
        let collection = self.stage_metrics();
        let update = || {
            collection
                .update_one(doc! {"_id": stage.name()}, doc! {"$inc": inc.clone()})
                .upsert(true)
        };
        // Two first runs racing to create the document: one upsert loses on the unique `_id`
        // and simply increments the document the other created.
        match update().await {
            Ok(_) => Ok(()),
            Err(_) => update().await.map(|_| ()).store(),
        }
    }

    /// Every stage's counters (stages that never ran are absent).
    pub async fn stage_timings(&self) -> StoreResult<Vec<StageTimings>> {
        use futures::TryStreamExt;
        let docs: Vec<Document> = self
            .stage_metrics()
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .store()?
            .try_collect()
            .await
            .store()?;
        Ok(docs
            .iter()
            .map(|d| {
                let buckets = d.get_document("buckets").ok();
                StageTimings {
                    stage: d.get_str("_id").unwrap_or_default().to_owned(),
                    runs: number(d, "runs") as u64,
                    wall_seconds: number(d, "wall_seconds"),
                    audio_seconds: number(d, "audio_seconds"),
                    buckets: (0..DURATION_BUCKETS.len())
                        .map(|i| buckets.map_or(0.0, |b| number(b, &bucket_key(i))) as u64)
                        .collect(),
                }
            })
            .collect())
    }

    /// Every record counted per (control, status).
    pub async fn files_by_control_and_status(&self) -> StoreResult<Vec<(Control, Status, u64)>> {
        let files = self.audiofiles.clone_with_type::<Document>();
        let groups = self
            .aggregate_docs(
                &files,
                vec![doc! {"$group": {
                    "_id": {"control": "$control", "status": "$status"},
                    "files": {"$sum": 1},
                }}],
            )
            .await?;
        let mut out = Vec::with_capacity(groups.len());
        for g in &groups {
            let Ok(id) = g.get_document("_id") else {
                continue;
            };
            let parse = |key: &str| id.get(key).cloned().unwrap_or(Bson::Null);
            if let (Ok(control), Ok(status)) = (
                mongodb::bson::from_bson::<Control>(parse("control")),
                mongodb::bson::from_bson::<Status>(parse("status")),
            ) {
                out.push((control, status, number(g, "files") as u64));
            }
        }
        Ok(out)
    }
}
