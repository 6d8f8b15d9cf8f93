//! What an operator looks over: the batches there are, and a batch's files one row each. Sums
//! and projections, so a 1,000-file batch is one small answer, never its whole records.

use std::collections::BTreeMap;

use mongodb::bson::{doc, oid::ObjectId, Bson, Document};

use super::figures::{number, parse};
use super::{MongoResultExt, Store, StoreError, StoreResult};
use crate::domain::names::PRIVATE_PREFIX;
use crate::domain::{Control, Status};

/// A folder batch and how many of its files are at each control.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSummary {
    pub name: String,
    pub files: u64,
    pub bytes: i64,
    /// Files per control (`IDLE`, `RUNNING`…).
    pub by_control: BTreeMap<String, u64>,
}

/// One file of a batch, as its row in a table.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub id: ObjectId,
    pub filename: String,
    pub control: Control,
    pub status: Status,
    /// Seconds, once normalized.
    pub duration: Option<f64>,
    pub channels: u32,
    /// Seconds of speech diarization found.
    pub speech: Option<f64>,
    pub segments: Option<i64>,
    /// Distinct speaker labels among the file's segments.
    pub speakers: u32,
    /// The mean recognition score of its recognized segments (0–100).
    pub score: Option<f64>,
    pub error: Option<String>,
    pub warnings: u32,
}

impl Store {
    /// Every folder batch (private ones left out), by name; `within`: only these.
    pub async fn batch_summaries(
        &self,
        within: Option<&[String]>,
    ) -> StoreResult<Vec<BatchSummary>> {
        let mut filter = doc! {"batch": {"$type": "string"}};
        if let Some(within) = within {
            filter = doc! {"batch": {"$in": within}};
        }
        let docs = self
            .aggregate_docs(
                &self.audiofiles.clone_with_type(),
                vec![
                    doc! {"$match": filter},
                    doc! {"$group": {
                        "_id": {"batch": "$batch", "control": "$control"},
                        "files": {"$sum": 1},
                        "bytes": {"$sum": "$size"},
                    }},
                ],
            )
            .await?;
        let mut batches: BTreeMap<String, BatchSummary> = BTreeMap::new();
        for d in &docs {
            let id = group_key(d)?;
            let Ok(name) = id.get_str("batch") else {
                continue;
            };
            if name.starts_with(PRIVATE_PREFIX) || name.starts_with('.') {
                continue;
            }
            let control: Control = parse(id.get("control"), "control")?;
            let files = number(d, "files") as u64;
            let batch = batches
                .entry(name.to_owned())
                .or_insert_with(|| BatchSummary {
                    name: name.to_owned(),
                    files: 0,
                    bytes: 0,
                    by_control: BTreeMap::new(),
                });
            batch.files += files;
            batch.bytes += number(d, "bytes") as i64;
            *batch
                .by_control
                .entry(control.as_str().to_owned())
                .or_default() += files;
        }
        Ok(batches.into_values().collect())
    }

    /// The batch's files as table rows, in filename order.
    pub async fn file_rows(&self, batch: &str) -> StoreResult<Vec<FileRow>> {
        let audiofiles = self.audiofiles.clone_with_type::<Document>();
        let records = audiofiles
            .find(doc! {"batch": batch})
            .projection(doc! {
                "_id": 1, "filename": 1, "control": 1, "status": 1, "audioChannels": 1,
                "total_speech": 1, "total_segments": 1, "error": 1, "warnings": 1,
            })
            .sort(doc! {"filename": 1});
        let records: Vec<Document> = futures::TryStreamExt::try_collect(records.await.store()?)
            .await
            .store()?;
        let ids: Vec<ObjectId> = records
            .iter()
            .filter_map(|d| d.get_object_id("_id").ok())
            .collect();
        let voices = self.voices_of(&ids).await?;
        records
            .iter()
            .map(|d| {
                let id: ObjectId = parse(d.get("_id"), "_id")?;
                let channels = d.get_array("audioChannels").ok();
                let (speakers, score) = voices.get(&id).copied().unwrap_or((0, None));
                Ok(FileRow {
                    id,
                    filename: parse(d.get("filename"), "filename")?,
                    control: parse(d.get("control"), "control")?,
                    status: parse(d.get("status"), "status")?,
                    duration: channels
                        .and_then(|chs| chs.first())
                        .and_then(Bson::as_document)
                        .map(|ch| number(ch, "duration")),
                    channels: channels.map_or(0, |chs| chs.len() as u32),
                    speech: d.get("total_speech").map(|_| number(d, "total_speech")),
                    segments: d
                        .get("total_segments")
                        .map(|_| number(d, "total_segments") as i64),
                    speakers,
                    score,
                    error: d
                        .get_document("error")
                        .ok()
                        .and_then(|e| e.get_str("reason").ok())
                        .map(str::to_owned),
                    warnings: d.get_array("warnings").map_or(0, |w| w.len() as u32),
                })
            })
            .collect()
    }

    /// Per file: how many speakers its segments name, and their mean score over the segments
    /// recognized (score above 0).
    async fn voices_of(
        &self,
        files: &[ObjectId],
    ) -> StoreResult<BTreeMap<ObjectId, (u32, Option<f64>)>> {
        if files.is_empty() {
            return Ok(BTreeMap::new());
        }
        // Grouped by (file, speaker) with plain sums: what every MongoDB-wire server computes.
        let docs = self
            .aggregate_docs(
                &self.segments.clone_with_type(),
                vec![
                    doc! {"$match": {"audiofile_id": {"$in": files}}},
                    doc! {"$group": {
                        "_id": {"file": "$audiofile_id", "speaker": "$speaker"},
                        "score": {"$sum": "$score"},
                        "scored": {"$sum": {"$cond": [{"$gt": ["$score", 0]}, 1, 0]}},
                    }},
                ],
            )
            .await?;
        let mut out: BTreeMap<ObjectId, (u32, f64, f64)> = BTreeMap::new();
        for d in &docs {
            let id = group_key(d)?;
            let file: ObjectId = parse(id.get("file"), "audiofile_id")?;
            let entry = out.entry(file).or_default();
            entry.0 += 1;
            entry.1 += number(d, "score");
            entry.2 += number(d, "scored");
        }
        Ok(out
            .into_iter()
            .map(|(id, (speakers, score, scored))| {
                (id, (speakers, (scored > 0.0).then(|| score / scored)))
            })
            .collect())
    }
}

fn group_key(d: &Document) -> StoreResult<&Document> {
    d.get_document("_id")
        .map_err(|e| StoreError::Malformed(format!("group key of the overview: {e}")))
}
