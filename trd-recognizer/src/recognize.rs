//! One segment of PCM through Vosk.

use std::time::{Duration, Instant};

use trd_core::domain::{SegmentStatus, Word};
use trd_core::store::SegmentOutcome;

use crate::hints::{Hints, ALTERNATIVES};
use crate::models::LoadedModel;

/// Audio fed to Vosk per call: short enough that the time limit is checked often.
const FEED_SAMPLES: usize = 4_000;

/// Recognizes `samples` (mono PCM at `sample_rate`) that start `offset` seconds into the file;
/// word times in the outcome are file times. Gives up with RECOGNITION_TIMEOUT past `limit`.
pub fn recognize_segment(
    model: &LoadedModel,
    samples: &[i16],
    sample_rate: u32,
    offset: f64,
    limit: Duration,
    hints: &Hints,
) -> SegmentOutcome {
    let Some(mut recognizer) = model.recognizer(sample_rate) else {
        return failure(format!(
            "the model cannot create a recognizer at {sample_rate} Hz"
        ));
    };
    recognizer
        .recognizer
        .set_max_alternatives(if hints.is_empty() { 0 } else { ALTERNATIVES });
    // The recognizer's clock starts where its previous utterances ended.
    let offset = offset - recognizer.fed_seconds();
    let started = Instant::now();
    // Vosk ends an utterance by itself at a long enough pause; that utterance's words must be
    // taken before more audio is fed, or the recognizer discards them.
    let mut words = Vec::new();
    let mut utterance_ended = false;
    for chunk in samples.chunks(FEED_SAMPLES) {
        if started.elapsed() > limit {
            // Dropped mid-utterance, never reused.
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
        match recognizer.feed(chunk) {
            Ok(vosk::DecodingState::Finalized) => {
                utterance_ended = true;
                let result = recognizer.recognizer.result();
                if let Err(reason) = take_words(result, model, hints, offset, &mut words) {
                    return failure(reason);
                }
            }
            Ok(_) => utterance_ended = false,
            Err(e) => return failure(format!("the recognizer rejected the audio: {e}")),
        }
    }
    if utterance_ended {
        // Vosk keeps an ended utterance's feature pipeline (and its speaker adaptation) for the
        // next audio, and a final result right after an ended utterance does not reset it. A
        // moment of silence opens a new utterance so that the final result does: the next
        // segment must start from scratch, as on a fresh recognizer, or results would depend
        // on which recognizer heard what before.
        if let Err(e) = recognizer.feed(&[0; 160]) {
            return failure(format!("the recognizer rejected the audio: {e}"));
        }
    }
    let result = recognizer.recognizer.final_result();
    if let Err(reason) = take_words(result, model, hints, offset, &mut words) {
        return failure(reason);
    }
    model.give_back(recognizer);
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

/// Appends an utterance's words, in file time, to `words`. With hints the utterance comes as
/// n-best readings: the hints pick one, and each of its words scores the share of the readings'
/// probability that agrees on that word (the n-best estimate of a word's posterior).
fn take_words(
    result: vosk::CompleteResult<'_>,
    model: &LoadedModel,
    hints: &Hints,
    offset: f64,
    words: &mut Vec<Word>,
) -> Result<(), String> {
    let word = |text: &str, start: f32, end: f32, score: u32| Word {
        text: model.spoken_forms().rewrite(text),
        start: round_ms(offset + f64::from(start)),
        end: round_ms(offset + f64::from(end)),
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

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
