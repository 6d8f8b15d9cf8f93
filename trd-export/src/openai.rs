//! OpenAI's transcription shapes (`POST /v1/audio/transcriptions`): `json` (`{"text"}`),
//! `verbose_json` (segments, and words when the caller asks for word timestamps) and the
//! events of a streamed response (`transcript.text.delta` as segments are recognised, then
//! `transcript.text.done`). Typed values rather than bytes, since the face adds what only the
//! request knows (the language asked for).
//!
//! Whisper's per-segment decoding figures have no counterpart in TRD: `tokens` is empty,
//! `temperature` 0, `compression_ratio` 1, `no_speech_prob` 0, and `avg_logprob` is the natural
//! logarithm of the segment's confidence, so a client that filters on it keeps working.

use serde::Serialize;
use trd_core::domain::{AudioFile, Segment};

use crate::view::{self, Entry};

/// `response_format=json`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiTranscription)]
pub struct Transcription {
    pub text: String,
}

/// `response_format=verbose_json`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiVerboseTranscription)]
pub struct VerboseTranscription {
    pub task: &'static str,
    pub language: String,
    /// Seconds of audio.
    pub duration: f64,
    pub text: String,
    pub segments: Vec<VerboseSegment>,
    /// Only when `timestamp_granularities[]=word` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<WordTiming>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiVerboseSegment)]
pub struct VerboseSegment {
    pub id: usize,
    /// Where the segment starts, in 10 ms frames (Whisper's unit).
    pub seek: u64,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub tokens: Vec<u32>,
    pub temperature: f64,
    pub avg_logprob: f64,
    pub compression_ratio: f64,
    pub no_speech_prob: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = OpenAiWordTiming)]
pub struct WordTiming {
    pub word: String,
    pub start: f64,
    pub end: f64,
}

/// One event of a streamed response (`data: <json>` lines of Server-Sent Events).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum StreamEvent {
    #[serde(rename = "transcript.text.delta")]
    Delta { delta: String },
    #[serde(rename = "transcript.text.done")]
    Done { text: String },
}

/// The text of the segments that carry speech, joined by single spaces. Failed segments are
/// left out: the text is what was said, and the response says whether everything was heard.
pub fn text(segments: &[Segment]) -> String {
    spoken(segments)
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The delta a newly recognised segment adds to the text streamed so far (`streamed_any`:
/// whether some text went out before, which this one is spaced from).
pub fn delta(segment: &Segment, streamed_any: bool) -> Option<StreamEvent> {
    let (_, text) = spoken(std::slice::from_ref(segment)).next()?;
    let delta = if streamed_any {
        format!(" {text}")
    } else {
        text
    };
    Some(StreamEvent::Delta { delta })
}

/// `verbose_json` for `file`'s `segments` (ordered by start time), in `language`.
pub fn verbose(
    file: &AudioFile,
    segments: &[Segment],
    language: &str,
    with_words: bool,
) -> VerboseTranscription {
    let spoken: Vec<(&Segment, String)> = spoken(segments).collect();
    let words = with_words.then(|| {
        spoken
            .iter()
            .flat_map(|(segment, _)| &segment.words)
            .map(|w| WordTiming {
                word: w.text.clone(),
                start: seconds(w.start),
                end: seconds(w.end),
            })
            .collect()
    });
    VerboseTranscription {
        task: "transcribe",
        language: language.to_owned(),
        duration: seconds(file.audio_seconds()),
        text: spoken
            .iter()
            .map(|(_, text)| text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        segments: spoken
            .iter()
            .enumerate()
            .map(|(id, (segment, text))| VerboseSegment {
                id,
                seek: (segment.start * 100.0).round().max(0.0) as u64,
                start: seconds(segment.start),
                end: seconds(segment.end),
                text: text.clone(),
                tokens: Vec::new(),
                temperature: 0.0,
                avg_logprob: (f64::from(segment.score.clamp(1, 100)) / 100.0).ln(),
                compression_ratio: 1.0,
                no_speech_prob: 0.0,
            })
            .collect(),
        words,
    }
}

/// The segments with speech, each with its text on one line.
fn spoken(segments: &[Segment]) -> impl Iterator<Item = (&Segment, String)> {
    view::entries(segments).filter_map(|entry| match entry {
        Entry::Speech { segment, text } => Some((segment, text)),
        Entry::Failed { .. } => None,
    })
}

/// Seconds to the millisecond.
fn seconds(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use mongodb::bson::oid::ObjectId;
    use serde_json::json;
    use trd_core::domain::{SegmentStatus, Word};

    use super::*;
    use crate::test_support::file;

    fn segment(words: &[(&str, f64, f64)], status: SegmentStatus, score: u32) -> Segment {
        Segment {
            id: ObjectId::new(),
            audiofile_id: ObjectId::new(),
            channel: 1,
            start: words.first().map_or(0.0, |w| w.1),
            end: words.last().map_or(1.0, |w| w.2),
            speaker: "1".into(),
            score,
            status,
            text: words.iter().map(|w| w.0).collect::<Vec<_>>().join(" "),
            words: words
                .iter()
                .map(|&(text, start, end)| Word {
                    text: text.into(),
                    start,
                    end,
                    score,
                })
                .collect(),
            reason: Some("engine crashed".into()),
            lease: None,
            heard: None,
        }
    }

    fn call() -> Vec<Segment> {
        vec![
            segment(
                &[("안녕", 0.5, 0.9), ("하세요", 0.9, 1.4004)],
                SegmentStatus::Recognized,
                90,
            ),
            segment(&[], SegmentStatus::NoSpeech, 0),
            segment(&[("lost", 1.5, 1.9)], SegmentStatus::Failure, 0),
            segment(&[("네", 2.0, 2.3)], SegmentStatus::Recognized, 50),
        ]
    }

    #[test]
    fn the_text_is_what_was_said() {
        assert_eq!(text(&call()), "안녕 하세요 네");
        assert_eq!(text(&[]), "");
    }

    #[test]
    fn verbose_json_has_what_the_sdk_requires_and_words_only_when_asked() {
        let v = serde_json::to_value(verbose(&file(), &call(), "ko", false)).unwrap();
        assert_eq!(v["task"], "transcribe");
        assert_eq!(v["language"], "ko");
        assert_eq!(v["duration"], 4.25);
        assert_eq!(v["text"], "안녕 하세요 네");
        assert!(v.get("words").is_none());
        let segments = v["segments"].as_array().unwrap();
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[1]["id"], 1);
        assert_eq!(segments[0]["seek"], 50);
        assert_eq!(segments[0]["end"], 1.4);
        assert_eq!(segments[1]["avg_logprob"], 0.5f64.ln());
        for key in [
            "tokens",
            "temperature",
            "compression_ratio",
            "no_speech_prob",
        ] {
            assert!(segments[0].get(key).is_some(), "{key}");
        }
        let with_words = verbose(&file(), &call(), "ko", true);
        let words = serde_json::to_value(with_words.words).unwrap();
        assert_eq!(
            words,
            json!([
                {"word": "안녕", "start": 0.5, "end": 0.9},
                {"word": "하세요", "start": 0.9, "end": 1.4},
                {"word": "네", "start": 2.0, "end": 2.3},
            ])
        );
    }

    #[test]
    fn streamed_deltas_add_up_to_the_text() {
        let mut streamed = String::new();
        for segment in call() {
            if let Some(StreamEvent::Delta { delta }) = delta(&segment, !streamed.is_empty()) {
                streamed.push_str(&delta);
            }
        }
        assert_eq!(streamed, text(&call()));
        let done = StreamEvent::Done { text: streamed };
        assert_eq!(
            serde_json::to_value(done).unwrap(),
            json!({"type": "transcript.text.done", "text": "안녕 하세요 네"})
        );
        let delta = delta(&call()[0], false).unwrap();
        assert_eq!(
            serde_json::to_value(delta).unwrap(),
            json!({"type": "transcript.text.delta", "delta": "안녕 하세요"})
        );
    }
}
