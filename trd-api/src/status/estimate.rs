//! The batch's work in audio and speech seconds, the progress it makes and the time it still
//! needs: pure arithmetic over [`BatchSums`], unit-tested below.

use std::collections::HashMap;

use mongodb::bson::{oid::ObjectId, DateTime};
use trd_core::domain::{Control, SegmentStatus, Status};
use trd_core::store::figures::RecentWork;

use super::sums::{is_over, BatchSums};

/// Share of a file's work each part of the pipeline stands for in `progress`: recognition
/// (per speech second, segment-parallel, the slowest stage) dominates.
const NORMALIZATION_SHARE: f64 = 0.05;
const DIARIZATION_SHARE: f64 = 0.05;

/// Bytes per audio second assumed before any file of the batch is normalized (16-bit 16 kHz
/// mono PCM); replaced by the batch's own ratio as soon as one file is.
const ASSUMED_BYTES_PER_SECOND: f64 = 32_000.0;

/// Audio seconds one core gets through per second before any throughput is measured.
const ASSUMED_SPEED_PER_CORE: f64 = 4.0;

/// The batch's work in audio seconds (what is done, what is left) and in speech seconds
/// (what each stage still has to get through).
pub(super) struct Work {
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
    pub(super) fn new(sums: &BatchSums) -> Self {
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

    pub(super) fn progress(&self) -> f64 {
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
    pub(super) fn eta(&self, sums: &BatchSums, cores: usize) -> f64 {
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
    use crate::status::sums::StageCosts;
    use trd_core::store::figures::FileGroup;

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
