//! DeepSpeech REST's WebSockets, in both layouts:
//!
//! - `/api/stt/ws`, `/api/v1/stt/ws`: an optional text frame of hot words as JSON
//!   (`{"paris": 10, "power": -5}`), then the whole audio file, in any container, as one
//!   binary frame → `{"message", "time"}`, and the socket closes. That is a recognize-now job
//!   (the file is decoded by the normalizer like an upload), admitted before the upgrade.
//! - `/api/stt/mic`, `/api/v1/stt/mic`: 16 kHz 16-bit mono PCM chunks → one plain-text answer
//!   per chunk: everything heard so far. A live stream; the client ends it by closing.

use std::time::Instant;

use futures::{SinkExt, StreamExt};
use rocket::http::Status;
use rocket::{get, State};
use rocket_ws::{Channel, Message, WebSocket};
use serde_json::Value;
use trd_core::domain::AudioFile;
use trd_core::live::{text_of, LiveConfig};

use super::stt::{self, DsError, Transcript};
use crate::app::App;
use crate::error::ApiError;
use crate::faces::live::{self, Action, AnswerTo, LiveProtocol};
use crate::faces::now::{self, Slot};
use crate::identity::guard::{Access, Operate};
use crate::identity::Principal;
use crate::jobs::{Answer, Audio, JobError, JobResult, Jobs};

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![ws, ws_v1, mic, mic_v1]
}

/// The whole file in one frame, as large as an upload may be (capped at what a frame can be).
fn file_frame_limit(app: &App) -> usize {
    usize::try_from(app.settings.upload_limit_bytes)
        .unwrap_or(usize::MAX)
        .min(1 << 30)
}

/// A file recognized over a WebSocket (the original layout).
#[get("/api/stt/ws")]
pub async fn ws(
    app: &State<App>,
    who: Access<Operate>,
    slot: Slot,
    socket: WebSocket,
) -> Channel<'static> {
    file_socket(app, who.principal.clone(), slot, socket)
}

/// A file recognized over a WebSocket (the current layout).
#[get("/api/v1/stt/ws")]
pub async fn ws_v1(
    app: &State<App>,
    who: Access<Operate>,
    slot: Slot,
    socket: WebSocket,
) -> Channel<'static> {
    file_socket(app, who.principal.clone(), slot, socket)
}

fn file_socket(app: &App, who: Principal, slot: Slot, socket: WebSocket) -> Channel<'static> {
    let app = app.clone();
    let socket = socket.config(live::socket_config(file_frame_limit(&app)));
    socket.channel(move |mut socket| {
        Box::pin(async move {
            let mut hot_words = Vec::new();
            let audio = loop {
                match socket.next().await {
                    Some(Ok(Message::Text(text))) => match hot_words_of(&text) {
                        Ok(words) => hot_words = words,
                        Err(e) => return refuse(&mut socket, e).await,
                    },
                    Some(Ok(Message::Binary(audio))) => break audio,
                    Some(Ok(_)) => continue,
                    None | Some(Err(_)) => return Ok(()),
                }
            };
            let started = Instant::now();
            match transcribe(&app, &who, slot, audio, &hot_words).await {
                Ok(text) => {
                    let answer = Transcript::since(started, text);
                    let body = serde_json::to_string(&answer).expect("the transcript serialises");
                    socket.send(Message::Text(body)).await?;
                    let _ = socket.close(None).await;
                    Ok(())
                }
                Err(e) => refuse(&mut socket, e).await,
            }
        })
    })
}

/// The hot-word frame: an object of word → boost.
fn hot_words_of(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::BadRequest(format!("the hot words are not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::BadRequest(
            "the hot words must be a JSON object of word → boost".into(),
        ));
    };
    Ok(object
        .iter()
        .map(|(word, boost)| (word.clone(), boost.to_string()))
        .collect())
}

async fn transcribe(
    app: &App,
    who: &Principal,
    slot: Slot,
    audio: Vec<u8>,
    hot_words: &[(String, String)],
) -> Result<String, ApiError> {
    let request = stt::request(who, hot_words, Audio::Bytes(audio), None)?;
    let (live, decoded) = now::run(app, slot, request).await?;
    let mut progress = Box::pin(live.progress());
    let mut last: Option<(AudioFile, Vec<trd_core::domain::Segment>)> = None;
    while let Some(update) = progress.next().await {
        let update = update?;
        let done = update.is_final();
        last = Some((update.record, update.segments));
        if done {
            break;
        }
    }
    let (_, segments) = last.unwrap_or((decoded, Vec::new()));
    Ok(trd_export::openai::text(&segments))
}

/// The server's error body on the socket, then the close.
async fn refuse(
    socket: &mut rocket_ws::stream::DuplexStream,
    error: ApiError,
) -> rocket_ws::result::Result<()> {
    let body = stt::DsErrorBody::new(error.status(), error.message());
    socket
        .send(Message::Text(
            serde_json::to_string(&body).expect("errors serialise"),
        ))
        .await?;
    let _ = socket.close(None).await;
    Ok(())
}

/// A microphone stream (the original layout).
#[get("/api/stt/mic")]
pub async fn mic(
    app: &State<App>,
    _who: Access<Operate>,
    socket: WebSocket,
) -> Result<Channel<'static>, DsError> {
    mic_socket(app, socket).await
}

/// A microphone stream (the current layout).
#[get("/api/v1/stt/mic")]
pub async fn mic_v1(
    app: &State<App>,
    _who: Access<Operate>,
    socket: WebSocket,
) -> Result<Channel<'static>, DsError> {
    mic_socket(app, socket).await
}

async fn mic_socket(app: &App, socket: WebSocket) -> Result<Channel<'static>, DsError> {
    Ok(live::serve(app, socket, Mic::default()).await?)
}

/// The microphone's rate, fixed by the protocol.
const MIC_RATE: u32 = 16_000;

#[derive(Default)]
struct Mic {
    carry: Option<u8>,
    /// The text of every utterance that ended.
    heard: Vec<String>,
}

impl LiveProtocol for Mic {
    fn default_config(&self, jobs: &Jobs) -> JobResult<LiveConfig> {
        jobs.stream_config(None, MIC_RATE, Vec::new())
    }

    fn text(&mut self, _jobs: &Jobs, _text: &str) -> Vec<Action> {
        // The protocol has no text frames; the original server ignores them too.
        Vec::new()
    }

    fn binary(&mut self, _jobs: &Jobs, bytes: Vec<u8>) -> Vec<Action> {
        vec![Action::Audio(live::pcm_s16le(&mut self.carry, &bytes))]
    }

    fn answer(&mut self, answer: Answer, _to: AnswerTo) -> Vec<Action> {
        self.heard.extend(
            answer
                .finals
                .iter()
                .map(|u| u.text())
                .filter(|t| !t.is_empty()),
        );
        let partial = text_of(&answer.partial);
        let mut so_far = self.heard.join(" ");
        if !partial.is_empty() {
            if !so_far.is_empty() {
                so_far.push(' ');
            }
            so_far.push_str(&partial);
        }
        vec![Action::Send(Message::Text(so_far))]
    }

    fn error(&mut self, error: &JobError) -> Vec<Action> {
        let status = match error {
            JobError::InvalidOptions(_) => Status::BadRequest,
            JobError::Busy { .. } | JobError::NoWorker { .. } => Status::ServiceUnavailable,
            _ => Status::InternalServerError,
        };
        let body = stt::DsErrorBody::new(status, error.to_string());
        let body = serde_json::to_string(&body).expect("errors serialise");
        vec![Action::Send(Message::Text(body))]
    }
}
