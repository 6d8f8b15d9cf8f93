//! Aggregations behind the progress figures: MongoDB sums over a batch's records and segments,
//! so the API never loads whole records to count them.

use std::collections::HashMap;

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

/// What a file of a batch looks like to the figures: enough to sum the batch and to pick the
/// ids for segment queries.
#[derive(Debug, Clone, PartialEq)]
pub struct FileBrief {
    pub id: ObjectId,
    pub control: Control,
    pub status: Status,
    pub bytes: i64,
    /// Duration in seconds (of channel 1), once normalized.
    pub audio: Option<f64>,
    /// Sum of every processed channel's duration (seconds; 0 until normalized).
    pub audio_ch: f64,
    pub speech: Option<f64>,
    /// Segments diarization found (0 until diarized).
    pub segments: i64,
    pub last_update: DateTime,
}

/// The batch's files summed per (control, status), groups in order of first appearance.
pub fn file_groups(files: &[FileBrief]) -> Vec<FileGroup> {
    let mut groups: Vec<FileGroup> = Vec::new();
    for f in files {
        let at = match groups
            .iter()
            .position(|g| g.control == f.control && g.status == f.status)
        {
            Some(at) => at,
            None => {
                groups.push(FileGroup {
                    control: f.control,
                    status: f.status,
                    files: 0,
                    bytes: 0,
                    audio: 0.0,
                    audio_ch: 0.0,
                    speech: 0.0,
                    segments: 0,
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[at];
        g.files += 1;
        g.bytes += f.bytes;
        g.audio += f.audio.unwrap_or(0.0);
        g.audio_ch += f.audio_ch;
        g.speech += f.speech.unwrap_or(0.0);
        g.segments += f.segments;
    }
    groups
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

    /// The briefs of a batch's files, in filename order: one find, from which
    /// [`file_groups`] sums the batch and the segment queries below pick their files.
    /// (Summing the records in MongoDB instead took two aggregations that cost the
    /// MongoDB-wire server more than this find, which the segment queries need anyway.)
    pub async fn batch_briefs(&self, batch: &BatchName) -> StoreResult<Vec<FileBrief>> {
        let docs = found_docs(
            self.audiofiles
                .clone_with_type::<Document>()
                .find(doc! {"batch": batch.as_str()})
                .projection(doc! {"_id": 1, "control": 1, "status": 1, "size": 1, "total_speech": 1, "total_segments": 1, "last_update": 1, "audioChannels": 1})
                .sort(doc! {"filename": 1}),
        )
        .await?;
        docs.iter()
            .map(|d| {
                let channels: Vec<&Document> = d
                    .get_array("audioChannels")
                    .map(|chs| chs.iter().filter_map(Bson::as_document).collect())
                    .unwrap_or_default();
                Ok(FileBrief {
                    id: parse(d.get("_id"), "_id")?,
                    control: parse(d.get("control"), "control")?,
                    status: parse(d.get("status"), "status")?,
                    bytes: number(d, "size") as i64,
                    audio: channels
                        .iter()
                        .find(|ch| number(ch, "channel") == 1.0)
                        .map(|ch| number(ch, "duration")),
                    audio_ch: channels.iter().map(|ch| number(ch, "duration")).sum(),
                    speech: d.get("total_speech").map(|_| number(d, "total_speech")),
                    segments: number(d, "total_segments") as i64,
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
        Ok(tally_by_status(&self.speech_by_file(files).await?))
    }

    /// The speech of these files' segments, per file and recognition status.
    pub async fn speech_by_file(&self, files: &[ObjectId]) -> StoreResult<Vec<FileSpeech>> {
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
                        "segments": {"$sum": 1},
                    }},
                ],
            )
            .await?;
        docs.iter()
            .map(|d| {
                let id = d.get_document("_id").map_err(|e| {
                    StoreError::Malformed(format!("group key of the speech figures: {e}"))
                })?;
                Ok(FileSpeech {
                    file: parse(id.get("file"), "audiofile_id")?,
                    tally: SpeechTally {
                        status: parse(id.get("status"), "segment status")?,
                        seconds: number(d, "seconds"),
                        segments: number(d, "segments") as u64,
                    },
                })
            })
            .collect()
    }

    /// The segments of `files` that diarization created, or recognition finished, at or after
    /// `since` (diarization to the second: a segment's creation time is its id's): one read,
    /// from which [`RecentSegments`] answers for `since` and any later time.
    pub async fn segments_since(
        &self,
        files: &[ObjectId],
        since: DateTime,
    ) -> StoreResult<RecentSegments> {
        if files.is_empty() {
            return Ok(RecentSegments::default());
        }
        let docs = found_docs(
            self.segments
                .clone_with_type::<Document>()
                .find(doc! {
                    "audiofile_id": {"$in": files},
                    "$or": [
                        {"_id": {"$gte": first_id_of_second(since)}},
                        {"recognized_at": {"$gte": since}},
                    ],
                })
                .projection(
                    doc! {"_id": 1, "audiofile_id": 1, "start": 1, "end": 1, "recognized_at": 1},
                ),
        )
        .await?;
        docs.iter()
            .map(|d| {
                let id: ObjectId = parse(d.get("_id"), "_id")?;
                Ok(SegmentEvent {
                    file: parse(d.get("audiofile_id"), "audiofile_id")?,
                    created: id.timestamp(),
                    recognized_at: d.get_datetime("recognized_at").ok().copied(),
                    seconds: number(d, "end") - number(d, "start"),
                })
            })
            .collect::<StoreResult<_>>()
            .map(RecentSegments)
    }
}

/// Every document `find` answers.
async fn found_docs(
    find: impl std::future::IntoFuture<Output = mongodb::error::Result<mongodb::Cursor<Document>>>,
) -> StoreResult<Vec<Document>> {
    find.await.store()?.try_collect().await.store()
}

/// The smallest id an object created in `at`'s second can have: an ObjectId starts with its
/// creation time in seconds.
fn first_id_of_second(at: DateTime) -> ObjectId {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&whole_seconds(at).to_be_bytes());
    ObjectId::from_bytes(bytes)
}

fn whole_seconds(at: DateTime) -> u32 {
    (at.timestamp_millis().div_euclid(1000)).clamp(0, u32::MAX as i64) as u32
}

/// One file's speech in one recognition status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileSpeech {
    pub file: ObjectId,
    pub tally: SpeechTally,
}

/// Files' speech summed per recognition status, in order of first appearance.
pub fn tally_by_status(speech: &[FileSpeech]) -> Vec<SpeechTally> {
    let mut tallies: Vec<SpeechTally> = Vec::new();
    for FileSpeech { tally, .. } in speech {
        match tallies.iter_mut().find(|t| t.status == tally.status) {
            Some(t) => {
                t.seconds += tally.seconds;
                t.segments += tally.segments;
            }
            None => tallies.push(*tally),
        }
    }
    tallies
}

/// A segment as the figures of recent work see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEvent {
    pub file: ObjectId,
    /// When the diarization that found it stored it (to the second).
    pub created: DateTime,
    pub recognized_at: Option<DateTime>,
    /// Its speech, in seconds.
    pub seconds: f64,
}

/// Segments created or recognized recently ([`Store::segments_since`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecentSegments(pub Vec<SegmentEvent>);

impl RecentSegments {
    /// Speech found by the diarizations that ended since `since` (to the second; a file's
    /// segments are created when its diarization ends). Only what ended after the first of
    /// them is known to have been done since then.
    pub fn diarized_since(&self, since: DateTime) -> RecentWork {
        let from = whole_seconds(since);
        // Per file: when its segments were stored, and their speech.
        let mut per_file: HashMap<ObjectId, (DateTime, f64)> = HashMap::new();
        for s in self.0.iter().filter(|s| whole_seconds(s.created) >= from) {
            let (at, seconds) = per_file.entry(s.file).or_insert((s.created, 0.0));
            *at = (*at).min(s.created);
            *seconds += s.seconds;
        }
        let mut files: Vec<(DateTime, ObjectId, f64)> = per_file
            .into_iter()
            .map(|(file, (at, seconds))| (at, file, seconds))
            .collect();
        files.sort_by_key(|(at, file, _)| (*at, *file));
        RecentWork {
            started: files.first().map(|(at, _, _)| *at),
            done: files.iter().skip(1).map(|(_, _, seconds)| seconds).sum(),
        }
    }

    /// Speech recognized since `since`: what was recognized after the first recognition of
    /// that window, and when that first one was.
    pub fn recognized_since(&self, since: DateTime) -> RecentWork {
        let recognized = || {
            self.0
                .iter()
                .filter_map(|s| Some((s.recognized_at?, s.seconds)))
                .filter(move |(at, _)| *at >= since)
        };
        let Some(started) = recognized().map(|(at, _)| at).min() else {
            return RecentWork::default();
        };
        RecentWork {
            started: Some(started),
            done: recognized()
                .filter(|(at, _)| *at > started)
                .map(|(_, seconds)| seconds)
                .sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief(control: Control, status: Status, audio: Option<f64>, audio_ch: f64) -> FileBrief {
        FileBrief {
            id: ObjectId::new(),
            control,
            status,
            bytes: 1000,
            audio,
            audio_ch,
            speech: audio.map(|a| a / 2.0),
            segments: 3,
            last_update: DateTime::MIN,
        }
    }

    #[test]
    fn files_are_summed_per_control_and_status() {
        let files = [
            brief(Control::Running, Status::Diarized, Some(10.0), 20.0),
            brief(Control::Idle, Status::Initial, None, 0.0),
            brief(Control::Running, Status::Diarized, Some(4.0), 4.0),
            brief(Control::Running, Status::Recognizing, Some(6.0), 6.0),
        ];
        let groups = file_groups(&files);
        assert_eq!(groups.len(), 3);
        let running = &groups[0];
        assert_eq!(
            (running.control, running.status),
            (Control::Running, Status::Diarized)
        );
        assert_eq!(running.files, 2);
        assert_eq!(running.bytes, 2000);
        assert_eq!(running.audio, 14.0);
        assert_eq!(running.audio_ch, 24.0);
        assert_eq!(running.speech, 7.0);
        assert_eq!(running.segments, 6);
        let idle = &groups[1];
        assert_eq!((idle.files, idle.audio, idle.speech), (1, 0.0, 0.0));
        assert!(file_groups(&[]).is_empty());
    }

    #[test]
    fn speech_is_tallied_per_status_across_files() {
        let (a, b) = (ObjectId::new(), ObjectId::new());
        let speech = |file, status, seconds, segments| FileSpeech {
            file,
            tally: SpeechTally {
                status,
                seconds,
                segments,
            },
        };
        let tallies = tally_by_status(&[
            speech(a, SegmentStatus::Recognized, 3.0, 2),
            speech(a, SegmentStatus::Processing, 1.0, 1),
            speech(b, SegmentStatus::Recognized, 2.5, 4),
        ]);
        assert_eq!(
            tallies,
            vec![
                SpeechTally {
                    status: SegmentStatus::Recognized,
                    seconds: 5.5,
                    segments: 6
                },
                SpeechTally {
                    status: SegmentStatus::Processing,
                    seconds: 1.0,
                    segments: 1
                },
            ]
        );
    }

    fn at(seconds: f64) -> DateTime {
        DateTime::from_millis((seconds * 1000.0) as i64)
    }

    fn segment(
        file: ObjectId,
        created: i64,
        recognized: Option<f64>,
        seconds: f64,
    ) -> SegmentEvent {
        SegmentEvent {
            file,
            created: DateTime::from_millis(created * 1000),
            recognized_at: recognized.map(at),
            seconds,
        }
    }

    #[test]
    fn diarized_work_counts_the_files_stored_after_the_first_one_in_the_window() {
        let (early, first, second, third) = (
            ObjectId::new(),
            ObjectId::new(),
            ObjectId::new(),
            ObjectId::new(),
        );
        let recent = RecentSegments(vec![
            segment(early, 99, None, 50.0),
            segment(first, 100, None, 2.0),
            segment(first, 100, None, 3.0),
            segment(second, 104, None, 4.0),
            segment(third, 107, None, 1.5),
            segment(third, 107, Some(110.0), 0.5),
        ]);
        // The window starts within second 100: that second's file counts as its first.
        let work = recent.diarized_since(at(100.7));
        assert_eq!(work.started, Some(at(100.0)));
        assert_eq!(work.done, 4.0 + 2.0);
        let later = recent.diarized_since(at(105.0));
        assert_eq!(later.started, Some(at(107.0)));
        assert_eq!(later.done, 0.0);
        assert_eq!(recent.diarized_since(at(108.0)), RecentWork::default());
    }

    #[test]
    fn recognized_work_counts_what_came_after_the_first_recognition_in_the_window() {
        let file = ObjectId::new();
        let recent = RecentSegments(vec![
            segment(file, 90, Some(95.0), 9.0),
            segment(file, 90, Some(100.5), 1.0),
            segment(file, 90, Some(101.0), 2.0),
            segment(file, 90, Some(101.0), 3.0),
            segment(file, 90, None, 7.0),
            segment(file, 90, Some(104.0), 4.0),
        ]);
        let work = recent.recognized_since(at(100.0));
        assert_eq!(work.started, Some(at(100.5)));
        assert_eq!(work.done, 2.0 + 3.0 + 4.0);
        let later = recent.recognized_since(at(101.0));
        assert_eq!(later.started, Some(at(101.0)));
        assert_eq!(later.done, 4.0);
        assert_eq!(recent.recognized_since(at(105.0)), RecentWork::default());
    }
}
