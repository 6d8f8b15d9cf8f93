//! Live streams: the wire between the API process that holds a client's WebSocket and the
//! recognizer process that decodes its audio.
//!
//! - The API offers a session on `<prefix>stream` (a quorum queue). A recognizer with a free
//!   stream slot takes the offer and keeps it unacknowledged for as long as it serves the
//!   session, so when that recognizer dies the broker hands the offer to another one: that is
//!   the take-over.
//! - The session's input travels on `<prefix>stream.<id>.in`, declared by the API: the
//!   configuration, then audio and control messages in order, each with a sequence number. The
//!   recognizer acknowledges input only once a final result covers it (and never the
//!   configuration), so the input since the last final result is what the broker gives the
//!   next recognizer after a crash, in order: the API never resends anything.
//! - Answers travel on `<prefix>stream.<id>.out`, exclusive to the API connection: exactly one
//!   [`LiveEvent::Heard`] per audio or control message, in order.

use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Consumer};
use serde::{Deserialize, Serialize};

use crate::domain::Word;
use crate::queue::{within, Queue, QueueResult};

/// Offered on `<prefix>stream`: a session waiting for a recognizer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveOffer {
    pub session: String,
}

/// How the session's audio is to be heard. Sent first, before any audio, and again by the API
/// never: it stays unacknowledged, so a recognizer that takes the session over reads it too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveConfig {
    /// A configured model id (the API has checked it).
    pub model: String,
    /// Rate of the 16-bit mono PCM that follows.
    pub sample_rate: u32,
    /// Phrases to prefer (`hints.words` in batch work).
    pub hints: Vec<String>,
    /// Take a voiceprint of every utterance, so the API can tell the speakers apart.
    #[serde(default)]
    pub speakers: bool,
}

/// One input message of a session, in the order the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveInput {
    Config(LiveConfig),
    /// `offset`: samples of the session before this chunk, so that a recognizer that takes a
    /// session over mid-way keeps the session's clock; `origin`: the offset at which the
    /// audio being heard began (the session's start, or its last reset), where that
    /// recognizer's speech detection counts from.
    Audio {
        seq: u64,
        offset: u64,
        origin: u64,
        samples: Vec<i16>,
    },
    /// End the utterance (a final result) and go on listening.
    Reset {
        seq: u64,
    },
    /// End the utterance and the session.
    End {
        seq: u64,
    },
}

/// An utterance the recognizer ended: its words in session time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utterance {
    /// The input message whose audio ended it; it covers everything sent up to that message.
    pub through_seq: u64,
    pub words: Vec<Word>,
    /// The utterance's voiceprint, when the configuration asks for speakers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<Vec<f32>>,
    /// The stream's speaker (0-based), told by the API from the voiceprint.
    #[serde(skip)]
    pub speaker: Option<usize>,
}

impl Utterance {
    pub fn text(&self) -> String {
        text_of(&self.words)
    }
}

/// Words as text, one space between them.
pub fn text_of(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a recognizer says about a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A recognizer took the session (again, after a crash, with a new `worker`).
    Accepted { worker: String },
    /// The answer to input `seq`: the utterance in progress, and the utterance this input
    /// ended, if any.
    Heard {
        seq: u64,
        partial: Vec<Word>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ended: Option<Utterance>,
    },
    /// The session cannot go on (a model that will not load, audio the model cannot take).
    Failed { reason: String },
}

/// Why input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveInputError {
    #[error("a live input message of unknown kind {0:?}")]
    UnknownKind(String),
    #[error("a live input message is malformed: {0}")]
    Malformed(String),
}

const KIND_CONFIG: &str = "config";
const KIND_AUDIO: &str = "audio";
const KIND_RESET: &str = "reset";
const KIND_END: &str = "end";

impl LiveInput {
    fn kind(&self) -> &'static str {
        match self {
            LiveInput::Config(_) => KIND_CONFIG,
            LiveInput::Audio { .. } => KIND_AUDIO,
            LiveInput::Reset { .. } => KIND_RESET,
            LiveInput::End { .. } => KIND_END,
        }
    }

    /// The body: JSON for the configuration; `seq` (and for audio `offset` and `origin`, then
    /// the samples)
    /// little-endian for the rest, so audio costs no encoding.
    fn body(&self) -> Vec<u8> {
        match self {
            LiveInput::Config(config) => serde_json::to_vec(config).expect("configs serialise"),
            LiveInput::Audio {
                seq,
                offset,
                origin,
                samples,
            } => {
                let mut body = Vec::with_capacity(24 + samples.len() * 2);
                body.extend_from_slice(&seq.to_le_bytes());
                body.extend_from_slice(&offset.to_le_bytes());
                body.extend_from_slice(&origin.to_le_bytes());
                body.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
                body
            }
            LiveInput::Reset { seq } | LiveInput::End { seq } => seq.to_le_bytes().to_vec(),
        }
    }

    /// Reads a message as [`Queue::publish_live_input`] wrote it.
    pub fn parse(kind: &str, body: &[u8]) -> Result<Self, LiveInputError> {
        let word = |at: usize| -> Result<u64, LiveInputError> {
            body.get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                .ok_or_else(|| LiveInputError::Malformed(format!("{kind} message too short")))
        };
        match kind {
            KIND_CONFIG => serde_json::from_slice(body)
                .map(LiveInput::Config)
                .map_err(|e| LiveInputError::Malformed(e.to_string())),
            KIND_AUDIO => {
                let pcm = body.get(24..).unwrap_or_default();
                Ok(LiveInput::Audio {
                    seq: word(0)?,
                    offset: word(8)?,
                    origin: word(16)?,
                    samples: pcm
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect(),
                })
            }
            KIND_RESET => Ok(LiveInput::Reset { seq: word(0)? }),
            KIND_END => Ok(LiveInput::End { seq: word(0)? }),
            other => Err(LiveInputError::UnknownKind(other.to_owned())),
        }
    }

    /// The message's kind as carried in the AMQP `type` property.
    pub fn kind_of(properties: &BasicProperties) -> String {
        properties
            .kind()
            .as_ref()
            .map(|k| k.to_string())
            .unwrap_or_default()
    }
}

/// A session's queues as the API holds them: where its input goes and its answers' consumer.
pub struct LiveLink {
    pub input: String,
    pub output: String,
    pub answers: Consumer,
    channel: Channel,
}

/// A session's input as the recognizer serving it reads it.
pub struct LiveInputs {
    pub consumer: Consumer,
    channel: Channel,
}

impl LiveInputs {
    /// Stops reading; input not yet acknowledged goes back to the session's queue.
    pub async fn close(self) {
        let _ = within(self.channel.close(200, "stream served".into())).await;
    }
}

impl Queue {
    /// The queue sessions are offered on.
    pub fn live_offer_queue(&self) -> String {
        format!("{}stream", self.prefix())
    }

    fn live_queue(&self, session: &str, end: &str) -> String {
        format!("{}stream.{session}.{end}", self.prefix())
    }

    /// Declares the offer queue: quorum, so an offer survives a broker restart like any work,
    /// with the delivery limit of every stage queue, so a session whose audio keeps killing
    /// recognizers is dropped (the API then ends it with an error).
    pub(crate) async fn declare_live_topology(&self, ch: &Channel) -> QueueResult<()> {
        within(ch.queue_declare(
            self.live_offer_queue().as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            self.work_queue_args(),
        ))
        .await?;
        Ok(())
    }

    /// API side: declares the session's queues, starts consuming its answers and offers it.
    /// The input queue outlives a recognizer (the next one reads on from it) but not an idle
    /// session: the broker deletes it `idle` after its last consumer left.
    pub async fn open_live(&self, session: &str, idle: Duration) -> QueueResult<LiveLink> {
        let link = self.link().await?;
        let channel = within(link.connection.create_channel()).await?;
        let input = self.live_queue(session, "in");
        let output = self.live_queue(session, "out");
        let mut input_args = FieldTable::default();
        input_args.insert(
            "x-expires".into(),
            AMQPValue::LongInt(
                i32::try_from(idle.as_millis())
                    .unwrap_or(i32::MAX)
                    .max(1_000),
            ),
        );
        within(channel.queue_declare(
            input.as_str().into(),
            QueueDeclareOptions::default(),
            input_args,
        ))
        .await?;
        within(channel.queue_declare(
            output.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await?;
        let answers = within(channel.basic_consume(
            output.as_str().into(),
            format!("api-{session}").as_str().into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .await?;
        let offer = serde_json::to_vec(&LiveOffer {
            session: session.to_owned(),
        })
        .expect("offers serialise");
        self.publish_raw(&self.live_offer_queue(), &offer, None)
            .await?;
        Ok(LiveLink {
            input,
            output,
            answers,
            channel,
        })
    }

    /// API side: sends one input message and waits until the broker holds it.
    pub async fn publish_live_input(&self, link: &LiveLink, input: &LiveInput) -> QueueResult<()> {
        self.publish_raw(&link.input, &input.body(), Some(input.kind()))
            .await
    }

    /// API side: removes the session's queues (the recognizer's consumer is cancelled with
    /// them, which ends the session there).
    pub async fn close_live(&self, link: LiveLink) {
        for name in [&link.input, &link.output] {
            let _ = within(
                link.channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default()),
            )
            .await;
        }
        let _ = within(link.channel.close(200, "session over".into())).await;
    }

    /// Recognizers taking live streams now (health, tests): consumers of the offer queue.
    pub async fn live_offer_consumers(&self) -> QueueResult<u32> {
        let figures = self.figures_of(vec![self.live_offer_queue()]).await?;
        Ok(figures.first().map_or(0, |q| q.consumers))
    }

    /// Recognizer side: a consumer of session offers holding at most `slots` at once.
    pub async fn consume_live_offers(&self, tag: &str, slots: u16) -> QueueResult<Consumer> {
        self.consume(&self.live_offer_queue(), tag, slots).await
    }

    /// Recognizer side: the session's input, on a channel of its own with no prefetch limit
    /// (the API bounds what it sends ahead). Fails if the session is gone.
    pub async fn consume_live_input(&self, session: &str, tag: &str) -> QueueResult<LiveInputs> {
        let link = self.link().await?;
        let channel = within(link.connection.create_channel()).await?;
        within(channel.basic_qos(0, BasicQosOptions::default())).await?;
        let consumer = within(channel.basic_consume(
            self.live_queue(session, "in").as_str().into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await;
        match consumer {
            Ok(consumer) => Ok(LiveInputs { consumer, channel }),
            Err(e) => {
                let _ = channel.close(200, "no such session".into()).await;
                Err(e)
            }
        }
    }

    /// Recognizer side: an answer to the session's API process. A session whose API process
    /// is gone has no answer queue; the answer is then dropped by the broker.
    pub async fn publish_live_event(&self, session: &str, event: &LiveEvent) -> QueueResult<()> {
        let body = serde_json::to_vec(event).expect("events serialise");
        self.publish_raw(&self.live_queue(session, "out"), &body, None)
            .await
    }

    async fn publish_raw(&self, queue: &str, body: &[u8], kind: Option<&str>) -> QueueResult<()> {
        let mut properties = BasicProperties::default();
        if let Some(kind) = kind {
            properties = properties.with_type(kind.into());
        }
        self.publish_confirmed(queue, body, properties).await
    }
}

/// Cosine above which an utterance is the same voice as a speaker's running sum (batch
/// clustering merges clusters above 0.7; a single utterance is noisier than a cluster's mean).
pub const SAME_VOICE: f32 = 0.55;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b)).max(1e-12)
}

/// The speakers of one live stream so far, told apart from the voiceprints of its utterances
/// as they come (online clustering: the only kind possible before the recording ends): an
/// utterance goes to the speaker whose voiceprints it resembles most, if enough, else to a new
/// speaker. Kept by the API, so a take-over keeps the labels.
#[derive(Debug, Clone, Default)]
pub struct Voices {
    speakers: Vec<Vec<f32>>,
}

impl Voices {
    /// The speaker (0-based, in order of first appearance) of an utterance's voiceprint.
    pub fn speaker_of(&mut self, print: &[f32]) -> usize {
        let best = self
            .speakers
            .iter()
            .enumerate()
            .map(|(i, sum)| (i, cosine(sum, print)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((i, similarity)) if similarity >= SAME_VOICE => {
                for (s, p) in self.speakers[i].iter_mut().zip(print) {
                    *s += p;
                }
                i
            }
            _ => {
                self.speakers.push(print.to_vec());
                self.speakers.len() - 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_messages_read_back_as_written() {
        let inputs = [
            LiveInput::Config(LiveConfig {
                model: "ko".into(),
                sample_rate: 8_000,
                hints: vec!["안녕".into()],
                speakers: true,
            }),
            LiveInput::Audio {
                seq: 7,
                offset: 48_000,
                origin: 16_000,
                samples: vec![0, -1, i16::MAX, i16::MIN],
            },
            LiveInput::Reset { seq: 8 },
            LiveInput::End { seq: 9 },
        ];
        for input in inputs {
            assert_eq!(
                LiveInput::parse(input.kind(), &input.body()).unwrap(),
                input
            );
        }
        assert!(LiveInput::parse("audio", &[1, 2]).is_err());
        assert!(LiveInput::parse("video", &[]).is_err());
    }

    #[test]
    fn similar_prints_share_a_speaker_and_different_ones_do_not() {
        let mut voices = Voices::default();
        assert_eq!(voices.speaker_of(&[1.0, 0.0, 0.0]), 0);
        assert_eq!(voices.speaker_of(&[0.0, 1.0, 0.0]), 1);
        assert_eq!(voices.speaker_of(&[0.9, 0.1, 0.0]), 0);
        assert_eq!(voices.speaker_of(&[0.1, 0.95, 0.1]), 1);
        assert_eq!(voices.speaker_of(&[0.0, 0.0, 1.0]), 2);
    }
}
