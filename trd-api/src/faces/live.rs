//! What every live-stream face shares (vosk-server, Speechmatics real-time, DeepSpeech's
//! microphone stream): the WebSocket loop between a client and its [`LiveStream`].
//!
//! A face is a [`LiveProtocol`]: it reads the client's frames and the recognizer's answers
//! into [`Action`]s, and [`drive`] carries them out. The loop reads the client only while the
//! stream's window has room (a client that sends faster than the recognizer hears waits on TCP,
//! not on memory), pings the client, ends a session idle for `stream_idle_seconds` and ends one
//! after `stream_max_seconds` with its final result. The session is opened before the upgrade
//! ([`open`]), so a client that finds no free slot is refused with 503 and `Retry-After`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rocket_ws::frame::{CloseCode, CloseFrame};
use rocket_ws::result::Result as WsResult;
use rocket_ws::stream::DuplexStream;
use rocket_ws::{Channel, Message, WebSocket};
use trd_core::live::LiveConfig;

use crate::app::App;
use crate::error::ApiError;
use crate::jobs::{Answer, JobError, JobResult, Jobs, LiveStream};

/// The largest frame a live client may send: a few seconds of audio is plenty; more would only
/// be memory a client makes the server hold.
const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// How often the client is pinged (proxies close idle connections; a dead peer shows).
const PING_EVERY: Duration = Duration::from_secs(20);

/// What a face asks of the loop.
#[derive(Debug)]
pub enum Action {
    Configure(LiveConfig),
    /// 16-bit mono PCM at the configured rate.
    Audio(Vec<i16>),
    Reset,
    End,
    Send(Message),
    /// Close the socket (the session ends with it).
    Close(Option<CloseFrame<'static>>),
    /// The session is not a stream after all: its recognizer slot is given back and the
    /// socket handed to the face, which finishes the session itself.
    Handover(Handover),
}

/// What finishes a session that was handed over, given its socket.
pub struct Handover(
    pub Box<dyn FnOnce(DuplexStream) -> futures::future::BoxFuture<'static, WsResult<()>> + Send>,
);

impl std::fmt::Debug for Handover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handover")
    }
}

/// Which input an answer is the answer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerTo {
    Audio,
    Reset,
    End,
}

/// Why a session ends without its client ending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The client sent nothing for `stream_idle_seconds`.
    Idle,
    /// The session lasted `stream_max_seconds`; it ends with its final result.
    Length,
}

/// One protocol's reading of a live session.
pub trait LiveProtocol: Send + Sync + 'static {
    /// The configuration to use when audio comes before any.
    fn default_config(&self, jobs: &Jobs) -> JobResult<LiveConfig>;
    fn text(&mut self, jobs: &Jobs, text: &str) -> Vec<Action>;
    fn binary(&mut self, jobs: &Jobs, bytes: Vec<u8>) -> Vec<Action>;
    fn answer(&mut self, answer: Answer, to: AnswerTo) -> Vec<Action>;
    /// The session cannot go on: the protocol's way of saying so (the loop closes after).
    fn error(&mut self, error: &JobError) -> Vec<Action>;
    /// A limit was reached: what to tell the client (the loop ends the session after).
    fn limit(&mut self, _limit: Limit) -> Vec<Action> {
        Vec::new()
    }
}

/// The session limits, from the settings.
#[derive(Debug, Clone, Copy)]
struct Limits {
    idle: Duration,
    length: Duration,
}

impl Limits {
    fn of(app: &App) -> Self {
        Limits {
            idle: Duration::from_secs(app.settings.stream_idle_seconds),
            length: Duration::from_secs(app.settings.stream_max_seconds),
        }
    }
}

/// The WebSocket's limits: frames of at most [`MAX_FRAME_BYTES`] (or `max` for a face that
/// takes a whole file in one frame).
pub fn socket_config(max: usize) -> rocket_ws::Config {
    rocket_ws::Config {
        max_message_size: Some(max),
        max_frame_size: Some(max),
        ..Default::default()
    }
}

/// A live session in `protocol`: opened before the upgrade (a recognizer took it, or the
/// request is refused), then driven on the upgraded socket.
pub async fn serve<P: LiveProtocol>(
    app: &App,
    socket: WebSocket,
    protocol: P,
) -> Result<Channel<'static>, ApiError> {
    let stream = app.jobs.open_stream().await?;
    let jobs = app.jobs.clone();
    let limits = Limits::of(app);
    let socket = socket.config(socket_config(MAX_FRAME_BYTES));
    Ok(socket.channel(move |socket| Box::pin(drive(socket, stream, jobs, protocol, limits))))
}

/// Runs the session until the client or the protocol ends it.
async fn drive<P: LiveProtocol>(
    mut socket: DuplexStream,
    mut stream: LiveStream,
    jobs: Jobs,
    mut protocol: P,
    limits: Limits,
) -> WsResult<()> {
    let idle = tokio::time::sleep(limits.idle);
    let length = tokio::time::sleep(limits.length);
    tokio::pin!(idle, length);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut kinds = std::collections::VecDeque::new();
    let mut ending = false;
    loop {
        let actions = tokio::select! {
            answer = stream.next_answer(), if stream.awaiting() => match answer {
                Ok(answer) => {
                    let to = kinds.pop_front().unwrap_or(AnswerTo::Audio);
                    protocol.answer(answer, to)
                }
                Err(e) => failed(&mut protocol, &e),
            },
            frame = socket.next(), if !ending && !stream.is_full() => {
                idle.as_mut().reset(tokio::time::Instant::now() + limits.idle);
                match frame {
                    None | Some(Err(_)) => return Ok(()),
                    Some(Ok(Message::Close(_))) => {
                        // Sends the answer to the client's close frame, queued by the read.
                        let _ = socket.flush().await;
                        return Ok(());
                    }
                    Some(Ok(Message::Text(text))) => protocol.text(&jobs, &text),
                    Some(Ok(Message::Binary(bytes))) => protocol.binary(&jobs, bytes),
                    Some(Ok(_)) => Vec::new(),
                }
            },
            () = &mut idle, if !ending => {
                let mut actions = protocol.limit(Limit::Idle);
                actions.push(Action::Close(Some(CloseFrame {
                    code: CloseCode::Away,
                    reason: format!("no audio for {} s", limits.idle.as_secs()).into(),
                })));
                actions
            },
            () = &mut length, if !ending => {
                let mut actions = protocol.limit(Limit::Length);
                actions.push(Action::End);
                actions
            },
            _ = ping.tick() => vec![Action::Send(Message::Ping(Vec::new()))],
        };
        for action in actions {
            if let Action::Handover(Handover(finish)) = action {
                // Dropping the stream closes its queues: the recognizer's slot is free again.
                drop(stream);
                return finish(socket).await;
            }
            let done = match perform(action, &mut socket, &mut stream, &jobs, &protocol).await {
                Ok(Performed::Sent(kind)) => {
                    if let Some(kind) = kind {
                        ending |= kind == AnswerTo::End;
                        kinds.push_back(kind);
                    }
                    false
                }
                Ok(Performed::Closed) => true,
                Err(Failure::Socket(e)) => return Err(*e),
                Err(Failure::Job(e)) => {
                    for action in failed(&mut protocol, &e) {
                        if let Action::Send(message) = action {
                            socket.send(message).await?;
                        }
                    }
                    close(&mut socket, None).await;
                    true
                }
            };
            if done {
                return Ok(());
            }
        }
    }
}

fn failed<P: LiveProtocol>(protocol: &mut P, error: &JobError) -> Vec<Action> {
    tracing::warn!(error = %trd_core::logging::ErrorChain(error), "live stream failed");
    let mut actions = protocol.error(error);
    if !actions.iter().any(|a| matches!(a, Action::Close(_))) {
        actions.push(Action::Close(Some(CloseFrame {
            code: CloseCode::Error,
            reason: error
                .to_string()
                .chars()
                .take(120)
                .collect::<String>()
                .into(),
        })));
    }
    actions
}

enum Performed {
    /// Done; an input of this kind was sent, if any.
    Sent(Option<AnswerTo>),
    Closed,
}

enum Failure {
    Socket(Box<rocket_ws::result::Error>),
    Job(JobError),
}

async fn perform<P: LiveProtocol>(
    action: Action,
    socket: &mut DuplexStream,
    stream: &mut LiveStream,
    jobs: &Jobs,
    protocol: &P,
) -> Result<Performed, Failure> {
    let sent = |kind| Ok(Performed::Sent(Some(kind)));
    match action {
        Action::Configure(config) => {
            stream.configure(config).await.map_err(Failure::Job)?;
            Ok(Performed::Sent(None))
        }
        Action::Audio(samples) => {
            if !stream.is_configured() {
                let config = protocol.default_config(jobs).map_err(Failure::Job)?;
                stream.configure(config).await.map_err(Failure::Job)?;
            }
            stream.send_audio(samples).await.map_err(Failure::Job)?;
            sent(AnswerTo::Audio)
        }
        Action::Reset => {
            stream.reset().await.map_err(Failure::Job)?;
            sent(AnswerTo::Reset)
        }
        Action::End => {
            if !stream.is_configured() {
                // Nothing was heard: the end needs no recognizer, but the protocol still
                // wants its (empty) final answer.
                let config = protocol.default_config(jobs).map_err(Failure::Job)?;
                stream.configure(config).await.map_err(Failure::Job)?;
            }
            stream.end().await.map_err(Failure::Job)?;
            sent(AnswerTo::End)
        }
        Action::Send(message) => {
            socket
                .send(message)
                .await
                .map_err(|e| Failure::Socket(Box::new(e)))?;
            Ok(Performed::Sent(None))
        }
        Action::Close(frame) => {
            close(socket, frame).await;
            Ok(Performed::Closed)
        }
        Action::Handover(_) => unreachable!("the loop hands the socket over itself"),
    }
}

/// Closes the socket; without a frame of the protocol's, as a normal closure (1000).
async fn close(socket: &mut DuplexStream, frame: Option<CloseFrame<'static>>) {
    let frame = frame.unwrap_or(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    });
    let _ = socket.close(Some(frame)).await;
}

/// 16-bit little-endian PCM bytes as samples; an odd last byte is kept for the next frame.
pub fn pcm_s16le(carry: &mut Option<u8>, bytes: &[u8]) -> Vec<i16> {
    let mut all = Vec::with_capacity(bytes.len() + 1);
    all.extend(carry.take());
    all.extend_from_slice(bytes);
    if all.len() % 2 == 1 {
        *carry = all.pop();
    }
    all.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_split_mid_sample_is_joined_across_frames() {
        let mut carry = None;
        assert_eq!(pcm_s16le(&mut carry, &[0x01, 0x00, 0xff]), vec![1]);
        assert_eq!(carry, Some(0xff));
        assert_eq!(pcm_s16le(&mut carry, &[0xff, 0x02, 0x00]), vec![-1, 2]);
        assert_eq!(carry, None);
    }
}
