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
//! `audio_format` `file` (a container, the client's default) is heard as a file: see
//! [`super::realtime_file`].

use rocket::{get, State};
use rocket_ws::{Channel, Message, WebSocket};
use serde::Deserialize;
use serde_json::{json, Value};
use trd_core::domain::Word;
use trd_core::live::{text_of, LiveConfig};
use trd_export::json_v2::{Diarization, UNKNOWN_SPEAKER};

use super::config::JobConfig;
use super::realtime_file::FileSession;
use crate::app::App;
use crate::faces::live::{self, Action, AnswerTo, Handover, Limit, LiveProtocol};
use crate::identity::{Access, Operate, Principal};
use crate::jobs::{Answer, JobError, JobResult, Jobs};

/// A live session in the Speechmatics real-time protocol.
#[get("/v2")]
pub async fn realtime(
    app: &State<App>,
    who: Access<Operate>,
    ws: WebSocket,
) -> Result<Channel<'static>, super::error::SmError> {
    let protocol = Realtime::new(app.inner().clone(), who.principal.clone());
    live::serve(app, ws, protocol)
        .await
        .map_err(super::error::SmError::Api)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    S16,
    F32,
}

struct Realtime {
    /// For a `file` session, which becomes a job of the caller's.
    app: App,
    who: Principal,
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
pub(super) struct Refused(pub(super) &'static str, pub(super) String);

/// The first answer of every session.
fn recognition_started(language: &str) -> Action {
    Action::Send(text(json!({
        "message": "RecognitionStarted",
        "id": uuid::Uuid::new_v4().to_string(),
        "language_pack_info": {
            "language_description": language,
            "word_delimiter": " ",
            "writing_direction": "left-to-right",
            "itn": false,
            "adapted": false,
        },
    })))
}

impl Realtime {
    fn new(app: App, who: Principal) -> Self {
        Realtime {
            app,
            who,
            started: None,
            seq_no: 0,
            carry: Vec::new(),
            last_partial: String::new(),
        }
    }

    /// What `StartRecognition` asks for: a stream of raw PCM, or a file.
    fn start(&mut self, jobs: &Jobs, message: &Value) -> Result<Vec<Action>, Refused> {
        let start: Start = serde_json::from_value(message.clone())
            .map_err(|e| Refused("invalid_message", format!("StartRecognition: {e}")))?;
        match start.audio_format.kind.as_str() {
            "raw" => self.start_stream(jobs, start),
            "file" => self.start_file(&start.transcription_config),
            other => Err(Refused(
                "invalid_audio_type",
                format!("audio_format type '{other}' is not known; use raw or file"),
            )),
        }
    }

    /// A file session: the socket goes to [`FileSession`] and the stream's slot is freed.
    fn start_file(&mut self, transcription_config: &Value) -> Result<Vec<Action>, Refused> {
        let config = parse_config(transcription_config)?;
        let options = super::job::recognition_options(&self.app, &config)
            .map_err(|e| Refused("invalid_config", e.to_string()))?;
        let session = FileSession {
            app: self.app.clone(),
            who: self.who.clone(),
            options,
            speaker_labels: config.diarization == Diarization::Speaker,
            language: config.language.clone(),
        };
        Ok(vec![
            recognition_started(&config.language),
            Action::Handover(Handover(Box::new(move |socket| {
                Box::pin(session.run(socket))
            }))),
        ])
    }

    fn start_stream(&mut self, jobs: &Jobs, start: Start) -> Result<Vec<Action>, Refused> {
        let format = start.audio_format;
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
        let config = parse_config(&start.transcription_config)?;
        let partials = start.transcription_config["enable_partials"]
            .as_bool()
            .unwrap_or(false);
        let hints = config.vocab.iter().map(|v| v.content.clone()).collect();
        let mut live_config = jobs
            .stream_config(Some(&config.language), rate, hints)
            .map_err(|e| Refused("invalid_config", e.to_string()))?;
        let speaker_labels = config.diarization == Diarization::Speaker;
        live_config.speakers = speaker_labels;
        let actions = vec![
            Action::Configure(live_config),
            recognition_started(&config.language),
        ];
        self.started = Some(Started {
            encoding,
            language: config.language,
            partials,
            speaker_labels,
        });
        Ok(actions)
    }

    /// A transcript message: `AddTranscript` or `AddPartialTranscript`.
    fn transcript(&self, message: &str, words: &[Word], speaker: Option<usize>) -> Action {
        let started = self.started.as_ref().expect("answers come after the start");
        let speaker = started
            .speaker_labels
            .then(|| speaker.map_or(UNKNOWN_SPEAKER.to_owned(), |s| format!("S{}", s + 1)));
        Action::Send(text(transcript_message(
            message,
            words,
            &started.language,
            speaker.as_deref(),
        )))
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

/// `transcription_config` read as the batch face reads it.
fn parse_config(transcription_config: &Value) -> Result<JobConfig, Refused> {
    let wrapped = json!({"type": "transcription", "transcription_config": transcription_config});
    JobConfig::parse(&wrapped.to_string()).map_err(|e| Refused("invalid_config", e.to_string()))
}

/// A transcript message, `AddTranscript` or `AddPartialTranscript`: `metadata` and json-v2
/// `results`, each word's alternative carrying `speaker` when speakers were asked for.
pub(super) fn transcript_message(
    message: &str,
    words: &[Word],
    language: &str,
    speaker: Option<&str>,
) -> Value {
    let results: Vec<Value> = words
        .iter()
        .map(|w| {
            let mut alternative = json!({
                "content": w.text,
                "confidence": f64::from(w.score) / 100.0,
                "language": language,
            });
            if let Some(speaker) = speaker {
                alternative["speaker"] = json!(speaker);
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
    json!({
        "message": message,
        "format": "2.9",
        "metadata": {
            "start_time": words.first().map_or(0.0, |w| w.start),
            "end_time": words.last().map_or(0.0, |w| w.end),
            "transcript": if transcript.is_empty() { transcript } else { transcript + " " },
        },
        "results": results,
    })
}

pub(super) fn text(value: Value) -> Message {
    Message::Text(value.to_string())
}

/// The vendor's `Warning {type, reason}`.
pub(super) fn warning_message(kind: &str, reason: &str) -> Message {
    text(json!({"message": "Warning", "type": kind, "reason": reason}))
}

/// The vendor's `Error {type, reason}`; the socket closes after it.
pub(super) fn error_message(kind: &str, reason: &str) -> Message {
    text(json!({"message": "Error", "type": kind, "reason": reason}))
}

/// The close that follows an `Error`.
pub(super) fn refusal_close(kind: &'static str) -> rocket_ws::frame::CloseFrame<'static> {
    rocket_ws::frame::CloseFrame {
        code: rocket_ws::frame::CloseCode::Library(4003),
        reason: kind.into(),
    }
}

fn warning(kind: &str, reason: &str) -> Action {
    Action::Send(warning_message(kind, reason))
}

fn error_action(kind: &str, reason: &str) -> Action {
    Action::Send(error_message(kind, reason))
}

fn refuse(Refused(kind, reason): Refused) -> Vec<Action> {
    vec![
        error_action(kind, &reason),
        Action::Close(Some(refusal_close(kind))),
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
                    Ok(actions) => actions,
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
        vec![error_action(kind, &error.to_string())]
    }

    fn limit(&mut self, limit: Limit) -> Vec<Action> {
        match limit {
            Limit::Idle => vec![error_action(
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
