//! Aggregations behind the progress figures: MongoDB sums over a batch's records and segments,
//! so the API never loads whole records to count them.

use futures::TryStreamExt;
use mongodb::bson::{self, doc, oid::ObjectId, Bson, DateTime, Document};

use super::{MongoResultExt, Store, StoreError, StoreResult};
use crate::domain::{BatchName, Control, SegmentStatus, Status};

/// The records of a batch sharing one (control, status) pair, summed.
#[derive(Debug, Clone, PartialEq)]
pub struct FileGroup {
    pub control: Control,
    pub status: Status,
    pub files: u64,
    pub bytes: i64,
    /// Sum of file durations (seconds; a file's channels all last as long as the file).
    pub audio: f64,
    /// Sum over every processed channel (seconds).
    pub audio_ch: f64,
    /// Speech found by diarization (seconds) and its segment count.
    pub speech: f64,
    pub segments: i64,
}

/// Speech segments sharing one recognition status, summed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechTally {
    pub status: SegmentStatus,
    pub seconds: f64,
    pub segments: u64,
}

/// What the files one query is about look like; enough to pick the ids for segment queries.
#[derive(Debug, Clone, PartialEq)]
pub struct FileBrief {
    pub id: ObjectId,
    pub control: Control,
    pub status: Status,
    pub bytes: i64,
    /// Duration in seconds, once normalized.
    pub audio: Option<f64>,
    pub speech: Option<f64>,
    pub last_update: DateTime,
}

/// Speech seconds a stage got through recently, and since when it was working on them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecentWork {
    pub started: Option<DateTime>,
    pub done: f64,
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(
    value: Option<&Bson>,
    what: &str,
) -> StoreResult<T> {
    let value = value.cloned().unwrap_or(Bson::Null);
    bson::from_bson(value.clone())
        .map_err(|e| StoreError::Malformed(format!("{what} {value}: {e}")))
}

/// Sums are doubles or integers depending on what was summed; both are numbers here.
pub(super) fn number(d: &Document, key: &str) -> f64 {
    match d.get(key) {
        Some(Bson::Double(x)) => *x,
        Some(Bson::Int32(x)) => f64::from(*x),
        Some(Bson::Int64(x)) => *x as f64,
        _ => 0.0,
    }
}

fn segment_seconds() -> Document {
    doc! {"$sum": {"$subtract": ["$end", "$start"]}}
}

impl Store {
    pub(super) async fn aggregate_docs(
        &self,
        collection: &mongodb::Collection<Document>,
        pipeline: Vec<Document>,
    ) -> StoreResult<Vec<Document>> {
        collection
            .aggregate(pipeline)
            .await
            .store()?
            .try_collect()
            .await
            .store()
    }

    /// The batch's records summed per (control, status).
    pub async fn batch_file_groups(&self, batch: &BatchName) -> StoreResult<Vec<FileGroup>> {
        let files = self.audiofiles.clone_with_type::<Document>();
        let key = doc! {"control": "$control", "status": "$status"};
        let totals = self.aggregate_docs(
            &files,
            vec![
                doc! {"$match": {"batch": batch.as_str()}},
                doc! {"$group": {
                    "_id": key.clone(),
                    "files": {"$sum": 1},
                    "bytes": {"$sum": "$size"},
                    "speech": {"$sum": "$total_speech"},
                    "segments": {"$sum": "$total_segments"},
                }},
            ],
        );
        // Unwinding rather than summing `$audioChannels.duration` in place: the array-path
        // form is not understood by every MongoDB-wire server, `$unwind` is.
        let channels = self.aggregate_docs(
            &files,
            vec![
                doc! {"$match": {"batch": batch.as_str(), "audioChannels": {"$exists": true}}},
                doc! {"$unwind": "$audioChannels"},
                doc! {"$group": {
                    "_id": {"control": "$control", "status": "$status", "channel": "$audioChannels.channel"},
                    "seconds": {"$sum": "$audioChannels.duration"},
                }},
            ],
        );
        let (totals, channels) = futures::try_join!(totals, channels)?;
        let mut groups = Vec::with_capacity(totals.len());
        for d in &totals {
            let id = d.get_document("_id").map_err(|e| {
                StoreError::Malformed(format!("group key of the batch figures: {e}"))
            })?;
            groups.push(FileGroup {
                control: parse(id.get("control"), "control")?,
                status: parse(id.get("status"), "status")?,
                files: number(d, "files") as u64,
                bytes: number(d, "bytes") as i64,
                audio: 0.0,
                audio_ch: 0.0,
                speech: number(d, "speech"),
                segments: number(d, "segments") as i64,
            });
        }
        for d in &channels {
            let Ok(id) = d.get_document("_id") else {
                continue;
            };
            let control: Control = parse(id.get("control"), "control")?;
            let status: Status = parse(id.get("status"), "status")?;
            let seconds = number(d, "seconds");
            let first_channel = number(id, "channel") == 1.0;
            if let Some(g) = groups
                .iter_mut()
                .find(|g| g.control == control && g.status == status)
            {
                g.audio_ch += seconds;
                if first_channel {
                    g.audio += seconds;
                }
            }
        }
        Ok(groups)
    }

    /// Id, control, status, size and speech of a batch's files with at least `from` status, in
    /// filename order: which files the segment queries below are about.
    pub async fn batch_briefs(
        &self,
        batch: &BatchName,
        from: Status,
    ) -> StoreResult<Vec<FileBrief>> {
        let statuses: Vec<&str> = Status::ALL
            .iter()
            .filter(|s| **s >= from)
            .map(|s| s.as_str())
            .collect();
        let docs: Vec<Document> = self
            .audiofiles
            .clone_with_type::<Document>()
            .find(doc! {"batch": batch.as_str(), "status": {"$in": statuses}})
            .projection(doc! {"_id": 1, "control": 1, "status": 1, "size": 1, "total_speech": 1, "last_update": 1, "audioChannels": 1})
            .sort(doc! {"filename": 1})
            .await
            .store()?
            .try_collect()
            .await
            .store()?;
        docs.iter()
            .map(|d| {
                Ok(FileBrief {
                    id: parse(d.get("_id"), "_id")?,
                    control: parse(d.get("control"), "control")?,
                    status: parse(d.get("status"), "status")?,
                    bytes: number(d, "size") as i64,
                    audio: d
                        .get_array("audioChannels")
                        .ok()
                        .and_then(|chs| chs.first())
                        .and_then(Bson::as_document)
                        .map(|ch| number(ch, "duration")),
                    speech: d.get("total_speech").map(|_| number(d, "total_speech")),
                    last_update: d
                        .get_datetime("last_update")
                        .copied()
                        .unwrap_or(DateTime::MIN),
                })
            })
            .collect()
    }

    /// The speech of these files' segments, per recognition status.
    pub async fn speech_by_status(&self, files: &[ObjectId]) -> StoreResult<Vec<SpeechTally>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let docs = self
            .aggregate_docs(
                &self.segments.clone_with_type(),
                vec![
                    doc! {"$match": {"audiofile_id": {"$in": files}}},
                    doc! {"$group": {"_id": "$status", "seconds": segment_seconds(), "segments": {"$sum": 1}}},
                ],
            )
            .await?;
        docs.iter()
            .map(|d| {
                Ok(SpeechTally {
                    status: parse(d.get("_id"), "segment status")?,
                    seconds: number(d, "seconds"),
                    segments: number(d, "segments") as u64,
                })
            })
            .collect()
    }

    /// Speech seconds per file still waiting for recognition, and already recognized.
    pub async fn recognition_by_file(
        &self,
        files: &[ObjectId],
    ) -> StoreResult<Vec<(ObjectId, SegmentStatus, f64)>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let docs = self
            .aggregate_docs(
                &self.segments.clone_with_type(),
                vec![
                    doc! {"$match": {"audiofile_id": {"$in": files}}},
                    doc! {"$group": {
                        "_id": {"file": "$audiofile_id", "status": "$status"},
                        "seconds": segment_seconds(),
                    }},
                ],
            )
            .await?;
        docs.iter()
            .map(|d| {
                let id = d.get_document("_id").map_err(|e| {
                    StoreError::Malformed(format!("group key of recognition figures: {e}"))
                })?;
                Ok((
                    parse(id.get("file"), "audiofile_id")?,
                    parse(id.get("status"), "segment status")?,
                    number(d, "seconds"),
                ))
            })
            .collect()
    }

    /// Speech of these files' segments recognized since `since`: what was recognized after
    /// the first recognition of that window, and when that first one was.
    pub async fn recognized_since(
        &self,
        files: &[ObjectId],
        since: DateTime,
    ) -> StoreResult<RecentWork> {
        let at = Bson::from("$recognized_at");
        let first = self
            .recent_events(
                files,
                doc! {"recognized_at": {"$gte": since}},
                at.clone(),
                Bson::Null,
            )
            .await?;
        let Some(&(started, _)) = first.first() else {
            return Ok(RecentWork::default());
        };
        let after = self
            .recent_events(
                files,
                doc! {"recognized_at": {"$gt": started}},
                at,
                Bson::Null,
            )
            .await?;
        Ok(RecentWork {
            started: Some(started),
            done: after.first().map_or(0.0, |(_, s)| *s),
        })
    }

    /// Speech found by the diarizations of these files that ended since `since` (a file's
    /// segments are created when its diarization ends). Only what ended after the first of
    /// them is known to have been done since then.
    pub async fn diarized_since(
        &self,
        files: &[ObjectId],
        since: DateTime,
    ) -> StoreResult<RecentWork> {
        // An ObjectId starts with its creation time in seconds: the smallest id of that
        // second bounds every segment created since.
        let seconds = (since.timestamp_millis() / 1000).clamp(0, u32::MAX as i64) as u32;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        let oldest = ObjectId::from_bytes(bytes);
        let mut events = self
            .recent_events(
                files,
                doc! {"_id": {"$gte": oldest}},
                Bson::from(doc! {"$toDate": "$_id"}),
                Bson::from("$audiofile_id"),
            )
            .await?;
        events.sort_by_key(|(at, _)| *at);
        Ok(RecentWork {
            started: events.first().map(|(at, _)| *at),
            done: events.iter().skip(1).map(|(_, s)| s).sum(),
        })
    }

    /// (earliest `at`, speech seconds) of the matching segments, per `per` (one for `null`).
    async fn recent_events(
        &self,
        files: &[ObjectId],
        recent: Document,
        at: Bson,
        per: Bson,
    ) -> StoreResult<Vec<(DateTime, f64)>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let mut filter = doc! {"audiofile_id": {"$in": files}};
        filter.extend(recent);
        let docs = self
            .aggregate_docs(
                &self.segments.clone_with_type(),
                vec![
                    doc! {"$match": filter},
                    doc! {"$group": {"_id": per, "seconds": segment_seconds(), "at": {"$min": at}}},
                ],
            )
            .await?;
        Ok(docs
            .iter()
            .filter_map(|d| Some((*d.get_datetime("at").ok()?, number(d, "seconds"))))
            .collect())
    }
}
