//! Live streams in the job core: a client's audio relayed, as it comes, to the recognizer
//! that took the session, and that recognizer's answers back, one per input message.
//!
//! - [`Jobs::open_stream`]: the session is offered to the recognizers; one with a free stream
//!   slot must take it within `stream_accept_ms`, or the client is refused at once
//!   ([`JobError::Busy`]) instead of queueing audio no one will hear in time.
//! - [`LiveStream::send_audio`] and friends: input, numbered in order. The broker keeps each
//!   message until the recognizer's final result covers it, so a recognizer that dies leaves
//!   the session's unheard audio to the next one (the wire is described in
//!   [`trd_core::live`]).
//! - [`LiveStream::next_answer`]: the answers in input order, each exactly once, whatever
//!   recognizer gave it: after a take-over the new recognizer answers again what the old one
//!   had answered, and those answers are dropped here, except for a final result the client
//!   has not had, which comes with the next answer. The client sees a delay, never a gap.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use trd_core::domain::{Status, Word};
use trd_core::live::{LiveConfig, LiveEvent, LiveInput, LiveLink, Utterance, Voices};
use trd_core::Queue;

use super::now::RETRY_AFTER_SECONDS;
use super::{JobError, JobResult, Jobs};

/// Sample rates a stream may declare (what Vosk's feature pipeline accepts sensibly).
const STREAM_RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;

/// A recognizer's answer to one input message, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub seq: u64,
    /// The utterance in progress, as heard so far.
    pub partial: Vec<Word>,
    /// Utterances that ended since the previous answer (usually none or one).
    pub finals: Vec<Utterance>,
}

/// An open live stream. Dropping it ends the session (its queues are deleted, which ends it
/// on the recognizer too).
pub struct LiveStream {
    queue: Queue,
    link: Option<LiveLink>,
    sample_rate: Option<u32>,
    next_seq: u64,
    samples_sent: u64,
    /// `samples_sent` at the last reset: where the audio being heard began.
    origin: u64,
    ledger: Ledger,
    window_seconds: f64,
    stall: Duration,
    worker: Option<String>,
    /// How often another recognizer took the session over.
    pub takeovers: u32,
}

impl Jobs {
    /// Checks a stream's settings: the model (by id or language, else the default) and the
    /// sample rate.
    pub fn stream_config(
        &self,
        model: Option<&str>,
        sample_rate: u32,
        hints: Vec<String>,
    ) -> JobResult<LiveConfig> {
        let model = match model {
            None => self.settings.default_model.clone(),
            Some(name) => self.model_for_language(name)?,
        };
        if !STREAM_RATES.contains(&sample_rate) {
            return Err(JobError::InvalidOptions(format!(
                "sample rate {sample_rate} Hz is outside {}–{} Hz",
                STREAM_RATES.start(),
                STREAM_RATES.end()
            )));
        }
        Ok(LiveConfig {
            model,
            sample_rate,
            hints,
            speakers: false,
        })
    }

    /// Offers a new session to the recognizers and waits for one to take it.
    pub async fn open_stream(&self) -> JobResult<LiveStream> {
        let session = uuid::Uuid::new_v4().simple().to_string();
        let idle = Duration::from_secs(self.settings.stream_idle_seconds);
        let mut link = self.queue.open_live(&session, idle * 2).await?;
        let accept = Duration::from_millis(self.settings.stream_accept_ms);
        let worker = tokio::time::timeout(accept, async {
            while let Some(Ok(delivery)) = link.answers.next().await {
                if let Ok(LiveEvent::Accepted { worker }) = serde_json::from_slice(&delivery.data) {
                    return Some(worker);
                }
            }
            None
        })
        .await;
        let Ok(Some(worker)) = worker else {
            // The offer stays queued until a recognizer frees a slot; it then finds the
            // session's queues gone and drops it.
            self.queue.close_live(link).await;
            return Err(JobError::NoWorker {
                waited: accept,
                retry_after: RETRY_AFTER_SECONDS,
            });
        };
        tracing::info!(session = %session, worker = %worker, "live stream opened");
        Ok(LiveStream {
            queue: self.queue.clone(),
            link: Some(link),
            sample_rate: None,
            next_seq: 1,
            samples_sent: 0,
            origin: 0,
            ledger: Ledger::default(),
            window_seconds: self.settings.stream_window_seconds,
            stall: idle.max(Duration::from_secs(10)),
            worker: Some(worker),
            takeovers: 0,
        })
    }
}

impl LiveStream {
    fn link(&self) -> &LiveLink {
        self.link
            .as_ref()
            .expect("a live stream's link lives until it is dropped")
    }

    /// Whether the configuration was sent.
    pub fn is_configured(&self) -> bool {
        self.sample_rate.is_some()
    }

    /// Sends the configuration: once, before any audio.
    pub async fn configure(&mut self, config: LiveConfig) -> JobResult<()> {
        if self.is_configured() {
            return Err(JobError::InvalidOptions(
                "the stream is configured already".into(),
            ));
        }
        let rate = config.sample_rate;
        self.queue
            .publish_live_input(self.link(), &LiveInput::Config(config))
            .await?;
        self.sample_rate = Some(rate);
        Ok(())
    }

    fn take_seq(&mut self, samples: u64) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ledger.unanswered.push_back((seq, samples));
        seq
    }

    /// Sends 16-bit mono PCM at the configured rate.
    pub async fn send_audio(&mut self, samples: Vec<i16>) -> JobResult<u64> {
        let offset = self.samples_sent;
        let count = samples.len() as u64;
        let seq = self.next_seq;
        let input = LiveInput::Audio {
            seq,
            offset,
            origin: self.origin,
            samples,
        };
        self.queue.publish_live_input(self.link(), &input).await?;
        self.samples_sent += count;
        Ok(self.take_seq(count))
    }

    /// Asks for the utterance in progress to end (its answer carries the final result).
    pub async fn reset(&mut self) -> JobResult<u64> {
        let seq = self.next_seq;
        self.queue
            .publish_live_input(self.link(), &LiveInput::Reset { seq })
            .await?;
        self.origin = self.samples_sent;
        Ok(self.take_seq(0))
    }

    /// Ends the session after the utterance in progress (its answer is the last).
    pub async fn end(&mut self) -> JobResult<u64> {
        let seq = self.next_seq;
        self.queue
            .publish_live_input(self.link(), &LiveInput::End { seq })
            .await?;
        Ok(self.take_seq(0))
    }

    /// Whether answers are outstanding.
    pub fn awaiting(&self) -> bool {
        !self.ledger.unanswered.is_empty()
    }

    /// Whether as much audio is unheard as the window allows: the client must not be read
    /// until an answer comes.
    pub fn is_full(&self) -> bool {
        let unheard: u64 = self.ledger.unanswered.iter().map(|(_, n)| n).sum();
        unheard as f64 / f64::from(self.sample_rate.unwrap_or(16_000)) >= self.window_seconds
    }

    /// The next answer in input order. Cancel-safe: the only await is the broker's stream.
    pub async fn next_answer(&mut self) -> JobResult<Answer> {
        loop {
            let link = self.link.as_mut().expect("live until dropped");
            let delivery = tokio::time::timeout(self.stall, link.answers.next()).await;
            let delivery = match delivery {
                Err(_) => {
                    return Err(JobError::NoWorker {
                        waited: self.stall,
                        retry_after: RETRY_AFTER_SECONDS,
                    })
                }
                Ok(Some(Ok(delivery))) => delivery,
                Ok(_) => return Err(JobError::Gone),
            };
            let Ok(event) = serde_json::from_slice::<LiveEvent>(&delivery.data) else {
                tracing::warn!("dropping a malformed live-stream answer");
                continue;
            };
            if let Some(answer) = self.take(event)? {
                return Ok(answer);
            }
        }
    }

    /// One event from the session's recognizer; an answer when it is the next one due.
    fn take(&mut self, event: LiveEvent) -> JobResult<Option<Answer>> {
        match event {
            LiveEvent::Accepted { worker } => {
                if self.worker.as_ref().is_some_and(|w| *w != worker) {
                    self.takeovers += 1;
                    tracing::warn!(worker = %worker, "another recognizer took the live stream over");
                }
                self.worker = Some(worker);
                Ok(None)
            }
            LiveEvent::Failed { reason } => Err(JobError::Failed {
                status: Status::Recognizing,
                reason,
            }),
            LiveEvent::Heard {
                seq,
                partial,
                ended,
            } => Ok(self.ledger.heard(seq, partial, ended)),
        }
    }
}

/// Which answers the client has had.
#[derive(Debug, Default)]
struct Ledger {
    /// Input sent and not answered yet: (seq, samples), oldest first.
    unanswered: VecDeque<(u64, u64)>,
    answered_through: u64,
    final_through: u64,
    late_finals: Vec<Utterance>,
    /// The stream's speakers, from the voiceprints of its finals.
    voices: Voices,
}

impl Ledger {
    /// An answer heard from a recognizer: the next answer due, or `None` for one the client
    /// has had (heard again after a take-over). A final result the client has not had is kept
    /// in any case, for the next answer due.
    fn heard(&mut self, seq: u64, partial: Vec<Word>, ended: Option<Utterance>) -> Option<Answer> {
        if let Some(mut utterance) = ended.filter(|u| u.through_seq > self.final_through) {
            self.final_through = utterance.through_seq;
            utterance.speaker = utterance
                .voice
                .as_deref()
                .map(|v| self.voices.speaker_of(v));
            self.late_finals.push(utterance);
        }
        if seq <= self.answered_through {
            return None;
        }
        while self.unanswered.front().is_some_and(|(s, _)| *s <= seq) {
            self.unanswered.pop_front();
        }
        self.answered_through = seq;
        Some(Answer {
            seq,
            partial,
            finals: std::mem::take(&mut self.late_finals),
        })
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            let queue = self.queue.clone();
            tokio::spawn(async move { queue.close_live(link).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str) -> Word {
        Word {
            text: text.into(),
            start: 0.0,
            end: 0.1,
            score: 90,
        }
    }

    /// Answer `seq` as the ledger gives it: its seq and the `through_seq` of its finals.
    fn heard(ledger: &mut Ledger, seq: u64, ended: Option<u64>) -> Option<(u64, Vec<u64>)> {
        let ended = ended.map(|through_seq| Utterance {
            through_seq,
            words: vec![word("final")],
            voice: None,
            speaker: None,
        });
        ledger
            .heard(seq, vec![word("partial")], ended)
            .map(|a| (a.seq, a.finals.iter().map(|u| u.through_seq).collect()))
    }

    #[test]
    fn a_takeover_replays_nothing_twice_and_loses_no_final() {
        let mut ledger = Ledger::default();
        for seq in 1..=6 {
            ledger.unanswered.push_back((seq, 3_200));
        }
        assert_eq!(heard(&mut ledger, 1, None), Some((1, vec![])));
        assert_eq!(heard(&mut ledger, 2, Some(2)), Some((2, vec![2])));
        assert_eq!(heard(&mut ledger, 3, None), Some((3, vec![])));
        assert_eq!(heard(&mut ledger, 4, None), Some((4, vec![])));
        assert_eq!(ledger.unanswered.front(), Some(&(5, 3_200)));
        // A new recognizer hears 3 and 4 again and ends an utterance at 4 where the old one
        // had not: that final is new, and comes with answer 5.
        assert_eq!(heard(&mut ledger, 3, None), None);
        assert_eq!(heard(&mut ledger, 4, Some(4)), None);
        assert_eq!(heard(&mut ledger, 5, None), Some((5, vec![4])));
        // A final sent by a recognizer that died before its input was acknowledged, heard
        // again from the next one: dropped.
        assert_eq!(heard(&mut ledger, 5, Some(4)), None);
        assert_eq!(heard(&mut ledger, 6, Some(6)), Some((6, vec![6])));
        assert!(ledger.unanswered.is_empty());
    }
}
