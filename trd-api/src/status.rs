//! Progress figures for a file and for a batch (contract section 4). MongoDB does the summing
//! (`trd_core::store::figures`); this module turns the sums into the contract's figures and
//! estimates the time left.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mongodb::bson::{oid::ObjectId, DateTime};
use serde_json::{json, Map, Value};
use trd_core::domain::{AudioFile, BatchName, Control, SegmentStatus, Stage, Status};
use trd_core::store::figures::{FileBrief, FileGroup, RecentWork, SpeechTally};
use trd_core::store::stage_metrics::StageTimings;

use crate::error::{ApiError, ApiResult};
use crate::guards::App;

/// How far back "the throughput the workers are achieving now" looks.
const THROUGHPUT_WINDOW_MS: i64 = 3 * 60 * 1000;
/// Shortest stretch of work the throughput is measured over.
const MIN_MEASURED_MS: i64 = 4 * 1000;

/// Share of a file's work each part of the pipeline stands for in `progress`: recognition
/// (per speech second, segment-parallel, the slowest stage) dominates.
const NORMALIZATION_SHARE: f64 = 0.05;
const DIARIZATION_SHARE: f64 = 0.05;

/// Bytes per audio second assumed before any file of the batch is normalized (16-bit 16 kHz
/// mono PCM); replaced by the batch's own ratio as soon as one file is.
const ASSUMED_BYTES_PER_SECOND: f64 = 32_000.0;

/// Audio seconds one core gets through per second before any throughput is measured.
const ASSUMED_SPEED_PER_CORE: f64 = 4.0;

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn speech_json(tallies: &[SpeechTally]) -> Value {
    let by_status: BTreeMap<&str, (f64, u64)> =
        tallies.iter().fold(BTreeMap::new(), |mut acc, t| {
            let e = acc.entry(t.status.as_str()).or_insert((0.0, 0));
            e.0 += t.seconds;
            e.1 += t.segments;
            acc
        });
    Value::Object(
        by_status
            .into_iter()
            .map(|(k, (seconds, segments))| {
                (
                    k.to_owned(),
                    json!({"seconds": round3(seconds), "segments": segments}),
                )
            })
            .collect(),
    )
}

pub async fn file_status(app: &App, record: &AudioFile) -> ApiResult<Value> {
    let speech = app.store.speech_by_status(&[record.id]).await?;
    Ok(json!({
        "accounted_speech": speech_json(&speech),
        "total_segments": record.total_segments.unwrap_or(0),
        "total_speech": round3(record.total_speech.unwrap_or(0.0)),
    }))
}

/// Everything the batch figures are computed from, as MongoDB summed it.
#[derive(Debug)]
pub struct BatchSums {
    pub groups: Vec<FileGroup>,
    /// Segments of every file of the batch, per recognition status.
    pub recognition: Vec<SpeechTally>,
    /// Files in recognition that are not over yet (not FINISHED or FAILED).
    pub in_recognition: Vec<FileBrief>,
    /// Their segments' speech per (file, status).
    pub in_recognition_speech: Vec<(ObjectId, SegmentStatus, f64)>,
    pub diarized_recently: RecentWork,
    pub recognized_recently: RecentWork,
    /// What each stage's work costs, from every run the workers have recorded.
    pub costs: StageCosts,
    pub now: DateTime,
}

/// Worker seconds per second of audio (normalize, diarize) or of speech (recognize), as the
/// stage metrics have measured them; `None` until the stage has run.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct StageCosts {
    pub normalize: Option<f64>,
    pub diarize: Option<f64>,
    pub recognize: Option<f64>,
}

impl StageCosts {
    fn from_timings(timings: &[StageTimings]) -> Self {
        let of = |stage: Stage| {
            timings
                .iter()
                .find(|t| t.stage == stage.name())
                .and_then(StageTimings::real_time_factor)
        };
        Self {
            normalize: of(Stage::Normalize),
            diarize: of(Stage::Diarize),
            recognize: of(Stage::Recognize),
        }
    }
}

impl Default for BatchSums {
    fn default() -> Self {
        Self {
            groups: Vec::new(),
            recognition: Vec::new(),
            in_recognition: Vec::new(),
            in_recognition_speech: Vec::new(),
            diarized_recently: RecentWork::default(),
            recognized_recently: RecentWork::default(),
            costs: StageCosts::default(),
            now: DateTime::now(),
        }
    }
}

impl BatchSums {
    pub async fn load(app: &App, batch: &BatchName) -> ApiResult<Self> {
        let now = DateTime::now();
        let since = DateTime::from_millis(now.timestamp_millis() - THROUGHPUT_WINDOW_MS);
        let (groups, with_segments) = futures::try_join!(
            app.store.batch_file_groups(batch),
            app.store.batch_briefs(batch, Status::Diarizing),
        )?;
        let all: Vec<ObjectId> = with_segments.iter().map(|f| f.id).collect();
        let in_recognition: Vec<FileBrief> = with_segments
            .iter()
            .filter(|f| !is_over(f.control) && f.status >= Status::Diarized)
            .cloned()
            .collect();
        let open: Vec<ObjectId> = in_recognition.iter().map(|f| f.id).collect();
        // Only files still open, or closed within the window, can have recent work.
        let recent: Vec<ObjectId> = with_segments
            .iter()
            .filter(|f| !is_over(f.control) || f.last_update >= since)
            .map(|f| f.id)
            .collect();
        let (
            recognition,
            in_recognition_speech,
            mut diarized_recently,
            mut recognized_recently,
            timings,
        ) = futures::try_join!(
            app.store.speech_by_status(&all),
            app.store.recognition_by_file(&open),
            app.store.diarized_since(&recent, since),
            app.store.recognized_since(&recent, since),
            app.store.stage_timings(),
        )?;
        // A batch's first seconds are its slowest (models loading, stages filling up); once it
        // has run a while, only the later half of its time in the window is measured.
        let first = [diarized_recently.started, recognized_recently.started]
            .into_iter()
            .flatten()
            .min();
        if let Some(first) = first {
            let running_for = now.timestamp_millis() - first.timestamp_millis();
            if running_for >= 2 * MIN_MEASURED_MS {
                let later = DateTime::from_millis(first.timestamp_millis() + running_for / 2);
                (diarized_recently, recognized_recently) = futures::try_join!(
                    app.store.diarized_since(&recent, later),
                    app.store.recognized_since(&recent, later),
                )?;
            }
        }
        Ok(Self {
            groups,
            recognition,
            in_recognition,
            in_recognition_speech,
            diarized_recently,
            recognized_recently,
            costs: StageCosts::from_timings(&timings),
            now,
        })
    }
}

fn is_over(control: Control) -> bool {
    matches!(control, Control::Finished | Control::Failed)
}

/// A batch's figures as of now, bypassing (and refreshing) the shared snapshot: for answers
/// that must reflect a change just made, like a reset.
pub async fn batch_status_now(app: &App, batch: &BatchName) -> ApiResult<Value> {
    let started = Instant::now();
    let sums = BatchSums::load(app, batch).await;
    let cost = started.elapsed();
    let key = snapshot_key(app, batch);
    let mut shared = snapshots().lock().unwrap_or_else(|e| e.into_inner());
    shared.retain(|_, s| s.taken.elapsed() < s.serve_for());
    let sums = sums?;
    if sums.groups.is_empty() {
        shared.remove(&key);
        return Err(ApiError::NotFound(format!(
            "no batch '{batch}' (no registered files in it)"
        )));
    }
    let figures = batch_figures(batch, &sums, app.settings.concurrency());
    if cost >= SLOW_FIGURES {
        let snapshot = Snapshot {
            figures: figures.clone(),
            taken: started,
            cost,
            refreshing: false,
        };
        shared.insert(key, snapshot);
    } else {
        shared.remove(&key);
    }
    Ok(figures)
}

/// The batch status clients poll. Figures that take long to sum (batches of thousands of
/// files) are shared between polls: a poll gets the latest snapshot while it is fresh enough,
/// and one past its refresh time is refreshed in the background, so polling never waits for
/// MongoDB to sum the batch again. Quick batches are always summed on the spot.
pub async fn batch_status(app: &App, batch: &BatchName) -> ApiResult<Value> {
    let key = snapshot_key(app, batch);
    {
        let mut shared = snapshots().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = shared.get_mut(&key) {
            let age = s.taken.elapsed();
            if age < s.serve_for() {
                if age >= s.refresh_after() && !s.refreshing {
                    s.refreshing = true;
                    let (app, batch) = (app.clone(), batch.clone());
                    tokio::spawn(async move {
                        if let Err(e) = batch_status_now(&app, &batch).await {
                            tracing::warn!(batch = %batch, error = %e, "refreshing batch figures failed");
                            snapshots()
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&snapshot_key(&app, &batch));
                        }
                    });
                }
                return Ok(s.figures.clone());
            }
        }
    }
    batch_status_now(app, batch).await
}

/// Summing a batch longer than this makes its figures worth sharing between polls.
const SLOW_FIGURES: Duration = Duration::from_millis(25);
/// Shortest time between two summings of a shared batch.
const SNAPSHOT_REFRESH: Duration = Duration::from_secs(1);

struct Snapshot {
    figures: Value,
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

/// Per database (tests run several apps in one process) and batch.
type SnapshotKey = (String, String);

fn snapshot_key(app: &App, batch: &BatchName) -> SnapshotKey {
    (app.settings.database.clone(), batch.as_str().to_owned())
}

fn snapshots() -> &'static Mutex<HashMap<SnapshotKey, Snapshot>> {
    static SNAPSHOTS: OnceLock<Mutex<HashMap<SnapshotKey, Snapshot>>> = OnceLock::new();
    SNAPSHOTS.get_or_init(Mutex::default)
}

/// The contract's batch status from the sums.
pub fn batch_figures(batch: &BatchName, sums: &BatchSums, cores: usize) -> Value {
    let groups = &sums.groups;
    let sum = |f: &dyn Fn(&FileGroup) -> f64| groups.iter().map(f).sum::<f64>();
    let total_files = sum(&|g| g.files as f64) as u64;
    let total_bytes = sum(&|g| g.bytes as f64) as i64;
    let total_audio = sum(&|g| g.audio);
    let total_audio_ch = sum(&|g| g.audio_ch);
    let total_speech = sum(&|g| g.speech);
    let total_segments = sum(&|g| g.segments as f64) as i64;
    let past = |stage: Status| {
        if total_files == 0 {
            return 0.0;
        }
        sum(&|g| {
            if g.status >= stage {
                g.files as f64
            } else {
                0.0
            }
        }) / total_files as f64
    };
    let rate = |speech: f64, audio: f64| if audio > 0.0 { speech / audio } else { 0.0 };
    let work = Work::new(sums);
    json!({
        "ETA": work.eta(sums, cores),
        "batch": batch.as_str(),
        "accounted_control": files_and_bytes(groups, |g| g.control.as_str()),
        "accounted_status": files_and_bytes(groups, |g| g.status.as_str()),
        "accounted_recognition": speech_json(&sums.recognition),
        "normalization": past(Status::Normalized),
        "diarization": past(Status::Diarized),
        "recognition": past(Status::Recognized),
        "progress": work.progress(),
        "speech2audio_rate": rate(total_speech, total_audio),
        "speech2audio_rate_ch": rate(total_speech, total_audio_ch),
        "total_audio": round3(total_audio),
        "total_audio_ch": round3(total_audio_ch),
        "total_bytes": total_bytes,
        "total_files": total_files,
        "total_segments": total_segments,
        "total_speech": round3(total_speech),
    })
}

fn files_and_bytes(groups: &[FileGroup], key: impl Fn(&FileGroup) -> &'static str) -> Value {
    let mut acc: BTreeMap<&str, (i64, u64)> = BTreeMap::new();
    for g in groups {
        let e = acc.entry(key(g)).or_default();
        e.0 += g.bytes;
        e.1 += g.files;
    }
    Value::Object(
        acc.into_iter()
            .map(|(k, (bytes, files))| (k.to_owned(), json!({"bytes": bytes, "files": files})))
            .collect::<Map<_, _>>(),
    )
}

/// The batch's work in audio seconds (what is done, what is left) and in speech seconds
/// (what each stage still has to get through).
struct Work {
    total_audio: f64,
    done_audio: f64,
    /// Running files: audio not yet through normalization and diarization, as speech.
    upstream_speech: f64,
    /// Running files: speech not yet recognized (including what diarization will find).
    recognition_speech: f64,
    /// Running files: audio not yet done, for the estimate before anything is measured.
    running_audio_left: f64,
    /// Running files: audio still to normalize, and audio still to diarize.
    normalization_audio: f64,
    diarization_audio: f64,
    /// Speech per second of audio in the batch's diarized files (0 before any).
    speech_per_audio: f64,
}

impl Work {
    fn new(sums: &BatchSums) -> Self {
        let groups = &sums.groups;
        let normalized = groups.iter().filter(|g| g.status >= Status::Normalized);
        let (audio, bytes) =
            normalized.fold((0.0, 0.0), |(a, b), g| (a + g.audio, b + g.bytes as f64));
        let audio_per_byte = if audio > 0.0 && bytes > 0.0 {
            audio / bytes
        } else {
            1.0 / ASSUMED_BYTES_PER_SECOND
        };
        let diarized = groups.iter().filter(|g| g.status >= Status::Diarized);
        let (speech, bytes) =
            diarized.fold((0.0, 0.0), |(s, b), g| (s + g.speech, b + g.bytes as f64));
        let speech_per_byte = if bytes > 0.0 { speech / bytes } else { 0.0 };

        let mut speech_left: HashMap<ObjectId, (f64, f64)> = HashMap::new();
        for (file, status, seconds) in &sums.in_recognition_speech {
            let e = speech_left.entry(*file).or_default();
            e.1 += seconds;
            if *status == SegmentStatus::Processing {
                e.0 += seconds;
            }
        }

        let mut w = Work {
            total_audio: 0.0,
            done_audio: 0.0,
            upstream_speech: 0.0,
            recognition_speech: 0.0,
            running_audio_left: 0.0,
            normalization_audio: 0.0,
            diarization_audio: 0.0,
            speech_per_audio: if audio_per_byte > 0.0 {
                speech_per_byte / audio_per_byte
            } else {
                0.0
            },
        };
        for g in groups {
            let audio = if g.status >= Status::Normalized {
                g.audio
            } else {
                g.bytes as f64 * audio_per_byte
            };
            w.total_audio += audio;
            let done = if is_over(g.control) {
                audio
            } else if g.status >= Status::Diarized {
                // Per file below: these are the files in recognition.
                0.0
            } else if g.status >= Status::Normalized {
                audio * NORMALIZATION_SHARE
            } else {
                0.0
            };
            w.done_audio += done;
            if g.control == Control::Running && g.status < Status::Diarized {
                w.upstream_speech += g.bytes as f64 * speech_per_byte;
                w.running_audio_left += audio - done;
                w.diarization_audio += audio;
                if g.status < Status::Normalized {
                    w.normalization_audio += audio;
                }
            }
        }
        w.recognition_speech = w.upstream_speech;
        for f in &sums.in_recognition {
            let audio = f.audio.unwrap_or(f.bytes as f64 * audio_per_byte);
            let (left, all) = speech_left.get(&f.id).copied().unwrap_or_default();
            let recognized = if all > 0.0 { 1.0 - left / all } else { 1.0 };
            let share = NORMALIZATION_SHARE + DIARIZATION_SHARE;
            let done = audio * (share + (1.0 - share) * recognized);
            w.done_audio += done;
            if f.control == Control::Running {
                w.recognition_speech += left;
                w.running_audio_left += audio - done;
            }
        }
        w
    }

    fn progress(&self) -> f64 {
        if self.total_audio > 0.0 {
            (self.done_audio / self.total_audio).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Seconds until the running files are done.
    ///
    /// The stages share the workers' cores, so while diarization still runs, recognition gets
    /// only part of them and its measured pace understates what it will do alone. The estimate
    /// therefore counts worker time: what every stage has left, at its measured cost per
    /// second of audio or speech, over the worker time the batch has been getting per second
    /// recently. Without cost figures yet, each stage drains what is left for it at its own
    /// measured pace and the slower one decides; with no measurement at all, a per-core speed
    /// stands in.
    fn eta(&self, sums: &BatchSums, cores: usize) -> f64 {
        if self.running_audio_left <= 0.0 && self.recognition_speech <= 0.0 {
            return 0.0;
        }
        if let Some(seconds) = self.eta_by_worker_time(sums) {
            return seconds.round();
        }
        let upstream = pace(&sums.diarized_recently, sums.now);
        let recognition = pace(&sums.recognized_recently, sums.now);
        let seconds = match (upstream.or(recognition), recognition.or(upstream)) {
            (Some(up), Some(rec)) => (self.upstream_speech / up).max(self.recognition_speech / rec),
            _ => self.running_audio_left / (cores.max(1) as f64 * ASSUMED_SPEED_PER_CORE),
        };
        seconds.round()
    }

    /// The worker-time estimate (see [`Work::eta`]); `None` until costs and throughput are known.
    fn eta_by_worker_time(&self, sums: &BatchSums) -> Option<f64> {
        let costs = sums.costs;
        let (diarize, recognize) = (costs.diarize?, costs.recognize?);
        let normalize = costs.normalize.unwrap_or(0.0);
        let left = self.normalization_audio * normalize
            + self.diarization_audio * diarize
            + self.recognition_speech * recognize;
        // Normalization leaves no trace of when it ran; it is taken to keep pace with the
        // diarizer it feeds.
        let diarized_audio = if self.speech_per_audio > 0.0 {
            sums.diarized_recently.done / self.speech_per_audio
        } else {
            0.0
        };
        let done =
            diarized_audio * (normalize + diarize) + sums.recognized_recently.done * recognize;
        let started = [
            sums.diarized_recently.started,
            sums.recognized_recently.started,
        ]
        .into_iter()
        .flatten()
        .min()?;
        let elapsed = (sums.now.timestamp_millis() - started.timestamp_millis()) as f64 / 1000.0;
        let seconds = left * elapsed / done;
        (done > 0.0 && elapsed > 0.0 && seconds.is_finite()).then_some(seconds)
    }
}

/// Speech seconds per second a stage achieved over its recent work.
fn pace(work: &RecentWork, now: DateTime) -> Option<f64> {
    let started = work.started?;
    let elapsed = (now.timestamp_millis() - started.timestamp_millis()) as f64 / 1000.0;
    (work.done > 0.0 && elapsed > 0.0).then(|| work.done / elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime {
        DateTime::from_millis(ms)
    }

    fn work(started: i64, done: f64) -> RecentWork {
        RecentWork {
            started: Some(at(started)),
            done,
        }
    }

    #[test]
    fn pace_is_the_work_done_over_the_time_since_it_began() {
        assert_eq!(pace(&work(0, 20.0), at(20_000)), Some(1.0));
        assert_eq!(pace(&work(0, 0.0), at(20_000)), None);
        assert_eq!(pace(&RecentWork::default(), at(20_000)), None);
    }

    fn group(control: Control, status: Status, bytes: i64, audio: f64, speech: f64) -> FileGroup {
        FileGroup {
            control,
            status,
            files: 1,
            bytes,
            audio,
            audio_ch: audio,
            speech,
            segments: 0,
        }
    }

    #[test]
    fn eta_drains_each_stage_at_its_pace_and_the_slower_decides() {
        let sums = BatchSums {
            groups: vec![
                group(Control::Finished, Status::Recognized, 1000, 100.0, 50.0),
                group(Control::Running, Status::Initial, 1000, 0.0, 0.0),
            ],
            // Upstream delivers 1 speech second per second, recognition 0.5.
            diarized_recently: work(0, 10.0),
            recognized_recently: work(0, 5.0),
            now: at(10_000),
            ..BatchSums::default()
        };
        let work = Work::new(&sums);
        // The running file should hold as much speech per byte as the finished one: 50 s.
        assert_eq!(work.upstream_speech, 50.0);
        assert_eq!(work.recognition_speech, 50.0);
        assert_eq!(work.eta(&sums, 2), 100.0);
        assert_eq!(work.progress(), 0.5);
    }

    #[test]
    fn with_stage_costs_the_eta_is_worker_time_left_over_worker_time_per_second() {
        let sums = BatchSums {
            groups: vec![
                // Diarized: 100 s of audio held 50 s of speech.
                group(Control::Finished, Status::Recognized, 1000, 100.0, 50.0),
                // 100 s of audio still to diarize (normalized already)...
                group(Control::Running, Status::Normalized, 1000, 100.0, 0.0),
            ],
            // In the last 10 s: 20 s of speech diarized (40 s of audio, at 0.1 worker seconds
            // each: 4) and 30 s recognized (at 0.2: 6). 10 worker seconds in 10 s.
            diarized_recently: work(0, 20.0),
            recognized_recently: work(0, 30.0),
            costs: StageCosts {
                normalize: None,
                diarize: Some(0.1),
                recognize: Some(0.2),
            },
            now: at(10_000),
            ..BatchSums::default()
        };
        let work = Work::new(&sums);
        // ...and its 50 s of speech to recognize: 100 × 0.1 + 50 × 0.2 = 20 worker seconds.
        assert_eq!(work.eta(&sums, 2), 20.0);
        // Each stage at its own pace, the slower deciding, would say 25 s (50 / 2 per second).
        let without_costs = BatchSums {
            costs: StageCosts::default(),
            ..sums
        };
        assert_eq!(work.eta(&without_costs, 2), 25.0);
    }

    #[test]
    fn nothing_running_means_no_eta() {
        let sums = BatchSums {
            groups: vec![group(Control::Idle, Status::Initial, 1000, 0.0, 0.0)],
            ..BatchSums::default()
        };
        assert_eq!(Work::new(&sums).eta(&sums, 2), 0.0);
    }
}
