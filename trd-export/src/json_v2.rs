//! Speechmatics' transcript format `json-v2` (format 2.9), built from TRD's domain result, for
//! the Speechmatics face and its clients (`speechmatics-python`, `speechmatics-batch`).
//!
//! Each recognized word becomes a `word` result whose one alternative carries the word, its
//! confidence (0–1), the job's language and a speaker label: `S1`, `S2`… in order of first
//! appearance when speakers are asked for, `UU` otherwise. Where TRD's segmenting ends an
//! utterance a `.` `punctuation` result follows (`attaches_to: "previous"`, `is_eos: true`), so
//! the clients' plain text reads as sentences; `punctuation_overrides.permitted_marks` without
//! `.` leaves those out. In the channel modes every result names its channel (`channel_1`… or
//! the caller's labels); in the speaker-change modes a `speaker_change` result, without
//! alternatives, stands between two words of one channel spoken by different speakers.
//!
//! Segments without words (silence, no match, a failure) add nothing: Speechmatics' format has
//! no place for an error inside a transcript; the job's status carries it instead.

use std::collections::HashMap;

use serde::Serialize;
use trd_core::domain::Segment;

/// The format version written, the one the clients were written against.
pub const FORMAT_VERSION: &str = "2.9";

/// How speakers and channels are told apart, as `transcription_config.diarization` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Diarization {
    #[default]
    None,
    Speaker,
    Channel,
    SpeakerChange,
    ChannelAndSpeakerChange,
}

impl Diarization {
    /// The names `transcription_config.diarization` takes.
    pub const NAMES: [&'static str; 5] = [
        "none",
        "speaker",
        "channel",
        "speaker_change",
        "channel_and_speaker_change",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "speaker" => Self::Speaker,
            "channel" => Self::Channel,
            "speaker_change" => Self::SpeakerChange,
            "channel_and_speaker_change" => Self::ChannelAndSpeakerChange,
            _ => return None,
        })
    }

    fn labels_speakers(self) -> bool {
        self == Self::Speaker
    }

    fn labels_channels(self) -> bool {
        matches!(self, Self::Channel | Self::ChannelAndSpeakerChange)
    }

    fn marks_speaker_changes(self) -> bool {
        matches!(self, Self::SpeakerChange | Self::ChannelAndSpeakerChange)
    }
}

/// What the transcript says about its job; the face knows it, the segments do not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobInfo {
    pub id: String,
    /// ISO 8601.
    pub created_at: String,
    pub data_name: String,
    /// Seconds of audio.
    pub duration: f64,
}

/// Everything besides the segments that shapes a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub job: JobInfo,
    /// ISO 8601: when this transcript was made.
    pub created_at: String,
    /// The language code every alternative carries (`transcription_config.language`).
    pub language: String,
    /// Echoed into `metadata.transcription_config` as the caller sent it.
    pub transcription_config: serde_json::Value,
    pub diarization: Diarization,
    /// `channel_diarization_labels`: the label of channel 1, 2…; a channel without one is
    /// `channel_<n>`.
    pub channel_labels: Vec<String>,
    /// `punctuation_overrides.permitted_marks`; `None` permits every mark.
    pub permitted_marks: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    pub format: &'static str,
    pub job: JobInfo,
    pub metadata: Metadata,
    pub results: Vec<RecognitionResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    pub created_at: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub transcription_config: serde_json::Value,
    pub language_pack_info: LanguagePackInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LanguagePackInfo {
    /// How the clients join words into text.
    pub word_delimiter: &'static str,
    pub writing_direction: &'static str,
    pub itn: bool,
    pub adapted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultKind {
    Word,
    Punctuation,
    SpeakerChange,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecognitionResult {
    #[serde(rename = "type")]
    pub kind: ResultKind,
    pub start_time: f64,
    pub end_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attaches_to: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_eos: Option<bool>,
    pub alternatives: Vec<Alternative>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alternative {
    pub content: String,
    /// 0–1.
    pub confidence: f64,
    pub language: String,
    pub speaker: String,
}

impl Transcript {
    /// The transcript as plain text, the way the vendor's `txt` format reads: words joined
    /// by the language's delimiter, punctuation attached to the word before it, and a new
    /// paragraph headed `SPEAKER: S1` (or `CHANNEL: <label>`) whenever the speaker or
    /// channel changes, when the job asked for them.
    pub fn text(&self) -> String {
        let delimiter = self.metadata.language_pack_info.word_delimiter;
        let mut out = String::new();
        let mut heading: Option<String> = None;
        for result in &self.results {
            let Some(best) = result.alternatives.first() else {
                continue;
            };
            let label = match (&result.channel, best.speaker.as_str()) {
                (Some(channel), _) => Some(format!("CHANNEL: {channel}")),
                (None, UNKNOWN_SPEAKER) => None,
                (None, speaker) => Some(format!("SPEAKER: {speaker}")),
            };
            if label.is_some() && label != heading && result.kind == ResultKind::Word {
                if !out.is_empty() {
                    out.push_str("\n\n");
                }
                out.push_str(label.as_deref().unwrap_or_default());
                out.push('\n');
                heading = label;
            } else if result.kind == ResultKind::Word && !out.is_empty() && !out.ends_with('\n') {
                out.push_str(delimiter);
            }
            out.push_str(&best.content);
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out
    }
}

/// The label for an unknown or unasked-for speaker.
pub const UNKNOWN_SPEAKER: &str = "UU";

/// `segments` ordered by start time, as the store gives them.
pub fn transcript(segments: &[Segment], request: &Request) -> Transcript {
    let mode = request.diarization;
    let sentence_end = request
        .permitted_marks
        .as_ref()
        .is_none_or(|marks| marks.iter().any(|m| m == "."));
    let mut speakers = SpeakerLabels::default();
    // The speaker of the last word heard on each channel, for speaker-change results.
    let mut last_speaker: HashMap<u32, &str> = HashMap::new();
    let mut results = Vec::new();
    for segment in segments.iter().filter(|s| !s.words.is_empty()) {
        let channel = mode
            .labels_channels()
            .then(|| channel_label(&request.channel_labels, segment.channel));
        let speaker = if mode.labels_speakers() {
            speakers.of(segment)
        } else {
            UNKNOWN_SPEAKER.to_owned()
        };
        let changed = last_speaker
            .insert(segment.channel, &segment.speaker)
            .is_some_and(|previous| previous != segment.speaker);
        if mode.marks_speaker_changes() && changed {
            let at = seconds(segment.words[0].start);
            results.push(RecognitionResult {
                kind: ResultKind::SpeakerChange,
                start_time: at,
                end_time: at,
                channel: channel.clone(),
                attaches_to: None,
                is_eos: None,
                alternatives: Vec::new(),
            });
        }
        let alternative = |content: &str, confidence: f64| Alternative {
            content: content.to_owned(),
            confidence,
            language: request.language.clone(),
            speaker: speaker.clone(),
        };
        for word in &segment.words {
            results.push(RecognitionResult {
                kind: ResultKind::Word,
                start_time: seconds(word.start),
                end_time: seconds(word.end),
                channel: channel.clone(),
                attaches_to: None,
                is_eos: None,
                alternatives: vec![alternative(
                    &word.text,
                    f64::from(word.score.min(100)) / 100.0,
                )],
            });
        }
        if sentence_end {
            let end = seconds(segment.words[segment.words.len() - 1].end);
            results.push(RecognitionResult {
                kind: ResultKind::Punctuation,
                start_time: end,
                end_time: end,
                channel,
                attaches_to: Some("previous"),
                is_eos: Some(true),
                alternatives: vec![alternative(".", 1.0)],
            });
        }
    }
    Transcript {
        format: FORMAT_VERSION,
        job: request.job.clone(),
        metadata: Metadata {
            created_at: request.created_at.clone(),
            kind: "transcription",
            transcription_config: request.transcription_config.clone(),
            language_pack_info: LanguagePackInfo {
                word_delimiter: " ",
                writing_direction: "left-to-right",
                itn: false,
                adapted: false,
            },
        },
        results,
    }
}

/// `S1`, `S2`… by first appearance. TRD's speaker names are only unique within a channel, so
/// a speaker is its channel and its name.
#[derive(Default)]
pub struct SpeakerLabels {
    known: HashMap<(u32, String), String>,
}

impl SpeakerLabels {
    pub fn of(&mut self, segment: &Segment) -> String {
        let next = self.known.len() + 1;
        self.known
            .entry((segment.channel, segment.speaker.clone()))
            .or_insert_with(|| format!("S{next}"))
            .clone()
    }
}

fn channel_label(labels: &[String], channel: u32) -> String {
    (channel as usize)
        .checked_sub(1)
        .and_then(|i| labels.get(i))
        .cloned()
        .unwrap_or_else(|| format!("channel_{channel}"))
}

/// Seconds to the millisecond, as the format writes them.
fn seconds(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use mongodb::bson::oid::ObjectId;
    use serde_json::json;
    use trd_core::domain::{SegmentStatus, Word};

    use super::*;

    fn segment(channel: u32, speaker: &str, words: &[(&str, f64, f64)]) -> Segment {
        Segment {
            id: ObjectId::new(),
            audiofile_id: ObjectId::new(),
            channel,
            start: words.first().map_or(0.0, |w| w.1),
            end: words.last().map_or(0.0, |w| w.2),
            speaker: speaker.into(),
            score: 90,
            status: if words.is_empty() {
                SegmentStatus::NoSpeech
            } else {
                SegmentStatus::Recognized
            },
            text: words.iter().map(|w| w.0).collect::<Vec<_>>().join(" "),
            words: words
                .iter()
                .map(|&(text, start, end)| Word {
                    text: text.into(),
                    start,
                    end,
                    score: 87,
                })
                .collect(),
            reason: None,
            lease: None,
            heard: None,
        }
    }

    fn request(diarization: Diarization) -> Request {
        Request {
            job: JobInfo {
                id: "job1".into(),
                created_at: "2026-12-01T09:00:00.000Z".into(),
                data_name: "call.wav".into(),
                duration: 12.0,
            },
            created_at: "2026-12-01T09:01:00.000Z".into(),
            language: "ko".into(),
            transcription_config: json!({"language": "ko", "diarization": "speaker"}),
            diarization,
            channel_labels: Vec::new(),
            permitted_marks: None,
        }
    }

    fn dialogue() -> Vec<Segment> {
        vec![
            segment(1, "1", &[("안녕", 0.5, 0.9), ("하세요", 0.9, 1.40049)]),
            segment(1, "1", &[]),
            segment(1, "2", &[("네", 2.0, 2.3)]),
            segment(1, "1", &[("좋아요", 3.0, 3.5)]),
        ]
    }

    /// Each result as `type:content@speaker` (`-` without alternatives), compactly comparable.
    fn items(t: &Transcript) -> Vec<String> {
        t.results
            .iter()
            .map(|r| {
                let kind = serde_json::to_value(r.kind).unwrap();
                match r.alternatives.first() {
                    Some(a) => format!("{}:{}@{}", kind.as_str().unwrap(), a.content, a.speaker),
                    None => format!("{}:-", kind.as_str().unwrap()),
                }
            })
            .collect()
    }

    #[test]
    fn speakers_are_numbered_by_first_appearance_and_utterances_end_in_a_full_stop() {
        let t = transcript(&dialogue(), &request(Diarization::Speaker));
        assert_eq!(
            items(&t),
            [
                "word:안녕@S1",
                "word:하세요@S1",
                "punctuation:.@S1",
                "word:네@S2",
                "punctuation:.@S2",
                "word:좋아요@S1",
                "punctuation:.@S1"
            ]
        );
        let word = &t.results[1];
        assert_eq!((word.start_time, word.end_time), (0.9, 1.4));
        assert_eq!(word.alternatives[0].confidence, 0.87);
        assert_eq!(word.alternatives[0].language, "ko");
        let stop = &t.results[2];
        assert_eq!(stop.attaches_to, Some("previous"));
        assert_eq!(stop.is_eos, Some(true));
        assert_eq!(stop.start_time, 1.4);
    }

    #[test]
    fn plain_text_reads_as_sentences_with_a_paragraph_per_speaker_turn() {
        let speakers = transcript(&dialogue(), &request(Diarization::Speaker)).text();
        assert_eq!(
            speakers,
            "SPEAKER: S1\n안녕 하세요.\n\nSPEAKER: S2\n네.\n\nSPEAKER: S1\n좋아요.\n"
        );
        let plain = transcript(&dialogue(), &request(Diarization::SpeakerChange)).text();
        assert_eq!(plain, "안녕 하세요. 네. 좋아요.\n");
        assert_eq!(transcript(&[], &request(Diarization::None)).text(), "");
    }

    #[test]
    fn without_diarization_every_speaker_is_unknown() {
        let t = transcript(&dialogue(), &request(Diarization::None));
        assert!(t
            .results
            .iter()
            .all(|r| r.alternatives[0].speaker == UNKNOWN_SPEAKER && r.channel.is_none()));
    }

    #[test]
    fn speaker_changes_stand_between_words_of_different_speakers() {
        let t = transcript(&dialogue(), &request(Diarization::SpeakerChange));
        assert_eq!(
            items(&t),
            [
                "word:안녕@UU",
                "word:하세요@UU",
                "punctuation:.@UU",
                "speaker_change:-",
                "word:네@UU",
                "punctuation:.@UU",
                "speaker_change:-",
                "word:좋아요@UU",
                "punctuation:.@UU"
            ]
        );
        assert_eq!(t.results[3].start_time, 2.0);
    }

    #[test]
    fn channels_take_the_callers_labels_and_fall_back_to_their_number() {
        let mut asked = request(Diarization::Channel);
        asked.channel_labels = vec!["agent".into()];
        let segments = [
            segment(1, "1", &[("여보세요", 0.0, 0.5)]),
            segment(2, "1", &[("네", 0.6, 0.8)]),
        ];
        let t = transcript(&segments, &asked);
        let channels: Vec<_> = t.results.iter().map(|r| r.channel.as_deref()).collect();
        assert_eq!(
            channels,
            [
                Some("agent"),
                Some("agent"),
                Some("channel_2"),
                Some("channel_2")
            ]
        );
    }

    #[test]
    fn speaker_changes_are_counted_within_a_channel() {
        // Two channels, one speaker each: alternating channels is no speaker change.
        let segments = [
            segment(1, "1", &[("a", 0.0, 0.5)]),
            segment(2, "1", &[("b", 0.6, 0.8)]),
            segment(1, "1", &[("c", 1.0, 1.2)]),
        ];
        let t = transcript(&segments, &request(Diarization::ChannelAndSpeakerChange));
        assert!(t
            .results
            .iter()
            .all(|r| r.kind != ResultKind::SpeakerChange));
    }

    #[test]
    fn a_full_stop_is_left_out_when_not_permitted() {
        let mut asked = request(Diarization::Speaker);
        asked.permitted_marks = Some(vec![",".into(), "?".into()]);
        let t = transcript(&dialogue(), &asked);
        assert!(t.results.iter().all(|r| r.kind == ResultKind::Word));
    }

    #[test]
    fn the_document_has_what_the_clients_require() {
        let t = transcript(&dialogue(), &request(Diarization::Speaker));
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["format"], "2.9");
        for key in ["id", "created_at", "data_name"] {
            assert!(v["job"][key].is_string(), "job.{key}");
        }
        assert_eq!(v["metadata"]["type"], "transcription");
        assert_eq!(v["metadata"]["language_pack_info"]["word_delimiter"], " ");
        assert_eq!(
            v["metadata"]["transcription_config"]["diarization"],
            "speaker"
        );
        let word = &v["results"][0];
        assert_eq!(word["type"], "word");
        assert!(word.get("attaches_to").is_none() && word.get("is_eos").is_none());
        assert!(word.get("channel").is_none());
    }

    #[test]
    fn diarization_names_parse() {
        for name in Diarization::NAMES {
            assert!(Diarization::parse(name).is_some(), "{name}");
        }
        assert_eq!(Diarization::parse("speakers"), None);
    }
}
