//! Speaker-labelled speech → turns the recognizer can take: one speaker each, no longer than
//! the configured maximum, cut in pauses rather than inside words.

/// A stretch of uninterrupted speech by one speaker (a cluster label), in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speech {
    pub start: f64,
    pub end: f64,
    pub speaker: usize,
}

/// Pauses shorter than this between one speaker's speech belong to the turn: people breathe
/// and hesitate mid-sentence, and the recognizer does better with the whole sentence.
pub const MERGE_PAUSE: f64 = 1.0;
/// Gaps inside words and between closely spoken words are shorter than this; cutting there
/// would split a word.
const WORD_PAUSE: f64 = 0.2;

/// `speech` (one channel, sorted, non-overlapping) as turns of at most `max_seconds`.
/// `probabilities` are the voice-activity scores, one per `frame_seconds` from the start of
/// the audio, used to find the quietest moment when a turn has no pause to cut at.
pub fn turns(
    speech: &[Speech],
    max_seconds: f64,
    probabilities: &[f32],
    frame_seconds: f64,
) -> Vec<Speech> {
    let frames = Frames {
        probabilities,
        first: 0,
        seconds: frame_seconds,
    };
    turns_of(speech, max_seconds, &frames)
}

/// Voice-activity scores from frame `first` of the audio on.
pub struct Frames<'a> {
    pub probabilities: &'a [f32],
    pub first: usize,
    pub seconds: f64,
}

/// [`turns`] with scores that may begin part-way into the audio (a live stream's).
pub fn turns_of(speech: &[Speech], max_seconds: f64, frames: &Frames<'_>) -> Vec<Speech> {
    let mut out = Vec::new();
    let mut group: Vec<Speech> = Vec::new();
    for piece in speech {
        if let Some(last) = group.last() {
            if last.speaker != piece.speaker || piece.start - last.end > MERGE_PAUSE {
                split_turn(&group, max_seconds, frames, &mut out);
                group.clear();
            }
        }
        group.push(*piece);
    }
    if !group.is_empty() {
        split_turn(&group, max_seconds, frames, &mut out);
    }
    out
}

/// Cuts one speaker's turn (its speech pieces, separated by short pauses) into segments.
fn split_turn(pieces: &[Speech], max_seconds: f64, frames: &Frames<'_>, out: &mut Vec<Speech>) {
    let speaker = pieces[0].speaker;
    let end = pieces[pieces.len() - 1].end;
    let pauses: Vec<(f64, f64)> = pieces.windows(2).map(|w| (w[0].end, w[1].start)).collect();
    let mut start = pieces[0].start;
    while end - start > max_seconds {
        let limit = start + max_seconds;
        let candidates: Vec<&(f64, f64)> = pauses
            .iter()
            .filter(|(a, _)| *a > start && *a <= limit)
            .collect();
        let long = candidates.iter().rev().find(|(a, b)| b - a >= WORD_PAUSE);
        let longest = candidates
            .iter()
            .max_by(|x, y| (x.1 - x.0).total_cmp(&(y.1 - y.0)));
        let (cut_end, next_start) = match long.or(longest) {
            Some(&&(a, b)) => (a, b),
            None => {
                let t = quietest(frames, start + max_seconds / 2.0, limit);
                (t, t)
            }
        };
        out.push(Speech {
            start,
            end: cut_end,
            speaker,
        });
        start = next_start;
    }
    out.push(Speech {
        start,
        end,
        speaker,
    });
}

/// The boundary between frames in `[from, to]` where speech is least likely.
fn quietest(frames: &Frames<'_>, from: f64, to: f64) -> f64 {
    let Frames {
        probabilities,
        first: offset,
        seconds,
    } = *frames;
    let first = ((from / seconds).ceil() as usize).max(offset);
    let last = ((to / seconds).floor() as usize).min(offset + probabilities.len());
    (first..last)
        .min_by(|&a, &b| probabilities[a - offset].total_cmp(&probabilities[b - offset]))
        .map_or(to, |frame| (frame as f64 + 0.5) * seconds)
        .clamp(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speech(start: f64, end: f64, speaker: usize) -> Speech {
        Speech {
            start,
            end,
            speaker,
        }
    }

    #[test]
    fn short_pauses_join_a_speakers_turn_and_a_change_of_speaker_ends_it() {
        let input = [
            speech(0.0, 2.0, 0),
            speech(2.3, 4.0, 0),
            speech(4.1, 6.0, 1),
            speech(7.5, 8.0, 1),
        ];
        let out = turns(&input, 30.0, &[], 0.032);
        assert_eq!(
            out,
            vec![
                speech(0.0, 4.0, 0),
                speech(4.1, 6.0, 1),
                speech(7.5, 8.0, 1)
            ]
        );
    }

    #[test]
    fn long_turns_are_cut_at_the_last_real_pause_that_fits() {
        // Pauses at 4–4.3 (real), 8–8.1 (inside a word) and 9–9.4 (real, but past the 10 s limit
        // only after 9.4, so it still fits: its start is 9.0).
        let input = [
            speech(0.0, 4.0, 0),
            speech(4.3, 8.0, 0),
            speech(8.1, 9.0, 0),
            speech(9.4, 15.0, 0),
        ];
        let out = turns(&input, 10.0, &[], 0.032);
        assert_eq!(out, vec![speech(0.0, 9.0, 0), speech(9.4, 15.0, 0)]);
    }

    #[test]
    fn a_word_gap_is_used_only_when_there_is_no_real_pause() {
        let input = [speech(0.0, 6.0, 0), speech(6.1, 12.0, 0)];
        let out = turns(&input, 10.0, &[], 0.032);
        assert_eq!(out, vec![speech(0.0, 6.0, 0), speech(6.1, 12.0, 0)]);
    }

    #[test]
    fn unbroken_speech_is_cut_at_its_quietest_moment() {
        let frame = 0.1;
        let mut probabilities = vec![0.9f32; 250];
        probabilities[70] = 0.2;
        let out = turns(&[speech(0.0, 25.0, 0)], 10.0, &probabilities, frame);
        assert!(
            out.iter().all(|s| s.end - s.start <= 10.0 + 1e-9),
            "{out:?}"
        );
        assert!((out[0].end - 7.05).abs() < 1e-9, "{out:?}");
        assert_eq!(out.last().unwrap().end, 25.0);
    }
}
