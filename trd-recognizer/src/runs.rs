//! Runs: a file's segments grouped into stretches of consecutive segments that one recognizer
//! hears in order.
//!
//! With a model that has only a lookahead graph, a new Vosk recognizer composes its decoding
//! graph lazily and spends seconds of CPU doing so on its first utterance, and a used
//! recognizer's results depend a little on what it heard before. Reuse must then follow a fixed
//! order, or the same file would come out differently depending on scheduling. A run is that
//! order: its segments are always heard one after another by one new recognizer, whoever does
//! the work and however often it is redone. With a static graph (the default model) a new
//! recognizer costs little, and runs are short so that a file spreads over every worker.

use mongodb::bson::oid::ObjectId;
use trd_core::domain::Segment;

/// Groups `segments` into runs of consecutive segments (by start, then channel) of about
/// `run_seconds` of heard audio each, balanced so that no run is much shorter than the others.
/// The grouping depends only on the segments, so every worker computes the same runs. With
/// `run_seconds` 0 every segment is a run of its own.
pub fn group_into_runs(mut segments: Vec<Segment>, run_seconds: f64) -> Vec<Vec<Segment>> {
    segments.sort_by(|a, b| {
        a.start
            .total_cmp(&b.start)
            .then(a.channel.cmp(&b.channel))
            .then(a.id.cmp(&b.id))
    });
    let durations: Vec<f64> = segments.iter().map(heard_seconds).collect();
    let total: f64 = durations.iter().sum();
    let count = if run_seconds <= 0.0 {
        segments.len()
    } else {
        ((total / run_seconds).round() as usize).clamp(1, segments.len().max(1))
    };
    let mut runs: Vec<Vec<Segment>> = Vec::new();
    let mut last_run = None;
    let mut before = 0.0;
    for (i, (segment, seconds)) in segments.into_iter().zip(durations).enumerate() {
        // A segment belongs to the run its middle falls in, so runs split the audio evenly.
        let middle = before + seconds / 2.0;
        before += seconds;
        let run = if run_seconds <= 0.0 || total <= 0.0 {
            i
        } else {
            ((middle / total * count as f64) as usize).min(count - 1)
        };
        match runs.last_mut() {
            Some(last) if last_run == Some(run) => last.push(segment),
            _ => runs.push(vec![segment]),
        }
        last_run = Some(run);
    }
    runs
}

/// The run that holds segment `id`, if any.
pub fn run_of(runs: Vec<Vec<Segment>>, id: ObjectId) -> Option<Vec<Segment>> {
    runs.into_iter()
        .find(|run| run.iter().any(|segment| segment.id == id))
}

fn heard_seconds(segment: &Segment) -> f64 {
    let heard = segment.heard_span();
    (heard.end - heard.start).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trd_core::domain::Span;

    fn segment(start: f64, end: f64, channel: u32) -> Segment {
        Segment::pending(
            ObjectId::new(),
            channel,
            Span { start, end },
            "A".into(),
            None,
        )
    }

    fn starts(runs: &[Vec<Segment>]) -> Vec<Vec<f64>> {
        runs.iter()
            .map(|r| r.iter().map(|s| s.start).collect())
            .collect()
    }

    #[test]
    fn ten_minutes_of_twenty_second_segments_make_ten_even_runs_in_time_order() {
        let mut segments: Vec<Segment> = (0..30)
            .map(|i| segment(i as f64 * 20.0, i as f64 * 20.0 + 20.0, 1))
            .collect();
        segments.reverse();
        let runs = group_into_runs(segments, 60.0);
        assert_eq!(runs.len(), 10);
        for (i, run) in runs.iter().enumerate() {
            let expected: Vec<f64> = (0..3).map(|j| (i * 3 + j) as f64 * 20.0).collect();
            assert_eq!(starts(&runs)[i], expected, "run {i}: {:?}", starts(&runs));
            assert_eq!(run.len(), 3);
        }
    }

    #[test]
    fn a_short_file_is_one_run_and_zero_makes_every_segment_its_own() {
        let segments = vec![
            segment(0.0, 5.0, 1),
            segment(6.0, 9.0, 1),
            segment(9.5, 12.0, 1),
        ];
        assert_eq!(group_into_runs(segments.clone(), 60.0).len(), 1);
        let alone = group_into_runs(segments, 0.0);
        assert_eq!(starts(&alone), vec![vec![0.0], vec![6.0], vec![9.5]]);
    }

    #[test]
    fn the_grouping_does_not_depend_on_the_order_segments_arrive_in() {
        let segments: Vec<Segment> = (0..17)
            .map(|i| {
                segment(
                    i as f64 * 7.0,
                    i as f64 * 7.0 + 2.0 + (i % 4) as f64,
                    1 + i % 2,
                )
            })
            .collect();
        let mut shuffled = segments.clone();
        shuffled.reverse();
        shuffled.swap(3, 11);
        let ids = |runs: Vec<Vec<Segment>>| -> Vec<Vec<ObjectId>> {
            runs.iter()
                .map(|r| r.iter().map(|s| s.id).collect())
                .collect()
        };
        let a = ids(group_into_runs(segments, 12.0));
        assert!(a.len() > 1);
        assert_eq!(a, ids(group_into_runs(shuffled, 12.0)));
    }

    #[test]
    fn each_segment_is_found_in_exactly_one_run() {
        let segments: Vec<Segment> = (0..9)
            .map(|i| segment(i as f64 * 10.0, i as f64 * 10.0 + 9.0, 1))
            .collect();
        let runs = group_into_runs(segments.clone(), 30.0);
        assert_eq!(runs.iter().map(Vec::len).sum::<usize>(), 9);
        for s in &segments {
            let run = run_of(runs.clone(), s.id).expect("every segment has a run");
            assert!(run.iter().any(|r| r.id == s.id));
        }
        assert!(run_of(runs, ObjectId::new()).is_none());
    }

    #[test]
    fn no_segments_no_runs() {
        assert!(group_into_runs(Vec::new(), 60.0).is_empty());
    }
}
