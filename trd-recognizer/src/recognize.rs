//! One segment of PCM through Vosk.

use std::time::{Duration, Instant};

use trd_core::domain::{SegmentStatus, Word};
use trd_core::store::SegmentOutcome;

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
) -> SegmentOutcome {
    let Some(mut recognizer) = model.recognizer(sample_rate) else {
        return failure(format!(
            "the model cannot create a recognizer at {sample_rate} Hz"
        ));
    };
    recognizer.set_words(true);
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
        if let Err(e) = recognizer.accept_waveform(chunk) {
            return failure(format!("the recognizer rejected the audio: {e}"));
        }
    }
    let vosk::CompleteResult::Single(result) = recognizer.final_result() else {
        return failure(
            "the recognizer returned alternatives where one result was expected".into(),
        );
    };
    let words: Vec<Word> = result
        .result
        .iter()
        .map(|w| Word {
            text: w.word.to_owned(),
            start: round_ms(offset + w.start as f64),
            end: round_ms(offset + w.end as f64),
            score: confidence_score(w.conf),
        })
        .collect();
    let text = result.text.trim().to_owned();
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
