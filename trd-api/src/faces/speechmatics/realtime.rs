//! The Speechmatics real-time API, `GET /v2` (WebSocket), for the `speechmatics-rt` client:
//!
//! - `StartRecognition` (`audio_format` raw `pcm_s16le`/`pcm_f32le` with `sample_rate`;
//!   `transcription_config` read as the batch face reads it: `language`, `additional_vocab`,
//!   `diarization`) → `RecognitionStarted {id}`;
//! - binary `AddAudio` frames → `AudioAdded {seq_no}` (1, 2, 3 …: the client takes the
//!   server's count as its own);
//! - `AddPartialTranscript` (with `enable_partials`) as the utterance grows, `AddTranscript`
//!   when it ends, both with `metadata {start_time, end_time, transcript}` and json-v2
//!   `results`;
//! - `EndOfStream {last_seq_no}` → the last `AddTranscript`, then `EndOfTranscript`;
//! - `Error {type, reason}` (then the socket closes) and `Warning {type, reason}`.
//!
//! With `diarization: speaker` every final word carries its utterance's speaker, `S1`, `S2`…
//! in order of first appearance, told apart from each utterance's voiceprint as the stream
//! goes (partials, and utterances too short to tell, are `UU`, the vendor's "unknown").
//! `audio_format` `file` (a container to decode) is refused with `invalid_audio_type`: a live
//! session hears PCM; a file goes to the batch API.

use rocket::{get, State};
use rocket_ws::{Channel, Message, WebSocket};
use serde::Deserialize;
use serde_json::{json, Value};
use trd_core::domain::Word;
use trd_core::live::{text_of, LiveConfig};
use trd_export::json_v2::Diarization;

use super::config::JobConfig;
use crate::app::App;
use crate::faces::live::{self, Action, AnswerTo, Limit, LiveProtocol};
use crate::identity::{Access, Operate};
use crate::jobs::{Answer, JobError, JobResult, Jobs};

/// A live session in the Speechmatics real-time protocol.
#[get("/v2")]
pub async fn realtime(
    app: &State<App>,
    _who: Access<Operate>,
    ws: WebSocket,
) -> Result<Channel<'static>, super::error::SmError> {
    live::serve(app, ws, Realtime::default())
        .await
        .map_err(super::error::SmError::Api)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    S16,
    F32,
}

#[derive(Default)]
struct Realtime {
    started: Option<Started>,
    seq_no: u64,
    carry: Vec<u8>,
    last_partial: String,
}

/// What `StartRecognition` set.
struct Started {
    encoding: Encoding,
    language: String,
    partials: bool,
    speaker_labels: bool,
}

#[derive(Deserialize)]
struct Start {
    audio_format: AudioFormat,
    #[serde(default)]
    transcription_config: Value,
}

#[derive(Deserialize)]
struct AudioFormat {
    #[serde(rename = "type")]
    kind: String,
    encoding: Option<String>,
    sample_rate: Option<u32>,
}

/// A vendor error: its `type` and `reason`.
struct Refused(&'static str, String);

impl Realtime {
    fn start(
        &mut self,
        jobs: &Jobs,
        message: &Value,
    ) -> Result<(LiveConfig, Vec<Action>), Refused> {
        let start: Start = serde_json::from_value(message.clone())
            .map_err(|e| Refused("invalid_message", format!("StartRecognition: {e}")))?;
        let format = start.audio_format;
        if format.kind != "raw" {
            return Err(Refused(
                "invalid_audio_type",
                format!(
                    "audio_format type '{}' is not served live; send raw pcm_s16le or pcm_f32le, or submit the file as a batch job",
                    format.kind
                ),
            ));
        }
        let encoding = match format.encoding.as_deref() {
            Some("pcm_s16le") | None => Encoding::S16,
            Some("pcm_f32le") => Encoding::F32,
            Some(other) => {
                return Err(Refused(
                    "invalid_audio_type",
                    format!("encoding '{other}' is not supported; use pcm_s16le or pcm_f32le"),
                ))
            }
        };
        let rate = format.sample_rate.unwrap_or(16_000);
        let wrapped =
            json!({"type": "transcription", "transcription_config": start.transcription_config});
        let config = JobConfig::parse(&wrapped.to_string())
            .map_err(|e| Refused("invalid_config", e.to_string()))?;
        let partials = start.transcription_config["enable_partials"]
            .as_bool()
            .unwrap_or(false);
        let hints = config.vocab.iter().map(|v| v.content.clone()).collect();
        let mut live_config = jobs
            .stream_config(Some(&config.language), rate, hints)
            .map_err(|e| Refused("invalid_config", e.to_string()))?;
        let speaker_labels = config.diarization == Diarization::Speaker;
        live_config.speakers = speaker_labels;
        let actions = vec![Action::Send(text(json!({
            "message": "RecognitionStarted",
            "id": uuid::Uuid::new_v4().to_string(),
            "language_pack_info": {
                "language_description": config.language,
                "word_delimiter": " ",
                "writing_direction": "left-to-right",
                "itn": false,
                "adapted": false,
            },
        })))];
        self.started = Some(Started {
            encoding,
            language: config.language,
            partials,
            speaker_labels,
        });
        Ok((live_config, actions))
    }

    /// A transcript message: `AddTranscript` or `AddPartialTranscript`.
    fn transcript(&self, message: &str, words: &[Word], speaker: Option<usize>) -> Action {
        let started = self.started.as_ref().expect("answers come after the start");
        let results: Vec<Value> = words
            .iter()
            .map(|w| {
                let mut alternative = json!({
                    "content": w.text,
                    "confidence": f64::from(w.score) / 100.0,
                    "language": started.language,
                });
                if started.speaker_labels {
                    alternative["speaker"] =
                        json!(speaker.map_or("UU".to_owned(), |s| format!("S{}", s + 1)));
                }
                json!({
                    "type": "word",
                    "start_time": w.start,
                    "end_time": w.end,
                    "alternatives": [alternative],
                })
            })
            .collect();
        let transcript = text_of(words);
        Action::Send(text(json!({
            "message": message,
            "format": "2.9",
            "metadata": {
                "start_time": words.first().map_or(0.0, |w| w.start),
                "end_time": words.last().map_or(0.0, |w| w.end),
                "transcript": if transcript.is_empty() { transcript } else { transcript + " " },
            },
            "results": results,
        })))
    }

    fn samples(&mut self, bytes: &[u8]) -> Vec<i16> {
        let encoding = self.started.as_ref().map_or(Encoding::S16, |s| s.encoding);
        let width = match encoding {
            Encoding::S16 => 2,
            Encoding::F32 => 4,
        };
        self.carry.extend_from_slice(bytes);
        let whole = self.carry.len() / width * width;
        let frames: Vec<u8> = self.carry.drain(..whole).collect();
        match encoding {
            Encoding::S16 => frames
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect(),
            Encoding::F32 => frames
                .chunks_exact(4)
                .map(|b| {
                    let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    (x.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16
                })
                .collect(),
        }
    }
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string())
}

fn warning(kind: &str, reason: &str) -> Action {
    Action::Send(text(
        json!({"message": "Warning", "type": kind, "reason": reason}),
    ))
}

fn error_message(kind: &str, reason: &str) -> Action {
    Action::Send(text(
        json!({"message": "Error", "type": kind, "reason": reason}),
    ))
}

fn refuse(Refused(kind, reason): Refused) -> Vec<Action> {
    vec![
        error_message(kind, &reason),
        Action::Close(Some(rocket_ws::frame::CloseFrame {
            code: rocket_ws::frame::CloseCode::Library(4003),
            reason: kind.into(),
        })),
    ]
}

impl LiveProtocol for Realtime {
    fn default_config(&self, _jobs: &Jobs) -> JobResult<LiveConfig> {
        Err(JobError::InvalidOptions(
            "audio came before StartRecognition".into(),
        ))
    }

    fn text(&mut self, jobs: &Jobs, frame: &str) -> Vec<Action> {
        let Ok(message) = serde_json::from_str::<Value>(frame) else {
            return refuse(Refused(
                "invalid_message",
                "a text frame must be a JSON message".into(),
            ));
        };
        match message["message"].as_str() {
            Some("StartRecognition") if self.started.is_none() => {
                match self.start(jobs, &message) {
                    Ok((config, mut actions)) => {
                        actions.insert(0, Action::Configure(config));
                        actions
                    }
                    Err(refused) => refuse(refused),
                }
            }
            Some("EndOfStream") if self.started.is_some() => vec![Action::End],
            Some("SetRecognitionConfig") => vec![warning(
                "unsupported_message",
                "SetRecognitionConfig is ignored: the session keeps its configuration",
            )],
            Some(other) => refuse(Refused(
                "protocol_error",
                format!("unexpected message '{other}' at this point of the session"),
            )),
            None => refuse(Refused(
                "invalid_message",
                "a message needs its 'message' field".into(),
            )),
        }
    }

    fn binary(&mut self, _jobs: &Jobs, bytes: Vec<u8>) -> Vec<Action> {
        if self.started.is_none() {
            return refuse(Refused(
                "protocol_error",
                "AddAudio came before StartRecognition".into(),
            ));
        }
        self.seq_no += 1;
        let samples = self.samples(&bytes);
        vec![
            Action::Audio(samples),
            Action::Send(text(
                json!({"message": "AudioAdded", "seq_no": self.seq_no}),
            )),
        ]
    }

    fn answer(&mut self, answer: Answer, to: AnswerTo) -> Vec<Action> {
        let mut actions: Vec<Action> = answer
            .finals
            .iter()
            .filter(|u| !u.words.is_empty())
            .map(|u| self.transcript("AddTranscript", &u.words, u.speaker))
            .collect();
        if !answer.finals.is_empty() {
            self.last_partial.clear();
        }
        let partials = self.started.as_ref().is_some_and(|s| s.partials);
        let partial = text_of(&answer.partial);
        if partials && to == AnswerTo::Audio && !partial.is_empty() && partial != self.last_partial
        {
            actions.push(self.transcript("AddPartialTranscript", &answer.partial, None));
            self.last_partial = partial;
        }
        if to == AnswerTo::End {
            actions.push(Action::Send(text(json!({"message": "EndOfTranscript"}))));
            actions.push(Action::Close(None));
        }
        actions
    }

    fn error(&mut self, error: &JobError) -> Vec<Action> {
        let kind = match error {
            JobError::InvalidOptions(_) => "invalid_config",
            JobError::Busy { .. } | JobError::NoWorker { .. } => "quota_exceeded",
            _ => "job_error",
        };
        vec![error_message(kind, &error.to_string())]
    }

    fn limit(&mut self, limit: Limit) -> Vec<Action> {
        match limit {
            Limit::Idle => vec![error_message(
                "idle_timeout",
                "no audio arrived for too long",
            )],
            Limit::Length => vec![warning(
                "session_timeout",
                "the session reached its longest allowed length and ends now",
            )],
        }
    }
}
