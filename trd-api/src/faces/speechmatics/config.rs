//! A Speechmatics job's `config` (a JSON string in the submit form), parsed once at the edge
//! into what TRD does with it. The caller's JSON is kept as sent, since the clients want it
//! echoed verbatim or not at all (the new SDK rebuilds it and raises on unknown keys).
//!
//! Features the pipeline has no stage for (translation, summaries, alignment…) are refused
//! as unsupported, naming the feature, as the appliance does; options that only tune the
//! vendor's engine (`operating_point`, `enable_entities`, `domain`…) are accepted and have no
//! effect.

use serde::Deserialize;
use serde_json::Value;
use trd_export::json_v2::Diarization;

/// Why a config cannot be taken.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("the job config is not valid JSON: {0}")]
    NotJson(String),
    #[error("the job config is invalid: {0}")]
    Invalid(String),
    /// Asks for something TRD does not do (answered 501).
    #[error("{0} is not supported by this server")]
    Unsupported(String),
}

/// A vocabulary entry: a word to favour, and how it may sound.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocab {
    pub content: String,
    pub sounds_like: Vec<String>,
}

/// Where to POST when the job ends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Notification {
    pub url: String,
    #[serde(default)]
    pub contents: Vec<String>,
    #[serde(default)]
    pub auth_headers: Vec<String>,
    #[serde(default)]
    pub method: Option<String>,
}

/// Audio to download instead of an uploaded `data_file`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FetchData {
    pub url: String,
    #[serde(default)]
    pub auth_headers: Vec<String>,
}

/// What TRD does with a submitted config.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    /// The config as the caller sent it.
    pub raw: Value,
    pub language: String,
    pub diarization: Diarization,
    pub max_speakers: Option<u32>,
    /// 0–1: how readily a new speaker is heard (`speaker_change_sensitivity`).
    pub speaker_sensitivity: Option<f64>,
    pub channel_labels: Vec<String>,
    pub vocab: Vec<Vocab>,
    pub permitted_marks: Option<Vec<String>>,
    pub srt_max_line_length: Option<usize>,
    pub srt_max_lines: Option<usize>,
    pub notifications: Vec<Notification>,
    pub fetch_data: Option<FetchData>,
}

/// At most this many `additional_vocab` entries (the vendor's own limit).
pub const MAX_VOCAB: usize = 1_000;

/// Top-level keys naming features with no stage in TRD's pipeline.
const UNSUPPORTED_FEATURES: [&str; 10] = [
    "alignment_config",
    "fetch_text",
    "text_url",
    "translation_config",
    "language_identification_config",
    "summarization_config",
    "sentiment_analysis_config",
    "topic_detection_config",
    "auto_chapters_config",
    "audio_events_config",
];

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    transcription_config: Option<WireTranscription>,
    #[serde(default)]
    fetch_data: Option<FetchData>,
    #[serde(default)]
    notification_config: Vec<Notification>,
    #[serde(default)]
    output_config: Option<WireOutput>,
}

#[derive(Deserialize)]
struct WireTranscription {
    language: Option<String>,
    #[serde(default)]
    diarization: Option<String>,
    #[serde(default)]
    additional_vocab: Vec<WireVocab>,
    #[serde(default)]
    punctuation_overrides: Option<WirePunctuation>,
    #[serde(default)]
    speaker_diarization_config: Option<WireSpeakerConfig>,
    #[serde(default)]
    channel_diarization_labels: Vec<String>,
    #[serde(default)]
    speaker_change_sensitivity: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireVocab {
    Word(String),
    Entry {
        content: String,
        #[serde(default)]
        sounds_like: Vec<String>,
    },
}

#[derive(Deserialize)]
struct WirePunctuation {
    permitted_marks: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct WireSpeakerConfig {
    max_speakers: Option<u32>,
    speaker_sensitivity: Option<f64>,
}

#[derive(Deserialize)]
struct WireOutput {
    srt_overrides: Option<WireSrt>,
}

#[derive(Deserialize)]
struct WireSrt {
    max_line_length: Option<usize>,
    max_lines: Option<usize>,
}

impl JobConfig {
    /// Parses the `config` form field.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: Value =
            serde_json::from_str(text).map_err(|e| ConfigError::NotJson(e.to_string()))?;
        let Some(object) = raw.as_object() else {
            return Err(ConfigError::Invalid("it must be a JSON object".into()));
        };
        if let Some(feature) = UNSUPPORTED_FEATURES
            .iter()
            .find(|k| object.contains_key(**k))
        {
            return Err(ConfigError::Unsupported(format!("`{feature}`")));
        }
        let wire: Wire =
            serde_json::from_value(raw.clone()).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        match wire.kind.as_deref() {
            None | Some("transcription") => {}
            Some("alignment") => return Err(ConfigError::Unsupported("alignment jobs".into())),
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "type '{other}' is not 'transcription'"
                )))
            }
        }
        let Some(tc) = wire.transcription_config else {
            return Err(ConfigError::Invalid(
                "`transcription_config` is required".into(),
            ));
        };
        let language = tc
            .language
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| {
                ConfigError::Invalid("`transcription_config.language` is required".into())
            })?;
        let diarization = match tc.diarization.as_deref() {
            None => Diarization::None,
            Some(name) => Diarization::parse(name).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "diarization '{name}' is not one of {}",
                    Diarization::NAMES.join(", ")
                ))
            })?,
        };
        let speaker = tc.speaker_diarization_config;
        let max_speakers = speaker.as_ref().and_then(|s| s.max_speakers);
        if let Some(n) = max_speakers.filter(|n| !(2..=100).contains(n)) {
            return Err(ConfigError::Invalid(format!(
                "max_speakers must be from 2 to 100, not {n}"
            )));
        }
        let speaker_sensitivity = tc
            .speaker_change_sensitivity
            .or(speaker.and_then(|s| s.speaker_sensitivity));
        if let Some(s) = speaker_sensitivity.filter(|s| !(0.0..=1.0).contains(s)) {
            return Err(ConfigError::Invalid(format!(
                "a speaker sensitivity is from 0 to 1, not {s}"
            )));
        }
        if tc.additional_vocab.len() > MAX_VOCAB {
            return Err(ConfigError::Invalid(format!(
                "{} additional_vocab entries: at most {MAX_VOCAB}",
                tc.additional_vocab.len()
            )));
        }
        let vocab = tc
            .additional_vocab
            .into_iter()
            .map(|v| match v {
                WireVocab::Word(content) => Vocab {
                    content,
                    sounds_like: Vec::new(),
                },
                WireVocab::Entry {
                    content,
                    sounds_like,
                } => Vocab {
                    content,
                    sounds_like,
                },
            })
            .filter(|v| !v.content.trim().is_empty())
            .collect();
        let srt = wire.output_config.and_then(|o| o.srt_overrides);
        for (name, value) in [
            (
                "max_line_length",
                srt.as_ref().and_then(|s| s.max_line_length),
            ),
            ("max_lines", srt.as_ref().and_then(|s| s.max_lines)),
        ] {
            if value == Some(0) {
                return Err(ConfigError::Invalid(format!(
                    "srt_overrides.{name} must be positive"
                )));
            }
        }
        Ok(JobConfig {
            language,
            diarization,
            max_speakers,
            speaker_sensitivity,
            channel_labels: tc.channel_diarization_labels,
            vocab,
            permitted_marks: tc.punctuation_overrides.and_then(|p| p.permitted_marks),
            srt_max_line_length: srt.as_ref().and_then(|s| s.max_line_length),
            srt_max_lines: srt.and_then(|s| s.max_lines),
            notifications: wire.notification_config,
            fetch_data: wire.fetch_data,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_sdks_default_config_parses_and_is_kept_verbatim() {
        let text = r#"{"type":"transcription","transcription_config":{"language":"ko","operating_point":"enhanced","diarization":"speaker","enable_entities":true}}"#;
        let config = JobConfig::parse(text).unwrap();
        assert_eq!(config.language, "ko");
        assert_eq!(config.diarization, Diarization::Speaker);
        assert_eq!(config.raw, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn vocabulary_takes_strings_and_entries() {
        let config = JobConfig::parse(
            r#"{"transcription_config":{"language":"en","additional_vocab":["gnocchi",{"content":"Ciarán","sounds_like":["Kieran"]}]}}"#,
        )
        .unwrap();
        assert_eq!(
            config.vocab,
            [
                Vocab {
                    content: "gnocchi".into(),
                    sounds_like: vec![]
                },
                Vocab {
                    content: "Ciarán".into(),
                    sounds_like: vec!["Kieran".into()]
                }
            ]
        );
    }

    #[test]
    fn channel_mode_labels_notifications_and_srt_overrides() {
        let config = JobConfig::parse(
            r#"{"transcription_config":{"language":"ko","diarization":"channel","channel_diarization_labels":["agent","caller"],"punctuation_overrides":{"permitted_marks":[",","?"]}},
                "notification_config":[{"url":"http://127.0.0.1:9/cb","contents":["transcript","jobinfo"],"auth_headers":["Authorization: Bearer x"]}],
                "output_config":{"srt_overrides":{"max_line_length":20,"max_lines":1}}}"#,
        )
        .unwrap();
        assert_eq!(config.diarization, Diarization::Channel);
        assert_eq!(config.channel_labels, ["agent", "caller"]);
        assert_eq!(config.permitted_marks, Some(vec![",".into(), "?".into()]));
        assert_eq!(config.notifications[0].contents, ["transcript", "jobinfo"]);
        assert_eq!(
            (config.srt_max_line_length, config.srt_max_lines),
            (Some(20), Some(1))
        );
    }

    #[test]
    fn what_the_pipeline_cannot_do_is_unsupported_and_mistakes_are_invalid() {
        let unsupported = [
            r#"{"type":"alignment","transcription_config":{"language":"en"}}"#,
            r#"{"transcription_config":{"language":"en"},"translation_config":{"target_languages":["de"]}}"#,
        ];
        for text in unsupported {
            assert!(
                matches!(JobConfig::parse(text), Err(ConfigError::Unsupported(_))),
                "{text}"
            );
        }
        let invalid = [
            "[]",
            r#"{"type":"transcription"}"#,
            r#"{"transcription_config":{}}"#,
            r#"{"transcription_config":{"language":"en","diarization":"speakers"}}"#,
            r#"{"transcription_config":{"language":"en","speaker_diarization_config":{"max_speakers":1}}}"#,
            r#"{"transcription_config":{"language":"en","speaker_change_sensitivity":2}}"#,
            r#"{"transcription_config":{"language":"en"},"output_config":{"srt_overrides":{"max_lines":0}}}"#,
        ];
        for text in invalid {
            assert!(
                matches!(JobConfig::parse(text), Err(ConfigError::Invalid(_))),
                "{text}: {:?}",
                JobConfig::parse(text)
            );
        }
        assert!(matches!(
            JobConfig::parse("{"),
            Err(ConfigError::NotJson(_))
        ));
    }

    #[test]
    fn too_much_vocabulary_is_refused() {
        let words: Vec<String> = (0..=MAX_VOCAB).map(|i| format!("w{i}")).collect();
        let text = serde_json::json!({"transcription_config": {"language": "en", "additional_vocab": words}});
        assert!(matches!(
            JobConfig::parse(&text.to_string()),
            Err(ConfigError::Invalid(m)) if m.contains("at most 1000")
        ));
    }
}
