//! One segment of PCM through Vosk.

use std::time::{Duration, Instant};

use trd_core::domain::{SegmentStatus, Word};
use trd_core::store::SegmentOutcome;

use crate::hints::{Hints, ALTERNATIVES};
use crate::models::{LoadedModel, RunRecognizer};

/// Audio fed to Vosk per call: short enough that the time limit is checked often.
const FEED_SAMPLES: usize = 4_000;

/// Recognizes one segment of a run on `recognizer` (a new one for the run's first segment, or
/// after a segment that left it unusable); gives the recognizer back when it can hear the
/// run's next segment.
pub fn recognize_in_run(
    recognizer: Option<RunRecognizer>,
    model: &LoadedModel,
    sample_rate: u32,
    samples: &[i16],
    offset: f64,
    limit: Duration,
    hints: &Hints,
) -> (Option<RunRecognizer>, SegmentOutcome) {
    let Some(mut recognizer) = recognizer.or_else(|| model.recognizer(sample_rate)) else {
        let reason = format!("the model cannot create a recognizer at {sample_rate} Hz");
        return (None, failure(reason));
    };
    let outcome = recognize_segment(&mut recognizer, model, samples, offset, limit, hints);
    let between_utterances = matches!(
        outcome.status,
        SegmentStatus::Recognized | SegmentStatus::NoMatch
    );
    (between_utterances.then_some(recognizer), outcome)
}

/// Recognizes `samples` (mono PCM at the recognizer's rate) that start `offset` seconds into
/// the file; word times in the outcome are file times. Gives up with RECOGNITION_TIMEOUT past
/// `limit`. The recognizer ends between utterances, ready for the run's next segment, unless
/// the outcome is a timeout or a failure: then it may have stopped mid-utterance and must not
/// be used again.
pub fn recognize_segment(
    recognizer: &mut RunRecognizer,
    model: &LoadedModel,
    samples: &[i16],
    offset: f64,
    limit: Duration,
    hints: &Hints,
) -> SegmentOutcome {
    let mut hearing = SegmentHearing::begin(recognizer, hints, offset);
    let started = Instant::now();
    for chunk in samples.chunks(FEED_SAMPLES) {
        if started.elapsed() > limit {
            return SegmentOutcome {
                status: SegmentStatus::RecognitionTimeout,
                text: String::new(),
                words: Vec::new(),
                score: 0,
                reason: Some(format!(
                    "recognition took longer than {} s",
                    limit.as_secs()
                )),
            };
        }
        if let Err(reason) = hearing.feed(recognizer, model, hints, chunk) {
            return failure(reason);
        }
    }
    hearing.finish(recognizer, model, hints)
}

/// One segment heard as it arrives, exactly as [`recognize_segment`] hears it whole: in chunks
/// of `FEED_SAMPLES` from its first sample (Vosk's results depend on how its input is cut).
pub struct SegmentHearing {
    clock: SegmentClock,
    words: Vec<Word>,
    utterance_ended: bool,
    /// Samples short of a whole chunk, fed with the next ones or at the end.
    pending: Vec<i16>,
}

impl SegmentHearing {
    /// Starts a segment that begins `offset` seconds into the audio.
    pub fn begin(recognizer: &mut RunRecognizer, hints: &Hints, offset: f64) -> Self {
        recognizer
            .vosk
            .set_max_alternatives(if hints.is_empty() { 0 } else { ALTERNATIVES });
        // Word times come on the recognizer's clock, which started with the run.
        let clock = SegmentClock {
            offset,
            heard: recognizer.heard_seconds(),
        };
        Self {
            clock,
            words: Vec::new(),
            utterance_ended: false,
            pending: Vec::new(),
        }
    }

    /// Hears more of the segment.
    pub fn hear(
        &mut self,
        recognizer: &mut RunRecognizer,
        model: &LoadedModel,
        hints: &Hints,
        samples: &[i16],
    ) -> Result<(), String> {
        self.pending.extend_from_slice(samples);
        let whole = self.pending.len() / FEED_SAMPLES * FEED_SAMPLES;
        let chunks: Vec<i16> = self.pending.drain(..whole).collect();
        for chunk in chunks.chunks(FEED_SAMPLES) {
            self.feed(recognizer, model, hints, chunk)?;
        }
        Ok(())
    }

    fn feed(
        &mut self,
        recognizer: &mut RunRecognizer,
        model: &LoadedModel,
        hints: &Hints,
        chunk: &[i16],
    ) -> Result<(), String> {
        // Vosk ends an utterance by itself at a long enough pause; that utterance's words must
        // be taken before more audio is fed, or the recognizer discards them.
        match recognizer.feed(chunk) {
            Ok(vosk::DecodingState::Finalized) => {
                self.utterance_ended = true;
                let result = recognizer.vosk.result();
                take_words(result, model, hints, self.clock, &mut self.words)
            }
            Ok(_) => {
                self.utterance_ended = false;
                Ok(())
            }
            Err(e) => Err(format!("the recognizer rejected the audio: {e}")),
        }
    }

    /// The words heard so far, the last ones tentative.
    pub fn partial(&self, recognizer: &mut RunRecognizer, model: &LoadedModel) -> Vec<Word> {
        let forms = model.spoken_forms();
        let clock = self.clock;
        let tentative = recognizer.vosk.partial_result().partial_result;
        let mut words = self.words.clone();
        words.extend(tentative.iter().map(|w| Word {
            text: forms.rewrite(w.word),
            start: clock.file_time(w.start),
            end: clock.file_time(w.end),
            score: confidence_score(w.conf),
        }));
        words
    }

    /// Ends the segment: its outcome, the recognizer left between utterances.
    pub fn finish(
        mut self,
        recognizer: &mut RunRecognizer,
        model: &LoadedModel,
        hints: &Hints,
    ) -> SegmentOutcome {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            if let Err(reason) = self.feed(recognizer, model, hints, &rest) {
                return failure(reason);
            }
        }
        if self.utterance_ended {
            // After an utterance Vosk ended by itself, a final result does nothing, and the
            // next segment would inherit this one's feature pipeline and speaker adaptation. A
            // moment of silence opens a new utterance, so that the final result ends it and the
            // next segment starts from scratch.
            if let Err(e) = recognizer.feed(&[0; 160]) {
                return failure(format!("the recognizer rejected the audio: {e}"));
            }
        }
        let result = recognizer.vosk.final_result();
        let mut words = self.words;
        if let Err(reason) = take_words(result, model, hints, self.clock, &mut words) {
            return failure(reason);
        }
        let text = words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        if words.is_empty() || text.is_empty() {
            return SegmentOutcome {
                status: SegmentStatus::NoMatch,
                text: String::new(),
                words: Vec::new(),
                score: 0,
                reason: None,
            };
        }
        let score =
            (words.iter().map(|w| w.score as f64).sum::<f64>() / words.len() as f64).round() as u32;
        SegmentOutcome {
            status: SegmentStatus::Recognized,
            text,
            words,
            score,
            reason: None,
        }
    }
}

/// Appends an utterance's words, in file time, to `words`. With hints the utterance comes as
/// n-best readings: the hints pick one, and each of its words scores the share of the readings'
/// probability that agrees on that word (the n-best estimate of a word's posterior).
fn take_words(
    result: vosk::CompleteResult<'_>,
    model: &LoadedModel,
    hints: &Hints,
    clock: SegmentClock,
    words: &mut Vec<Word>,
) -> Result<(), String> {
    let word = |text: &str, start: f32, end: f32, score: u32| Word {
        text: model.spoken_forms().rewrite(text),
        start: clock.file_time(start),
        end: clock.file_time(end),
        score,
    };
    match result {
        vosk::CompleteResult::Single(result) => {
            words.extend(
                result
                    .result
                    .iter()
                    .map(|w| word(w.word, w.start, w.end, confidence_score(w.conf))),
            );
        }
        vosk::CompleteResult::Multiple(result) => {
            let readings: Vec<(f64, String)> = result
                .alternatives
                .iter()
                .map(|a| (a.confidence as f64, a.text.to_owned()))
                .collect();
            let Some(chosen) = result.alternatives.get(hints.choose(&readings)) else {
                return Ok(());
            };
            let probabilities = softmax(readings.iter().map(|r| r.0));
            for w in &chosen.result {
                let agreeing: f64 = result
                    .alternatives
                    .iter()
                    .zip(&probabilities)
                    .filter(|(a, _)| {
                        a.result
                            .iter()
                            .any(|o| o.word == w.word && (o.start - w.start).abs() < 0.1)
                    })
                    .map(|(_, p)| p)
                    .sum();
                words.push(word(
                    w.word,
                    w.start,
                    w.end,
                    confidence_score(agreeing as f32),
                ));
            }
        }
    }
    Ok(())
}

fn softmax(scores: impl Iterator<Item = f64> + Clone) -> Vec<f64> {
    let top = scores.clone().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = scores.map(|s| (s - top).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

fn failure(reason: String) -> SegmentOutcome {
    SegmentOutcome {
        status: SegmentStatus::Failure,
        text: String::new(),
        words: Vec::new(),
        score: 0,
        reason: Some(reason),
    }
}

fn confidence_score(conf: f32) -> u32 {
    (conf.clamp(0.0, 1.0) * 100.0).round() as u32
}

/// Turns the recognizer's clock into file time.
#[derive(Clone, Copy)]
struct SegmentClock {
    /// Where the segment starts in the file.
    offset: f64,
    /// Where the recognizer's clock stood when the segment began.
    heard: f64,
}

impl SegmentClock {
    /// Rounded to the millisecond within the segment first, so that a word gets the same time
    /// to the bit whatever the recognizer heard before: the float error of a clock that has
    /// run on is rounded away instead of carried into the sum (and never makes it negative).
    fn file_time(self, clock_seconds: f32) -> f64 {
        let within = round_ms(clock_seconds as f64 - self.heard);
        round_ms(self.offset + if within > 0.0 { within } else { 0.0 })
    }
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
