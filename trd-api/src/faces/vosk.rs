//! vosk-server's WebSocket protocol, `GET /asr/ws` (the Vosk project's reference server, which
//! many integrations speak):
//!
//! - an optional first text frame `{"config": {"sample_rate", "words", "max_alternatives",
//!   "phrase_list"}}`;
//! - binary frames of 16-bit little-endian mono PCM, each answered once: `{"partial": "..."}`,
//!   or `{"result": [{"conf", "end", "start", "word"}], "text": "..."}` when an utterance ended;
//! - `{"eof" : 1}` (any spacing) → the final result, then the socket closes; `{"reset" : 1}` →
//!   the final result, and the session goes on.
//!
//! `phrase_list` becomes TRD's hints (readings rescored towards the phrases), not a grammar:
//! words outside it can still be heard. With `max_alternatives` above 0 a result comes in the
//! server's n-best shape, with TRD's one chosen reading in it.

use rocket::{get, State};
use rocket_ws::{Channel, Message, WebSocket};
use serde::Deserialize;
use serde_json::{json, Value};
use trd_core::domain::Word;
use trd_core::live::{text_of, LiveConfig, Utterance};

use super::live::{self, Action, AnswerTo, LiveProtocol};
use crate::app::App;
use crate::error::ApiError;
use crate::identity::{Access, Operate};
use crate::jobs::{Answer, JobError, JobResult, Jobs};

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![asr_ws]
}

/// The rate of audio sent without a configuration: TRD's models are 16 kHz models.
const DEFAULT_RATE: u32 = 16_000;

/// A live stream in vosk-server's protocol.
#[get("/asr/ws")]
pub async fn asr_ws(
    app: &State<App>,
    _who: Access<Operate>,
    ws: WebSocket,
) -> Result<Channel<'static>, ApiError> {
    live::serve(app, ws, Vosk::default()).await
}

/// The client's `config` object, as the reference server reads it.
#[derive(Debug, Default, Deserialize)]
struct ClientConfig {
    sample_rate: Option<f64>,
    words: Option<Value>,
    max_alternatives: Option<u32>,
    phrase_list: Option<Vec<String>>,
    model: Option<String>,
}

#[derive(Default)]
struct Vosk {
    configured: bool,
    /// Word lists in results (the reference server's default is on).
    hide_words: bool,
    alternatives: bool,
    carry: Option<u8>,
}

impl Vosk {
    fn configure(&mut self, jobs: &Jobs, text: &str) -> JobResult<LiveConfig> {
        #[derive(Deserialize)]
        struct Envelope {
            config: ClientConfig,
        }
        let Envelope { config } = serde_json::from_str(text)
            .map_err(|e| JobError::InvalidOptions(format!("the config frame is not valid: {e}")))?;
        self.hide_words = config
            .words
            .as_ref()
            .is_some_and(|w| matches!(w, Value::Bool(false)) || w.as_i64() == Some(0));
        self.alternatives = config.max_alternatives.unwrap_or(0) > 0;
        let rate = config
            .sample_rate
            .map_or(DEFAULT_RATE, |r| r.round() as u32);
        jobs.stream_config(
            config.model.as_deref(),
            rate,
            config.phrase_list.unwrap_or_default(),
        )
    }

    /// A final result in the reference server's shape.
    fn result(&self, words: &[Word]) -> Value {
        let text = text_of(words);
        let listed: Vec<Value> = words
            .iter()
            .map(|w| {
                json!({
                    "conf": f64::from(w.score) / 100.0,
                    "end": w.end,
                    "start": w.start,
                    "word": w.text,
                })
            })
            .collect();
        if self.alternatives {
            let confidence = if words.is_empty() {
                0.0
            } else {
                words.iter().map(|w| f64::from(w.score)).sum::<f64>() / words.len() as f64 / 100.0
            };
            return json!({"alternatives": [{"confidence": confidence, "result": listed, "text": text}]});
        }
        if self.hide_words || words.is_empty() {
            return json!({ "text": text });
        }
        json!({ "result": listed, "text": text })
    }
}

/// The words of every utterance that ended, in order.
fn words_of(finals: &[Utterance]) -> Vec<Word> {
    finals
        .iter()
        .flat_map(|u| u.words.iter().cloned())
        .collect()
}

/// A control frame: `{"eof" : 1}` or `{"reset" : 1}`, however spaced.
fn control(text: &str) -> Option<&'static str> {
    let value: Value = serde_json::from_str(text).ok()?;
    let object = value.as_object()?;
    ["eof", "reset"]
        .into_iter()
        .find(|key| object.get(*key).is_some_and(|v| v.as_i64() == Some(1)))
}

/// The error, then the socket closed as a policy violation.
fn refuse(vosk: &mut Vosk, error: &JobError) -> Vec<Action> {
    let mut actions = vosk.error(error);
    actions.push(Action::Close(Some(rocket_ws::frame::CloseFrame {
        code: rocket_ws::frame::CloseCode::Policy,
        reason: "bad request".into(),
    })));
    actions
}

fn reply(value: Value) -> Action {
    Action::Send(Message::Text(value.to_string()))
}

impl LiveProtocol for Vosk {
    fn default_config(&self, jobs: &Jobs) -> JobResult<LiveConfig> {
        jobs.stream_config(None, DEFAULT_RATE, Vec::new())
    }

    fn text(&mut self, jobs: &Jobs, text: &str) -> Vec<Action> {
        match control(text) {
            Some("eof") => return vec![Action::End],
            Some(_) => return vec![Action::Reset],
            None => {}
        }
        // The reference server takes any text mentioning `config` as the configuration.
        if text.contains("config") && !self.configured {
            return match self.configure(jobs, text) {
                Ok(config) => {
                    self.configured = true;
                    vec![Action::Configure(config)]
                }
                Err(e) => refuse(self, &e),
            };
        }
        if text.contains("config") {
            // Reconfiguring a session mid-way would restart its recognizer; the reference
            // server ignores it too once it has heard audio.
            return Vec::new();
        }
        let unexpected = JobError::InvalidOptions(format!(
            "unexpected text frame; send PCM as binary frames, {{\"eof\" : 1}} or {{\"reset\" : 1}}: {}",
            text.chars().take(80).collect::<String>()
        ));
        refuse(self, &unexpected)
    }

    fn binary(&mut self, _jobs: &Jobs, bytes: Vec<u8>) -> Vec<Action> {
        self.configured = true;
        vec![Action::Audio(live::pcm_s16le(&mut self.carry, &bytes))]
    }

    fn answer(&mut self, answer: Answer, to: AnswerTo) -> Vec<Action> {
        let finals = words_of(&answer.finals);
        match to {
            AnswerTo::Audio if answer.finals.is_empty() => {
                let partial = text_of(&answer.partial);
                vec![reply(json!({ "partial": partial }))]
            }
            AnswerTo::Audio | AnswerTo::Reset => vec![reply(self.result(&finals))],
            AnswerTo::End => vec![reply(self.result(&finals)), Action::Close(None)],
        }
    }

    fn error(&mut self, error: &JobError) -> Vec<Action> {
        vec![reply(json!({ "error": error.to_string() }))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_are_read_whatever_their_spacing() {
        assert_eq!(control(r#"{"eof" : 1}"#), Some("eof"));
        assert_eq!(control(r#"{"eof":1}"#), Some("eof"));
        assert_eq!(control("{ \"reset\" :\n1 }"), Some("reset"));
        assert_eq!(control(r#"{"eof" : 0}"#), None);
        assert_eq!(control(r#"{"config": {"sample_rate": 8000}}"#), None);
        assert_eq!(control("eof"), None);
    }

    #[test]
    fn results_take_the_reference_servers_shapes() {
        let words = vec![Word {
            text: "안녕".into(),
            start: 0.5,
            end: 0.9,
            score: 87,
        }];
        let vosk = Vosk::default();
        assert_eq!(
            vosk.result(&words),
            json!({"result": [{"conf": 0.87, "end": 0.9, "start": 0.5, "word": "안녕"}], "text": "안녕"})
        );
        assert_eq!(vosk.result(&[]), json!({"text": ""}));
        let n_best = Vosk {
            alternatives: true,
            ..Vosk::default()
        };
        assert_eq!(
            n_best.result(&words)["alternatives"][0]["text"],
            json!("안녕")
        );
    }
}
