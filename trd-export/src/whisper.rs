//! whisper-asr-webservice's outputs (`/asr?output=`) that TRD's other formats do not cover:
//! `tsv` (`start`, `end` in milliseconds and `text`, tab-separated, after a header line) and
//! `json` (Whisper's result: `text`, `segments` with Whisper's per-segment fields, `language`).
//! `txt`, `vtt` and `srt` are [`crate::plain`], WebVTT and SubRip.

use serde::Serialize;
use trd_core::domain::{AudioFile, Segment};

use crate::openai::{self, VerboseSegment};
use crate::view::{self, Entry};

/// `output=tsv` for `segments` (by start time): each line depends on its segment only, so it
/// streams.
pub fn tsv(segments: &[Segment]) -> String {
    let mut out = String::from("start\tend\ttext\n");
    for entry in view::entries(segments) {
        if let Entry::Speech { segment, text } = entry {
            out.push_str(&format!(
                "{}\t{}\t{}\n",
                millis(segment.start),
                millis(segment.end),
                text.replace('\t', " ")
            ));
        }
    }
    out
}

/// `output=json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhisperResult {
    pub text: String,
    pub segments: Vec<WhisperSegment>,
    pub language: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhisperSegment {
    #[serde(flatten)]
    pub segment: VerboseSegment,
    /// With `word_timestamps=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<WhisperWord>>,
    /// With `diarize=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhisperWord {
    pub word: String,
    pub start: f64,
    pub end: f64,
    pub probability: f64,
}

/// Whisper's result for `segments` (by start time).
pub fn result(
    file: &AudioFile,
    segments: &[Segment],
    language: &str,
    with_words: bool,
    with_speakers: bool,
) -> WhisperResult {
    let verbose = openai::verbose(file, segments, language, false);
    let spoken: Vec<&Segment> = view::entries(segments)
        .filter_map(|entry| match entry {
            Entry::Speech { segment, .. } => Some(segment),
            Entry::Failed { .. } => None,
        })
        .collect();
    WhisperResult {
        text: verbose.text,
        segments: verbose
            .segments
            .into_iter()
            .zip(spoken)
            .map(|(segment, source)| WhisperSegment {
                segment,
                words: with_words.then(|| {
                    source
                        .words
                        .iter()
                        .map(|w| WhisperWord {
                            word: w.text.clone(),
                            start: w.start,
                            end: w.end,
                            probability: f64::from(w.score.min(100)) / 100.0,
                        })
                        .collect()
                }),
                speaker: with_speakers.then(|| format!("SPEAKER_{:0>2}", source.speaker)),
            })
            .collect(),
        language: language.to_owned(),
    }
}

fn millis(seconds: f64) -> u64 {
    (seconds * 1000.0).round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{file, segment};

    #[test]
    fn tsv_has_a_header_and_milliseconds() {
        let segments = vec![segment(&[("a", 0.5, 1.0), ("b", 1.0, 1.25)])];
        assert_eq!(tsv(&segments), "start\tend\ttext\n500\t1250\ta b\n");
    }

    #[test]
    fn json_carries_words_and_speakers_when_asked() {
        let segments = vec![segment(&[("a", 0.5, 1.0)])];
        let plain = result(&file(), &segments, "ko", false, false);
        let value = serde_json::to_value(&plain).unwrap();
        assert_eq!(value["text"], "a");
        assert_eq!(value["language"], "ko");
        assert!(value["segments"][0].get("words").is_none());
        assert_eq!(value["segments"][0]["start"], 0.5);
        let full = serde_json::to_value(result(&file(), &segments, "ko", true, true)).unwrap();
        assert_eq!(full["segments"][0]["words"][0]["word"], "a");
        assert_eq!(full["segments"][0]["speaker"], "SPEAKER_01");
    }
}
