//! Live streams on the recognizer: take session offers while a stream slot is free, and hear
//! each session's audio as it comes, answering every input message once (the wire is
//! described in [`trd_core::live`]).
//!
//! A stream is heard as the batch hears a file with `diarization=none`, so that its final
//! results are the batch text: its PCM is normalized as a file's is (`PcmStream`), cut into
//! turns by the same speech detection and turn rules (`trd_diarizer::live_turns`, which gives
//! a turn out once no later audio can change it), and each turn is recognized from its heard
//! audio by a new recognizer fed in the batch's chunks (`SegmentHearing`). The turn in
//! progress is fed as far as its heard audio surely reaches, for partial results; a long turn
//! that is then cut earlier is heard again.
//!
//! Take-over: input is acknowledged only when a recognizer taking the session over no longer
//! needs it: up to a reset or the end (whose results are out), or the audio before a rest
//! point (a speech detection block boundary with no speech near it). When this process dies,
//! the broker gives the offer and the unacknowledged input to another recognizer, which takes
//! the stream up at the origin or at that rest point and hears it exactly as this one would
//! have; the API drops answers it has given already.

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

use trd_diarizer::live_turns::{HeardTurn, LiveTurns, REST_CONTEXT_SAMPLES, REST_EVERY_SAMPLES};
use trd_normalizer::PcmStream;

use crate::hints::Hints;
use crate::models::{LoadedModel, RunRecognizer};
use crate::recognize::SegmentHearing;
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
    // Input not yet acknowledged, with the session samples its audio spans.
    let mut unacked: Vec<Unacked> = Vec::new();
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
        let mut d = match message {
            LiveInput::Config(config) => {
                // Never acknowledged: a recognizer that takes the session over reads it first.
                decoder = Some(LiveDecoder::new(ctx, config).await?);
                continue;
            }
            _ => decoder.take().ok_or_else(unconfigured)?,
        };
        let (seq, span, last) = match &message {
            LiveInput::Audio {
                seq,
                offset,
                origin,
                samples,
            } => (
                *seq,
                (*offset, offset + samples.len() as u64, *origin),
                false,
            ),
            LiveInput::Reset { seq } => (*seq, (0, 0, 0), false),
            LiveInput::End { seq } => (*seq, (0, 0, 0), true),
            LiveInput::Config(_) => unreachable!("handled above"),
        };
        let (d, answer, rest) = blocking(move || {
            let answer = match message {
                LiveInput::Audio {
                    offset,
                    origin,
                    samples,
                    ..
                } => d.hear(offset, origin, &samples),
                _ => d.end().map(|ended| (Vec::new(), ended)),
            };
            let rest = d.rest_point();
            (d, answer, rest)
        })
        .await?;
        decoder = Some(d);
        let (partial, ended) = answer.map_err(SessionEnd::Failed)?;
        let audio = span.1 > span.0;
        unacked.push(Unacked {
            acker: delivery.acker,
            span: AudioSpan {
                start: span.0,
                end: span.1,
                origin: span.2,
            },
        });
        let ended = ended.map(|(words, voice)| Utterance {
            through_seq: seq,
            words,
            voice,
            speaker: None,
        });
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
        // Input is acknowledged once a recognizer taking the session over no longer needs it:
        // everything up to a reset or the end (whose results are out), and the audio before
        // a rest point.
        let settled = match rest {
            _ if !audio => unacked.len(),
            Some(point) => {
                let spans: Vec<AudioSpan> = unacked.iter().map(|u| u.span).collect();
                resumable_before(&spans, point)
            }
            None => 0,
        };
        for entry in unacked.drain(..settled) {
            let _ = entry.acker.ack(BasicAckOptions::default()).await;
        }
        if last {
            return Ok(());
        }
    }
}

/// An input message not yet acknowledged, with the session samples its audio spans.
struct Unacked {
    acker: lapin::Acker,
    span: AudioSpan,
}

/// The session samples an input message's audio spans (none for other messages).
#[derive(Debug, Clone, Copy)]
struct AudioSpan {
    start: u64,
    end: u64,
    /// Where the audio it belongs to began.
    origin: u64,
}

/// How many of the first unacknowledged messages can go, so that a recognizer taking the
/// session over starts at rest point `point`: those before the point's context, if the first
/// message left then leads a taker to that point.
fn resumable_before(unacked: &[AudioSpan], point: u64) -> usize {
    let needed_from = point.saturating_sub(REST_CONTEXT_SAMPLES);
    let Some(first_kept) = unacked.iter().position(|u| u.end > needed_from) else {
        return 0;
    };
    let kept = &unacked[first_kept];
    if first_kept == 0 || resume_point(kept.start, kept.origin) != point {
        return 0;
    }
    first_kept
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

/// A session's listener: the batch pipeline's normalizing, speech detection, turn cutting and
/// recognition, run as the audio comes, so that each final result is the batch result of
/// its turn.
struct LiveDecoder {
    model: Arc<LoadedModel>,
    hints: Hints,
    config: LiveConfig,
    /// Speech detection, and with speakers asked for, voiceprints.
    diarizer: Arc<trd_diarizer::Models>,
    max_segment_seconds: f64,
    /// The audio being heard, from session sample `origin` (the session's start or its last
    /// reset) on; `None` until its first audio.
    heard: Option<Heard>,
}

/// The audio since the session's start or its last reset, as it is being heard.
struct Heard {
    /// Session sample (at the client's rate) where this audio began.
    origin: u64,
    pcm: PcmStream,
    turns: LiveTurns,
    /// Normalized samples from sample `kept_from` (of this audio, at 16 kHz) on.
    audio: Vec<i16>,
    kept_from: u64,
    /// The turn being recognized.
    current: Option<Current>,
}

/// A turn's recognition in progress: a new recognizer for each turn, as a batch segment gets.
struct Current {
    recognizer: RunRecognizer,
    hearing: SegmentHearing,
    /// Its first sample, and how far it has been fed.
    first: u64,
    fed: u64,
}

/// What one input gives: the words of the turn in progress, and those of turns that ended
/// with, if speakers were asked for, their voiceprint.
type Answer = (Vec<Word>, Option<Ended>);
type Ended = (Vec<Word>, Option<Vec<f32>>);

/// Rate of the heard audio.
const RATE: u32 = trd_diarizer::live_turns::SAMPLE_RATE;

impl LiveDecoder {
    async fn new(ctx: &WorkerContext, config: LiveConfig) -> Result<Self, SessionEnd> {
        let model = load_model(ctx, config.model.clone())
            .await
            .map_err(|e| SessionEnd::Failed(ErrorChain(&e).to_string()))?;
        let dir = ctx.settings.diarizer_models.clone();
        let diarizer = blocking(move || trd_diarizer::Models::shared(&dir))
            .await?
            .map_err(|e| SessionEnd::Failed(format!("no speech detection: {}", ErrorChain(&e))))?;
        Ok(Self {
            model,
            hints: Hints::new(&config.hints),
            config,
            diarizer,
            max_segment_seconds: ctx.settings.max_segment_seconds,
            heard: None,
        })
    }

    /// Hears audio that starts at session sample `offset`, of the audio begun at `origin`.
    fn hear(&mut self, offset: u64, origin: u64, samples: &[i16]) -> Result<Answer, String> {
        let samples = match &self.heard {
            Some(_) => samples,
            None => {
                let (heard, rest) = self.begin(offset, origin, samples)?;
                self.heard = Some(heard);
                rest
            }
        };
        let heard = self.heard.as_mut().expect("begun above");
        let normalized = heard.pcm.push(samples).map_err(|e| e.to_string())?;
        heard.audio.extend_from_slice(&normalized);
        let settled = heard.turns.push(&self.diarizer, &normalized);
        let ended = self.recognize_settled(&settled)?;
        self.follow_in_progress()?;
        let heard = self.heard.as_mut().expect("begun above");
        let partial = match &mut heard.current {
            Some(c) => c.hearing.partial(&mut c.recognizer, &self.model),
            None => Vec::new(),
        };
        heard.forget_heard();
        Ok((partial, ended))
    }

    /// Ends the audio being heard: every turn still open ends with it (a final result even
    /// when there were none, as the client asked for one).
    fn end(&mut self) -> Result<Option<Ended>, String> {
        let Some(heard) = self.heard.as_mut() else {
            return Ok(Some((Vec::new(), None)));
        };
        let normalized = heard.pcm.finish().map_err(|e| e.to_string())?;
        heard.audio.extend_from_slice(&normalized);
        let mut settled = heard.turns.push(&self.diarizer, &normalized);
        settled.extend(heard.turns.finish(&self.diarizer));
        let ended = self.recognize_settled(&settled);
        self.heard = None;
        Ok(Some(ended?.unwrap_or((Vec::new(), None))))
    }

    /// Where a recognizer taking this session over could take it up, as a session sample:
    /// the last rest point, if the audio rests there.
    fn rest_point(&mut self) -> Option<u64> {
        // Only 16 kHz audio is heard as it came: other rates go through a resampler that
        // would have to hear what came before.
        if self.config.sample_rate != RATE {
            return None;
        }
        let heard = self.heard.as_mut()?;
        heard.turns.rest_point().map(|point| heard.origin + point)
    }

    /// Starts hearing audio, at its origin or, taking a session over, at the rest point the
    /// first unacknowledged message holds; gives the samples that follow.
    fn begin<'s>(
        &self,
        offset: u64,
        origin: u64,
        samples: &'s [i16],
    ) -> Result<(Heard, &'s [i16]), String> {
        let rate = self.config.sample_rate;
        let pcm = PcmStream::new(rate, RATE).map_err(|e| e.to_string())?;
        let fresh = |origin: u64| Heard {
            origin,
            pcm,
            turns: LiveTurns::new(self.max_segment_seconds),
            audio: Vec::new(),
            kept_from: 0,
            current: None,
        };
        if offset <= origin || rate != RATE {
            return Ok((fresh(offset.max(origin)), samples));
        }
        let point = resume_point(offset, origin);
        tracing::info!(
            at_seconds = (point - origin) as f64 / f64::from(RATE),
            "taking the stream up at its rest point"
        );
        let context_start = (point - origin).saturating_sub(REST_CONTEXT_SAMPLES) + origin;
        let Some(skip) = context_start.checked_sub(offset) else {
            // Not a message a rest point left first: hear it as new audio.
            return Ok((fresh(offset), samples));
        };
        let skip = (skip as usize).min(samples.len());
        let split = ((point - offset) as usize).min(samples.len());
        let context = &samples[skip..split];
        let turns = LiveTurns::resume(self.max_segment_seconds, point - origin, context);
        let mut heard = fresh(origin);
        heard.turns = turns;
        heard.kept_from = point - origin;
        Ok((heard, &samples[split..]))
    }

    /// Recognizes the turns that settled, each from its heard audio as a batch segment is.
    fn recognize_settled(&mut self, settled: &[HeardTurn]) -> Result<Option<Ended>, String> {
        if settled.is_empty() {
            return Ok(None);
        }
        let (mut words, mut voiced) = (Vec::new(), Vec::new());
        for turn in settled {
            let first = to_sample(turn.heard_start);
            let last = to_sample(turn.heard_end);
            let heard = self.heard.as_mut().expect("hearing");
            // A long turn cut before what was fed is heard again, as the batch hears it.
            if heard
                .current
                .as_ref()
                .is_some_and(|c| c.first != first || c.fed > last)
            {
                heard.current = None;
            }
            self.start_turn(first)?;
            let heard = self.heard.as_mut().expect("hearing");
            heard.feed_to(last, &self.model, &self.hints)?;
            let Current {
                mut recognizer,
                hearing,
                ..
            } = heard.current.take().expect("started above");
            let outcome = hearing.finish(&mut recognizer, &self.model, &self.hints);
            if let Some(reason) = outcome.reason.filter(|_| outcome.words.is_empty()) {
                return Err(reason);
            }
            words.extend(outcome.words);
            if self.config.speakers {
                voiced.extend_from_slice(heard.slice(first, last));
            }
        }
        let voice = if self.config.speakers {
            trd_diarizer::voices::voiceprint(&self.diarizer, &voiced, RATE)
        } else {
            None
        };
        Ok(Some((words, voice)))
    }

    /// Feeds the turn in progress as far as its heard audio surely reaches.
    fn follow_in_progress(&mut self) -> Result<(), String> {
        let heard = self.heard.as_ref().expect("hearing");
        let Some(turn) = heard.turns.in_progress() else {
            return Ok(());
        };
        let first = to_sample(turn.heard_start);
        if heard.current.as_ref().is_some_and(|c| c.first != first) {
            self.heard.as_mut().expect("hearing").current = None;
        }
        self.start_turn(first)?;
        // A millisecond short, for the rounding of the turn's end.
        let sure = to_sample(turn.end + trd_diarizer::hearing::CONTEXT_SECONDS - 0.001);
        let heard = self.heard.as_mut().expect("hearing");
        let available = heard.kept_from + heard.audio.len() as u64;
        heard.feed_to(sure.min(available), &self.model, &self.hints)
    }

    /// A new recognizer for the turn heard from `first`, unless it is being recognized.
    fn start_turn(&mut self, first: u64) -> Result<(), String> {
        let heard = self.heard.as_mut().expect("hearing");
        if heard.current.is_some() {
            return Ok(());
        }
        let mut recognizer = self
            .model
            .recognizer(RATE)
            .ok_or_else(|| format!("the model cannot hear audio at {RATE} Hz"))?;
        recognizer.vosk.set_partial_words(true);
        let offset = heard.origin as f64 / f64::from(self.config.sample_rate)
            + first as f64 / f64::from(RATE);
        let hearing = SegmentHearing::begin(&mut recognizer, &self.hints, offset);
        heard.current = Some(Current {
            recognizer,
            hearing,
            first,
            fed: first,
        });
        Ok(())
    }
}

impl Heard {
    /// Feeds the current turn up to sample `until`.
    fn feed_to(&mut self, until: u64, model: &LoadedModel, hints: &Hints) -> Result<(), String> {
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        if until <= current.fed {
            return Ok(());
        }
        let samples = slice_of(&self.audio, self.kept_from, current.fed, until);
        let fed = current.fed + samples.len() as u64;
        current
            .hearing
            .hear(&mut current.recognizer, model, hints, samples)?;
        current.fed = fed;
        Ok(())
    }

    fn slice(&self, first: u64, last: u64) -> &[i16] {
        slice_of(&self.audio, self.kept_from, first, last)
    }

    /// Drops audio no turn can need again: before the current turn, and before the last
    /// second (a turn's heard audio begins at most half a second before its speech, which is
    /// shown a quarter second after it begins).
    fn forget_heard(&mut self) {
        let end = self.kept_from + self.audio.len() as u64;
        let keep = end.saturating_sub(u64::from(RATE));
        let keep = self.current.as_ref().map_or(keep, |c| keep.min(c.first));
        if keep > self.kept_from {
            let drop = ((keep - self.kept_from) as usize).min(self.audio.len());
            self.audio.drain(..drop);
            self.kept_from += drop as u64;
        }
    }
}

/// Samples `first..last` of audio kept from `kept_from`, as far as it is there.
fn slice_of(audio: &[i16], kept_from: u64, first: u64, last: u64) -> &[i16] {
    let from = (first.saturating_sub(kept_from) as usize).min(audio.len());
    let to = (last.saturating_sub(kept_from) as usize).clamp(from, audio.len());
    &audio[from..to]
}

/// A heard time as the batch reads a segment's samples.
fn to_sample(seconds: f64) -> u64 {
    (seconds * f64::from(RATE)).round().max(0.0) as u64
}

/// The rest point a recognizer taking a session over starts at, given the offset of the first
/// unacknowledged audio (and where that audio began): the first rest point whose context that
/// message holds.
fn resume_point(offset: u64, origin: u64) -> u64 {
    let since = offset - origin;
    if since == 0 {
        return origin;
    }
    origin + (since + REST_CONTEXT_SAMPLES).div_ceil(REST_EVERY_SAMPLES) * REST_EVERY_SAMPLES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(origin: u64, sizes: &[u64]) -> Vec<AudioSpan> {
        let mut start = origin;
        sizes
            .iter()
            .map(|&n| {
                let span = AudioSpan {
                    start,
                    end: start + n,
                    origin,
                };
                start += n;
                span
            })
            .collect()
    }

    #[test]
    fn a_taker_starts_at_the_rest_point_whose_context_its_first_message_holds() {
        let every = REST_EVERY_SAMPLES;
        assert_eq!(resume_point(0, 0), 0);
        assert_eq!(resume_point(5_000, 5_000), 5_000);
        assert_eq!(resume_point(every - REST_CONTEXT_SAMPLES, 0), every);
        assert_eq!(resume_point(every - 3_200, 0), every);
        assert_eq!(resume_point(every - REST_CONTEXT_SAMPLES + 1, 0), 2 * every);
        assert_eq!(resume_point(7 + every - 100, 7), 7 + every);
    }

    #[test]
    fn messages_go_only_when_what_is_left_leads_a_taker_to_the_rest_point() {
        let every = REST_EVERY_SAMPLES;
        // 0.2 s frames over 63 s: everything wholly before the point's context goes.
        let frames = spans(0, &vec![3_200; 315]);
        let gone = resumable_before(&frames, every);
        let left = frames[gone];
        assert!(frames[gone - 1].end <= every - REST_CONTEXT_SAMPLES);
        assert!(
            left.start <= every - REST_CONTEXT_SAMPLES && left.end > every - REST_CONTEXT_SAMPLES
        );
        assert_eq!(resume_point(left.start, left.origin), every);

        // One frame of 70 s holding the point: nothing can go (a taker starts from the top).
        let big = spans(0, &[16_000, 70 * 16_000]);
        assert_eq!(resumable_before(&big, every), 1);
        assert_eq!(resume_point(big[1].start, 0), every);
        // A frame of 2 minutes from 1 s on would lead a taker to the wrong point: keep all.
        let huge = spans(0, &[16_000, 120 * 16_000, 3_200]);
        assert_eq!(resumable_before(&huge, 2 * every), 0);
        // Nothing before the point's context: nothing to acknowledge.
        assert_eq!(resumable_before(&spans(0, &[3_200]), every), 0);
    }
}
