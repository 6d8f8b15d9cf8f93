//! A real-time session whose `audio_format` is `file` (the `speechmatics-rt` client's
//! default): the client streams a container (WAV, MP3, FLAC, …) in `AddAudio` frames. A
//! container can only be decoded as a whole file, and only the normalizer reads a user's
//! original file, so the session is a recognize-now job: the frames are collected (each
//! answered with `AudioAdded`) up to `EndOfStream`, then the job is normalized, diarized and
//! recognized as a batch file would be, and each segment goes out as an `AddTranscript` as soon
//! as it and every segment before it are recognized, then `EndOfTranscript`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rocket_ws::result::Result as WsResult;
use rocket_ws::stream::DuplexStream;
use rocket_ws::Message;
use serde_json::{json, Value};
use trd_core::domain::{Control, StartOptions};

use trd_export::json_v2::SpeakerLabels;

use super::realtime::{
    error_message, refusal_close, text, transcript_message, warning_message, Refused,
};
use crate::app::App;
use crate::error::ApiError;
use crate::faces::now::{self, Slot};
use crate::identity::Principal;
use crate::jobs::{Audio, NowRequest};

/// A file session, as `StartRecognition` set it up.
pub struct FileSession {
    pub app: App,
    pub who: Principal,
    pub options: StartOptions,
    pub language: String,
    pub speaker_labels: bool,
}

impl FileSession {
    /// Finishes the session on its socket (`RecognitionStarted` was sent already).
    pub async fn run(self, mut socket: DuplexStream) -> WsResult<()> {
        let file = match self.collect(&mut socket).await? {
            Ok(Some(file)) => file,
            Ok(None) => return Ok(()),
            Err(refused) => return refuse(&mut socket, refused).await,
        };
        match self.transcribe(&mut socket, file).await? {
            Ok(Heard::Left) => Ok(()),
            Ok(Heard::Whole) => {
                socket
                    .send(text(json!({"message": "EndOfTranscript"})))
                    .await?;
                let _ = socket.close(None).await;
                Ok(())
            }
            Err(refused) => refuse(&mut socket, refused).await,
        }
    }

    /// The file's bytes up to `EndOfStream`, each frame answered with `AudioAdded`; `None`
    /// when the client left first.
    async fn collect(
        &self,
        socket: &mut DuplexStream,
    ) -> WsResult<Result<Option<Vec<u8>>, Refused>> {
        let idle = Duration::from_secs(self.app.settings.stream_idle_seconds);
        let limit = self.app.settings.upload_limit_bytes;
        let mut file = Vec::new();
        let mut seq_no = 0u64;
        loop {
            let frame = match tokio::time::timeout(idle, socket.next()).await {
                Err(_) => {
                    return Ok(Err(Refused(
                        "idle_timeout",
                        "no audio arrived for too long".into(),
                    )))
                }
                Ok(None | Some(Err(_))) => return Ok(Ok(None)),
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                Message::Binary(bytes) => {
                    if (file.len() + bytes.len()) as u64 > limit {
                        return Ok(Err(Refused(
                            "buffer_error",
                            format!("the file is larger than the upload limit of {limit} bytes"),
                        )));
                    }
                    file.extend_from_slice(&bytes);
                    seq_no += 1;
                    socket
                        .send(text(json!({"message": "AudioAdded", "seq_no": seq_no})))
                        .await?;
                }
                Message::Text(frame) => {
                    let message: Value = serde_json::from_str(&frame).unwrap_or(Value::Null);
                    match message["message"].as_str() {
                        Some("EndOfStream") => return Ok(Ok(Some(file))),
                        Some("SetRecognitionConfig") => {
                            socket
                                .send(warning_message(
                                    "unsupported_message",
                                    "SetRecognitionConfig is ignored: the session keeps its configuration",
                                ))
                                .await?;
                        }
                        _ => {
                            return Ok(Err(Refused(
                                "protocol_error",
                                "a file session takes AddAudio frames and then EndOfStream".into(),
                            )))
                        }
                    }
                }
                Message::Close(_) => {
                    let _ = socket.flush().await;
                    return Ok(Ok(None));
                }
                _ => {}
            }
        }
    }

    /// Runs the file as a recognize-now job, sending each segment as it is recognized.
    async fn transcribe(
        &self,
        socket: &mut DuplexStream,
        file: Vec<u8>,
    ) -> WsResult<Result<Heard, Refused>> {
        if file.is_empty() {
            // No audio, no words: the vendor's answer to an empty stream.
            return Ok(Ok(Heard::Whole));
        }
        let job = async {
            let slot = Slot(self.app.jobs.admit()?);
            let request = NowRequest {
                location: now::location(&self.who, None, None)?,
                audio: Audio::Bytes(file),
                options: self.options.clone(),
                keep: false,
            };
            now::run(&self.app, slot, request).await
        };
        let live = match job.await {
            Ok((live, _decoded)) => live,
            Err(e) => return Ok(Err(refused(&e))),
        };
        let mut speakers = SpeakerLabels::default();
        let mut progress = Box::pin(live.progress());
        loop {
            // The socket is read meanwhile: it answers the client's pings, and a client that
            // leaves ends the job (dropping `progress` deletes it).
            let update = tokio::select! {
                update = progress.next() => update,
                frame = socket.next() => match frame {
                    None | Some(Err(_) | Ok(Message::Close(_))) => return Ok(Ok(Heard::Left)),
                    Some(Ok(_)) => continue,
                },
            };
            let update = match update {
                None => return Ok(Ok(Heard::Whole)),
                Some(Ok(update)) => update,
                Some(Err(e)) => return Ok(Err(refused(&ApiError::from(e)))),
            };
            for segment in update.fresh().iter().filter(|s| !s.words.is_empty()) {
                let speaker = self.speaker_labels.then(|| speakers.of(segment));
                let message = transcript_message(
                    "AddTranscript",
                    &segment.words,
                    &self.language,
                    speaker.as_deref(),
                );
                socket.send(text(message)).await?;
            }
            if update.is_final() {
                if update.record.control == Control::Failed {
                    let reason = update.record.error.as_ref().map_or_else(
                        || "the file could not be transcribed".to_owned(),
                        |e| e.reason.clone(),
                    );
                    return Ok(Err(Refused("job_error", reason)));
                }
                return Ok(Ok(Heard::Whole));
            }
        }
    }
}

/// How a file's job ended for its client.
enum Heard {
    Whole,
    /// The client left before the end.
    Left,
}

/// The vendor's error type for a job that could not run.
fn refused(error: &ApiError) -> Refused {
    let kind = match error.status().code {
        400 | 413 | 415 => "data_error",
        503 => "quota_exceeded",
        _ => "job_error",
    };
    Refused(kind, error.message())
}

async fn refuse(socket: &mut DuplexStream, Refused(kind, reason): Refused) -> WsResult<()> {
    socket.send(error_message(kind, &reason)).await?;
    let _ = socket.close(Some(refusal_close(kind))).await;
    Ok(())
}
