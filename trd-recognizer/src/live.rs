//! Live streams on the recognizer: take session offers while a stream slot is free, and hear
//! each session's audio as it comes, answering every input message once (the wire is
//! described in [`trd_core::live`]).
//!
//! A session's recognizer is a [`RunRecognizer`] like a batch run's, on the same model and
//! with the same hints, and like a batch segment every utterance is heard by a new one: Vosk's
//! speaker adaptation, carried from one utterance to the next, drifts (on the three-speaker
//! dialogue it doubled the character errors). That also makes a take-over exact: input is
//! acknowledged only when a final result covers it, so when this process dies the broker
//! gives the session's offer and its unheard input to another recognizer, which hears it
//! from the same point with a new recognizer, as this one would have.

use std::sync::Arc;
use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use tracing::Instrument;
use trd_core::domain::Word;
use trd_core::live::{LiveConfig, LiveEvent, LiveInput, LiveOffer, Utterance};
use trd_core::logging::ErrorChain;
use trd_core::queue::next_delivery;
use trd_core::worker::backoff::{pause, Backoff};
use trd_core::worker::WorkerContext;

use crate::hints::{Hints, ALTERNATIVES};
use crate::models::{LoadedModel, RunRecognizer};
use crate::recognize::utterance_words;
use crate::stage::load_model;

/// Takes session offers, at most `stream_slots` at once, until shutdown; reconnects with
/// back-off when RabbitMQ goes away.
pub async fn serve_streams(ctx: WorkerContext) {
    let slots = u16::try_from(ctx.settings.stream_slots).unwrap_or(u16::MAX);
    if slots == 0 {
        return;
    }
    let tag = format!("stream-{}", ctx.owner);
    let mut backoff = Backoff::new();
    loop {
        let consumer = tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            c = ctx.queue.consume_live_offers(&tag, slots) => c,
        };
        let mut offers = match consumer {
            Ok(offers) => offers,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %ErrorChain(&e), ?delay, "cannot take live streams; retrying");
                if pause(&ctx, delay).await {
                    continue;
                }
                return;
            }
        };
        backoff = Backoff::new();
        tracing::info!(slots, "taking live streams");
        loop {
            let delivery = tokio::select! {
                () = ctx.shutdown.cancelled() => return,
                d = next_delivery(&mut offers) => d,
            };
            let Some(Ok(delivery)) = delivery else {
                tracing::warn!("lost the live-stream consumer; reconnecting");
                break;
            };
            tokio::spawn(serve_session(ctx.clone(), delivery));
        }
    }
}

/// Why a session ended here without its end message.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error("the session is gone (its client left or its API process ended it)")]
    Gone,
    #[error("no input for {} s", .0.as_secs())]
    Idle(Duration),
    #[error("{0}")]
    Failed(String),
}

/// Serves one session until its end message, its queue's deletion or its idleness, then
/// acknowledges the offer. A shutdown leaves the offer unacknowledged: the connection's close
/// hands it to another recognizer.
async fn serve_session(ctx: WorkerContext, offer: Delivery) {
    let Ok(LiveOffer { session }) = serde_json::from_slice::<LiveOffer>(&offer.data) else {
        tracing::error!("dropping a malformed live-stream offer");
        let _ = offer.acker.ack(BasicAckOptions::default()).await;
        return;
    };
    let span = tracing::info_span!("stream", session = %session, takeover = offer.redelivered);
    serve_offered(ctx, session, offer).instrument(span).await
}

async fn serve_offered(ctx: WorkerContext, session: String, offer: Delivery) {
    let tag = format!("stream-{}-{}", ctx.owner, uuid::Uuid::new_v4().simple());
    let outcome = match ctx.queue.consume_live_input(&session, &tag).await {
        // The API process gave up waiting, or ended the session: nothing to serve.
        Err(_) => Err(SessionEnd::Gone),
        Ok(mut input) => {
            let outcome = hear_session(&ctx, &session, &mut input.consumer).await;
            input.close().await;
            outcome
        }
    };
    match outcome {
        Ok(()) => tracing::info!("live stream ended"),
        Err(end) => {
            if ctx.shutdown.is_cancelled() {
                return;
            }
            if let SessionEnd::Failed(reason) = &end {
                let failed = LiveEvent::Failed {
                    reason: reason.clone(),
                };
                let _ = ctx.queue.publish_live_event(&session, &failed).await;
            }
            tracing::info!(reason = %end, "live stream left");
        }
    }
    let _ = offer.acker.ack(BasicAckOptions::default()).await;
}

async fn hear_session(
    ctx: &WorkerContext,
    session: &str,
    input: &mut lapin::Consumer,
) -> Result<(), SessionEnd> {
    let announce = LiveEvent::Accepted {
        worker: ctx.owner.clone(),
    };
    publish(ctx, session, &announce).await?;
    // The API ends a session idle for `stream_idle_seconds`; past twice that, its API process
    // is gone.
    let idle = Duration::from_secs(ctx.settings.stream_idle_seconds * 2);
    let mut decoder: Option<LiveDecoder> = None;
    // Input since the last final result: acknowledged once one covers it.
    let mut unheard = Vec::new();
    loop {
        let delivery = tokio::select! {
            () = ctx.shutdown.cancelled() => return Err(SessionEnd::Gone),
            d = tokio::time::timeout(idle, next_delivery(input)) => d,
        };
        let delivery = match delivery {
            Err(_) => return Err(SessionEnd::Idle(idle)),
            Ok(Some(Ok(delivery))) => delivery,
            Ok(_) => return Err(SessionEnd::Gone),
        };
        let kind = LiveInput::kind_of(&delivery.properties);
        let message = LiveInput::parse(&kind, &delivery.data)
            .map_err(|e| SessionEnd::Failed(e.to_string()))?;
        let (seq, heard, last) = match message {
            LiveInput::Config(config) => {
                // Never acknowledged: a recognizer that takes the session over reads it first.
                decoder = Some(LiveDecoder::new(ctx, config).await?);
                continue;
            }
            LiveInput::Audio {
                seq,
                offset,
                samples,
            } => {
                let mut d = decoder.take().ok_or_else(unconfigured)?;
                let (d, heard) = blocking(move || {
                    let heard = d.hear(offset, &samples);
                    (d, heard)
                })
                .await?;
                decoder = Some(d);
                (seq, heard.map_err(SessionEnd::Failed)?, false)
            }
            LiveInput::Reset { seq } | LiveInput::End { seq } => {
                let last = matches!(message, LiveInput::End { .. });
                let mut d = decoder.take().ok_or_else(unconfigured)?;
                let (d, ended) = blocking(move || {
                    let ended = d.end_utterance();
                    (d, ended)
                })
                .await?;
                decoder = Some(d);
                (
                    seq,
                    (Vec::new(), Some(ended.map_err(SessionEnd::Failed)?)),
                    last,
                )
            }
        };
        unheard.push(delivery.acker);
        let (partial, ended) = heard;
        let ended = ended.map(|(words, voice)| Utterance {
            through_seq: seq,
            words,
            voice,
            speaker: None,
        });
        let covered = ended.is_some();
        publish(
            ctx,
            session,
            &LiveEvent::Heard {
                seq,
                partial,
                ended,
            },
        )
        .await?;
        if covered {
            for acker in unheard.drain(..) {
                let _ = acker.ack(BasicAckOptions::default()).await;
            }
        }
        if last {
            return Ok(());
        }
    }
}

fn unconfigured() -> SessionEnd {
    SessionEnd::Failed("audio came before the stream's configuration".into())
}

async fn publish(ctx: &WorkerContext, session: &str, event: &LiveEvent) -> Result<(), SessionEnd> {
    // An answer that cannot be sent leaves the input unacknowledged: the session is left to
    // another recognizer when this connection comes back or closes.
    ctx.queue
        .publish_live_event(session, event)
        .await
        .map_err(|e| SessionEnd::Failed(format!("cannot answer: {}", ErrorChain(&e))))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SessionEnd> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SessionEnd::Failed(format!("recognition crashed: {e}")))
}

/// A session's recognizer and what it needs to turn Vosk's answers into words.
struct LiveDecoder {
    model: Arc<LoadedModel>,
    hints: Hints,
    config: LiveConfig,
    recognizer: Option<RunRecognizer>,
    /// Session time, in seconds, at which the current recognizer began to hear.
    origin: f64,
    /// With speakers asked for: the voice networks, and the utterance heard so far.
    voices: Option<Arc<trd_diarizer::Models>>,
    utterance: Vec<i16>,
}

/// An utterance that ended: its words and, with speakers asked for, its voiceprint.
type Ended = (Vec<Word>, Option<Vec<f32>>);

/// The utterance in progress, and one that ended.
type Heard = (Vec<Word>, Option<Ended>);

impl LiveDecoder {
    async fn new(ctx: &WorkerContext, config: LiveConfig) -> Result<Self, SessionEnd> {
        let model = load_model(ctx, config.model.clone())
            .await
            .map_err(|e| SessionEnd::Failed(ErrorChain(&e).to_string()))?;
        let voices = if config.speakers {
            let dir = ctx.settings.diarizer_models.clone();
            let loaded = blocking(move || trd_diarizer::Models::shared(&dir)).await?;
            // Without the voice networks the words still come, with no speakers.
            loaded
                .inspect_err(
                    |e| tracing::warn!(error = %ErrorChain(e), "no speakers for this stream"),
                )
                .ok()
        } else {
            None
        };
        Ok(Self {
            model,
            hints: Hints::new(&config.hints),
            config,
            recognizer: None,
            origin: 0.0,
            voices,
            utterance: Vec::new(),
        })
    }

    /// The recognizer, begun at session sample `offset` if there is none yet (the session's
    /// first audio, or the first this recognizer hears of a session it took over).
    fn begin(&mut self, offset: u64) -> Result<(), String> {
        if self.recognizer.is_none() {
            let rate = self.config.sample_rate;
            let mut recognizer = self
                .model
                .recognizer(rate)
                .ok_or_else(|| format!("the model cannot hear audio at {rate} Hz"))?;
            recognizer.vosk.set_partial_words(true);
            recognizer
                .vosk
                .set_max_alternatives(if self.hints.is_empty() {
                    0
                } else {
                    ALTERNATIVES
                });
            self.origin = offset as f64 / rate as f64;
            self.recognizer = Some(recognizer);
        }
        Ok(())
    }

    fn hear(&mut self, offset: u64, samples: &[i16]) -> Result<Heard, String> {
        self.begin(offset)?;
        if self.voices.is_some() {
            self.utterance.extend_from_slice(samples);
        }
        let recognizer = self.recognizer.as_mut().expect("begun above");
        let state = recognizer
            .feed(samples)
            .map_err(|e| format!("the recognizer rejected the audio: {e}"))?;
        if matches!(state, vosk::DecodingState::Finalized) {
            let result = recognizer.vosk.result();
            let words = utterance_words(result, &self.model, &self.hints, self.origin)?;
            // The next utterance gets a new recognizer, as each batch segment does.
            self.recognizer = None;
            return Ok((Vec::new(), Some((words, self.voiceprint()))));
        }
        let origin = self.origin;
        let forms = self.model.spoken_forms();
        let partial = recognizer
            .vosk
            .partial_result()
            .partial_result
            .iter()
            .map(|w| Word {
                text: forms.rewrite(w.word),
                start: round_ms(origin + w.start as f64),
                end: round_ms(origin + w.end as f64),
                score: (w.conf.clamp(0.0, 1.0) * 100.0).round() as u32,
            })
            .collect();
        Ok((partial, None))
    }

    /// Ends the utterance in progress (the client asked for a final result).
    fn end_utterance(&mut self) -> Result<Ended, String> {
        let Some(mut recognizer) = self.recognizer.take() else {
            return Ok((Vec::new(), None));
        };
        let result = recognizer.vosk.final_result();
        let words = utterance_words(result, &self.model, &self.hints, self.origin)?;
        Ok((words, self.voiceprint()))
    }

    /// The voiceprint of the utterance that just ended (and the next one starts empty).
    fn voiceprint(&mut self) -> Option<Vec<f32>> {
        let samples = std::mem::take(&mut self.utterance);
        let models = self.voices.as_ref()?;
        trd_diarizer::voices::voiceprint(models, &samples, self.config.sample_rate)
    }
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
