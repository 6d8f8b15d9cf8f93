//! How much audio the recognizer hears around each turn. Speech detection trims the quiet
//! onsets and tails of words; a recognizer given exactly the detected speech misreads them, and
//! it also decodes better with a little silence before and after. So each turn is widened into
//! the silence around it, without reaching into a neighbouring turn's audio (whose words would
//! then be recognized twice).

use crate::diarize::Turn;

/// Silence added on each side of a turn where there is that much to add. Measured on
/// `ko/zeroth-104`: 0.5 s brought the pipeline's CER from 12.2 % to 11.1 %.
pub const CONTEXT_SECONDS: f64 = 0.5;

/// For each of `turns` (in order), the `(start, end)` the recognizer should hear: widened by up
/// to `context` seconds, at most half-way to the nearest turn on the same channel, never into a
/// turn it overlaps, and within `[0, duration]`.
pub fn heard_spans(turns: &[Turn], duration: f64, context: f64) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = turns.iter().map(|t| (t.start, t.end)).collect();
    let mut channels: Vec<u32> = turns.iter().map(|t| t.channel).collect();
    channels.sort_unstable();
    channels.dedup();
    for channel in channels {
        let mut order: Vec<usize> = (0..turns.len())
            .filter(|&i| turns[i].channel == channel)
            .collect();
        order.sort_by(|&a, &b| turns[a].start.total_cmp(&turns[b].start));
        let mut latest_end_before = f64::NEG_INFINITY;
        for (k, &i) in order.iter().enumerate() {
            let Turn { start, end, .. } = turns[i];
            let lowest = if latest_end_before > start {
                start
            } else {
                let halfway = (latest_end_before + start) / 2.0;
                (start - context).max(halfway).max(0.0)
            };
            let next_start = order.get(k + 1).map(|&j| turns[j].start);
            let highest = match next_start {
                Some(next) if next < end => end,
                Some(next) => (end + context).min((end + next) / 2.0),
                None => end + context,
            }
            .min(duration.max(end));
            spans[i] = (lowest.min(start), highest.max(end));
            latest_end_before = latest_end_before.max(end);
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(channel: u32, start: f64, end: f64) -> Turn {
        Turn {
            channel,
            start,
            end,
            speaker: "1".into(),
        }
    }

    #[test]
    fn turns_are_widened_into_silence_but_stop_half_way_to_a_neighbour() {
        let turns = [turn(1, 0.2, 2.0), turn(1, 2.4, 5.0), turn(1, 8.0, 9.0)];
        let spans = heard_spans(&turns, 9.3, 0.5);
        assert_eq!(spans[0], (0.0, 2.2));
        assert_eq!(spans[1], (2.2, 5.5));
        assert_eq!(spans[2], (7.5, 9.3));
    }

    #[test]
    fn channels_do_not_limit_each_other_and_overlaps_are_not_widened_into() {
        let turns = [turn(2, 1.0, 3.0), turn(1, 1.0, 3.0), turn(1, 2.5, 4.0)];
        let spans = heard_spans(&turns, 10.0, 0.5);
        assert_eq!(spans[0], (0.5, 3.5));
        assert_eq!(spans[1], (0.5, 3.0));
        assert_eq!(spans[2], (2.5, 4.5));
    }
}
