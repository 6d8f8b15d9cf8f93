//! The turns of a live stream's speech, cut as speech detection alone (mode `none`) cuts a
//! whole file's, each given out as soon as no later audio can change it.
//!
//! The batch functions themselves run over the scores since the last settled turn; what they
//! give for the settled part of a prefix is what they give for the whole audio, because:
//! speech regions only ever grow or are added after the last one (a region too short to keep
//! is not shown until it is long enough, and then it is kept); a turn's last piece can only be
//! joined by speech starting within `MERGE_PAUSE` of its end, which is kept (and so shown)
//! `MIN_SPEECH` later; and a long turn is cut only once its end is past the cut's window, in
//! which nothing changes any more. Times are computed from absolute frame numbers, as the
//! file's are, so settled turns equal the file's to the bit.

use crate::diarize::Turn;
use crate::hearing::{heard_spans, CONTEXT_SECONDS};
use crate::models::Models;
use crate::segmenting::{turns_of, Frames, Speech, MERGE_PAUSE};
use crate::vad::{self, VadStream, FRAME_SECONDS};

/// A settled turn, times (in seconds from the stream's start, rounded to the millisecond as
/// stored segments are) of its speech and of the audio the recognizer hears for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeardTurn {
    pub start: f64,
    pub end: f64,
    pub heard_start: f64,
    pub heard_end: f64,
}

/// How long after a turn's last piece ends it can still be joined: speech starting within
/// `MERGE_PAUSE` (plus the padding of both regions) of it, once long enough to keep.
const JOINABLE_SECONDS: f64 = MERGE_PAUSE + 2.0 * vad::PAD + vad::MIN_SPEECH + 2.0 * FRAME_SECONDS;
/// A new window starts this far after a settled turn's end: later than any padding reaches
/// back, earlier than any later turn's heard audio begins.
const REST_AFTER_END: f64 = 0.5;

/// The rate of the PCM a live stream's turns are cut from.
pub const SAMPLE_RATE: u32 = vad::SAMPLE_RATE;

/// The turns of one live stream of 16 kHz PCM.
pub struct LiveTurns {
    vad: VadStream,
    max_segment_seconds: f64,
    /// Scores from frame `first` on: before it, every turn has been given out and nothing can
    /// join a later one.
    probabilities: Vec<f32>,
    first: usize,
    /// Turns of the current window already given out.
    given: usize,
    /// Frames when the window's turns were last cut (cutting again before more audio came
    /// would give the same).
    cut_at: usize,
    /// Samples heard, from the stream's start.
    samples: u64,
    /// The first turn not given out, as last cut (its end may still grow).
    in_progress: Option<HeardTurn>,
}

/// Every `vad::BLOCK_CHUNKS` frames speech detection starts afresh; where no speech is near
/// such a boundary, the stream can be taken up there by a listener that heard nothing before
/// it but the last `vad::CONTEXT` samples.
pub const REST_EVERY_SAMPLES: u64 = (vad::BLOCK_CHUNKS * vad::CHUNK) as u64;
/// Samples before a rest point that a listener taking the stream up there needs.
pub const REST_CONTEXT_SAMPLES: u64 = vad::CONTEXT as u64;
/// How long after a rest point it is known whether the stream rests there: any speech that
/// began before its heard audio would reach back past the point is shown by then.
const REST_SETTLES_SECONDS: f64 = CONTEXT_SECONDS + 0.1 + vad::MIN_SPEECH + 3.0 * FRAME_SECONDS;

impl LiveTurns {
    pub fn new(max_segment_seconds: f64) -> Self {
        Self {
            vad: VadStream::default(),
            max_segment_seconds,
            probabilities: Vec::new(),
            first: 0,
            given: 0,
            cut_at: 0,
            samples: 0,
            in_progress: None,
        }
    }

    /// Takes a stream up at rest point `samples` (a multiple of [`REST_EVERY_SAMPLES`]), given
    /// the [`REST_CONTEXT_SAMPLES`] before it: what follows comes out as if heard from the start.
    pub fn resume(max_segment_seconds: f64, samples: u64, context: &[i16]) -> Self {
        let chunks = (samples / vad::CHUNK as u64) as usize;
        Self {
            vad: VadStream::resume(chunks, context),
            max_segment_seconds,
            probabilities: Vec::new(),
            first: chunks,
            given: 0,
            cut_at: chunks,
            samples,
            in_progress: None,
        }
    }

    /// Whether the stream rests at the last rest point before the audio heard so far, which is
    /// then where a listener can take it up; once known, the window starts there.
    pub fn rest_point(&mut self) -> Option<u64> {
        let point = self.samples / REST_EVERY_SAMPLES * REST_EVERY_SAMPLES;
        let point_frame = (point / vad::CHUNK as u64) as usize;
        let settled = (self.samples - point) as f64 / vad::SAMPLE_RATE as f64;
        if point == 0 || settled < REST_SETTLES_SECONDS || self.first > point_frame {
            return None;
        }
        if self.given != 0 || !self.cut(self.duration()).is_empty() {
            return None;
        }
        let drop = point_frame - self.first;
        self.probabilities
            .drain(..drop.min(self.probabilities.len()));
        self.first = point_frame;
        Some(point)
    }

    /// Hears more audio; gives the turns it settles, in order.
    pub fn push(&mut self, models: &Models, samples: &[i16]) -> Vec<HeardTurn> {
        self.samples += samples.len() as u64;
        let scores = self.vad.push(&models.vad, samples);
        self.probabilities.extend(scores);
        let frames = self.first + self.probabilities.len();
        // A long window (a monologue without pauses) is cut again less often, so that the
        // work stays linear in the audio.
        let every = (self.probabilities.len() / 64).max(1);
        if frames < self.cut_at + every {
            return Vec::new();
        }
        self.settle(false)
    }

    /// The audio has ended: gives every turn not yet given out.
    pub fn finish(&mut self, models: &Models) -> Vec<HeardTurn> {
        let scores = self.vad.finish(&models.vad);
        self.probabilities.extend(scores);
        self.settle(true)
    }

    /// Samples heard, from the stream's start.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The first turn not given out, once its speech has begun, as last cut: its heard start
    /// will not move, and unless a long turn is cut, its heard audio reaches at least
    /// `CONTEXT_SECONDS` past its end so far.
    pub fn in_progress(&self) -> Option<HeardTurn> {
        self.in_progress
    }

    /// The stream's audio so far, in scored frames.
    fn duration(&self) -> f64 {
        (self.first + self.probabilities.len()) as f64 * FRAME_SECONDS
    }

    fn settle(&mut self, ended: bool) -> Vec<HeardTurn> {
        let now = self.duration();
        self.cut_at = self.first + self.probabilities.len();
        // At the end, heard audio is clamped to the samples, as a file's is.
        let turns = self.cut(if ended {
            self.samples as f64 / vad::SAMPLE_RATE as f64
        } else {
            now
        });
        let mut settled = Vec::new();
        let mut rest_after = None;
        for (i, turn) in turns.iter().enumerate().skip(self.given) {
            let next = turns.get(i + 1);
            // A piece followed closely is a long turn's cut piece: final once shown.
            let cut_piece = next.is_some_and(|n| n.start - turn.end <= MERGE_PAUSE);
            let turn_over = next.is_some() || now >= turn.end + JOINABLE_SECONDS;
            if !(ended || cut_piece || turn_over) {
                break;
            }
            settled.push(*turn);
            self.given = i + 1;
            if !cut_piece {
                rest_after = Some(turn.end);
            }
        }
        self.in_progress = turns.get(self.given).copied();
        if let (Some(end), false) = (rest_after, ended) {
            // Start the window after the last finished turn, if nothing later was given out.
            if self.given == turns.len() {
                let rest = ((end + REST_AFTER_END) / FRAME_SECONDS).ceil() as usize;
                let drop = rest
                    .saturating_sub(self.first)
                    .min(self.probabilities.len());
                self.probabilities.drain(..drop);
                self.first += drop;
                self.given = 0;
                self.in_progress = None;
            }
        }
        settled
    }

    /// The window's turns as the batch cuts them, for audio of `duration` seconds so far.
    fn cut(&self, duration: f64) -> Vec<HeardTurn> {
        let speech: Vec<Speech> = vad::speech_regions_from(&self.probabilities, self.first)
            .into_iter()
            .map(|(start, end)| Speech {
                start,
                end,
                speaker: 0,
            })
            .collect();
        let frames = Frames {
            probabilities: &self.probabilities,
            first: self.first,
            seconds: FRAME_SECONDS,
        };
        let turns: Vec<Turn> = turns_of(&speech, self.max_segment_seconds, &frames)
            .into_iter()
            .map(|s| Turn {
                channel: 1,
                start: s.start,
                end: s.end,
                speaker: "1".into(),
            })
            .collect();
        heard_turns(&turns, duration)
    }
}

/// Turns of a channel `duration` seconds long with the audio each is heard from, as the batch
/// stores them.
pub fn heard_turns(turns: &[Turn], duration: f64) -> Vec<HeardTurn> {
    heard_spans(turns, duration, CONTEXT_SECONDS)
        .into_iter()
        .zip(turns)
        .map(|((heard_start, heard_end), t)| HeardTurn {
            start: round_ms(t.start),
            end: round_ms(t.end),
            heard_start: round_ms(heard_start),
            heard_end: round_ms(heard_end),
        })
        .collect()
}

/// As stored segments are rounded.
pub fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
