//! The Nanotrix file API's answer (`POST /api/v1/file/v2t`): newline-delimited JSON engine
//! stream objects, one `push` of events per recognised segment (for each word its start
//! timestamp, the word as a label item and its end timestamp, words separated by a `plus`
//! label holding a space), then `{"end": {}}`. Timestamps are ticks of 100 ns. Every line is
//! one segment's, so it streams.

use serde_json::{json, Value};
use trd_core::domain::Segment;

use crate::view::{self, Entry};

/// 100 ns ticks per second.
const TICKS_PER_SECOND: f64 = 10_000_000.0;

/// The lines for `segments` (by start time); with `done`, the closing `end` line.
pub fn ndjson(segments: &[Segment], done: bool) -> String {
    let mut out = String::new();
    for entry in view::entries(segments) {
        let Entry::Speech { segment, .. } = entry else {
            continue;
        };
        let mut events: Vec<Value> = Vec::new();
        for (i, word) in segment.words.iter().enumerate() {
            if i > 0 {
                events.push(json!({"label": {"plus": " "}}));
            }
            events.push(json!({"timestamp": {"timestamp": ticks(word.start)}}));
            events.push(json!({"label": {"item": word.text}}));
            events.push(json!({"timestamp": {"timestamp": ticks(word.end)}}));
        }
        if events.is_empty() {
            continue;
        }
        out.push_str(&json!({"push": {"events": {"events": events}}}).to_string());
        out.push('\n');
    }
    if done {
        out.push_str("{\"end\":{}}\n");
    }
    out
}

fn ticks(seconds: f64) -> u64 {
    (seconds * TICKS_PER_SECOND).round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::segment;

    #[test]
    fn one_push_per_segment_then_end() {
        let segments = vec![segment(&[("a", 0.5, 1.0), ("b", 1.0, 1.25)])];
        let out = ndjson(&segments, true);
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let events = lines[0]["push"]["events"]["events"].as_array().unwrap();
        assert_eq!(events[0]["timestamp"]["timestamp"], 5_000_000);
        assert_eq!(events[1]["label"]["item"], "a");
        assert_eq!(events[3]["label"]["plus"], " ");
        assert_eq!(events[5]["label"]["item"], "b");
        assert_eq!(lines[1], json!({"end": {}}));
        assert!(ndjson(&segments, true).starts_with(&ndjson(&segments, false)));
    }
}
