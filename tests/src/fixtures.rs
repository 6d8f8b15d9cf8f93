//! Records and segments written straight into MongoDB, to put a batch in exactly the states a
//! test (or the status benchmark) needs without running the pipeline.

use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use trd_core::domain::{Control, SegmentStatus, Status};
use trd_core::Store;

/// One file of a synthetic batch.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub filename: String,
    pub control: Control,
    pub status: Status,
    pub size: i64,
    /// Duration of each processed channel (seconds); empty before normalization.
    pub channels: Vec<f64>,
    /// `(start, end, status)` of each speech segment; sets `total_speech`/`total_segments`.
    pub segments: Vec<(f64, f64, SegmentStatus)>,
}

impl FileSpec {
    pub fn new(filename: &str, control: Control, status: Status, size: i64) -> Self {
        Self {
            filename: filename.to_owned(),
            control,
            status,
            size,
            channels: Vec::new(),
            segments: Vec::new(),
        }
    }

    pub fn channels(mut self, durations: &[f64]) -> Self {
        self.channels = durations.to_vec();
        self
    }

    pub fn segments(mut self, segments: &[(f64, f64, SegmentStatus)]) -> Self {
        self.segments = segments.to_vec();
        self
    }

    pub fn record(&self, id: ObjectId, batch: &str) -> Document {
        let now = DateTime::now();
        let mut d = doc! {
            "_id": id,
            "batch": batch,
            "filename": &self.filename,
            "format": "wav",
            "size": self.size,
            "md5": "0123456789abcdef0123456789abcdef",
            "create_date": now,
            "last_update": now,
            "control": self.control.as_str(),
            "status": self.status.as_str(),
        };
        if !self.channels.is_empty() {
            let channels: Vec<Document> = self
                .channels
                .iter()
                .enumerate()
                .map(|(i, d)| doc! {"bandwidth": "8000", "channel": i as i32 + 1, "duration": *d})
                .collect();
            d.insert("audioChannels", channels);
        }
        if self.status >= Status::Diarized {
            let speech: f64 = self.segments.iter().map(|(s, e, _)| e - s).sum();
            d.insert("total_speech", speech);
            d.insert("total_segments", self.segments.len() as i64);
        }
        if self.control == Control::Failed {
            d.insert(
                "error",
                doc! {"stage": self.status.as_str(), "reason": "synthetic failure"},
            );
        }
        d
    }

    /// Segment documents; `created` is when diarization made them (their ids carry it) and
    /// when the recognized ones were recognized.
    pub fn segment_docs(&self, file: ObjectId, created: DateTime) -> Vec<Document> {
        let seconds = (created.timestamp_millis() / 1000) as u32;
        self.segments
            .iter()
            .enumerate()
            .map(|(i, (start, end, status))| {
                let mut id = ObjectId::new().bytes();
                id[..4].copy_from_slice(&seconds.to_be_bytes());
                let recognized = *status != SegmentStatus::Processing;
                let text = if recognized {
                    format!("segment {} of {}", i + 1, self.filename)
                } else {
                    String::new()
                };
                let words: Vec<Document> = text
                    .split(' ')
                    .filter(|w| recognized && !w.is_empty())
                    .enumerate()
                    .map(|(k, w)| {
                        let at = start + k as f64 * 0.1;
                        doc! {"text": w, "start": at, "end": at + 0.1, "score": 90}
                    })
                    .collect();
                let mut segment = doc! {
                    "_id": ObjectId::from_bytes(id),
                    "audiofile_id": file,
                    "channel": 1,
                    "start": *start,
                    "end": *end,
                    "speaker": "1",
                    "score": if recognized { 90 } else { 0 },
                    "status": status.as_str(),
                    "text": text,
                    "words": words,
                };
                if recognized {
                    segment.insert("recognized_at", created);
                }
                segment
            })
            .collect()
    }
}

/// Inserts the files of a batch and their segments; returns their ids in `files` order.
/// Segments look diarized at `created` (an hour ago keeps them out of the recent throughput).
pub async fn insert_batch(
    store: &Store,
    batch: &str,
    files: &[FileSpec],
    created: DateTime,
) -> Vec<ObjectId> {
    let db = store.database();
    let records = db.collection::<Document>("audiofiles");
    let segments = db.collection::<Document>("segments");
    let ids: Vec<ObjectId> = files.iter().map(|_| ObjectId::new()).collect();
    let docs: Vec<Document> = files
        .iter()
        .zip(&ids)
        .map(|(f, id)| f.record(*id, batch))
        .collect();
    for chunk in docs.chunks(1000) {
        records.insert_many(chunk).await.expect("insert records");
    }
    let segs: Vec<Document> = files
        .iter()
        .zip(&ids)
        .flat_map(|(f, id)| f.segment_docs(*id, created))
        .collect();
    for chunk in segs.chunks(1000) {
        segments.insert_many(chunk).await.expect("insert segments");
    }
    ids
}

pub fn an_hour_ago() -> DateTime {
    DateTime::from_millis(DateTime::now().timestamp_millis() - 3_600_000)
}
