//! UWebASR's streamed formats (`../shared/seeds/001_…`): `json` (one word object per line,
//! together a valid JSON array), `speechcloud_json` (the SpeechCloud events), and errors in
//! each format as the service writes them. Every version of a document written for the first
//! segments is the beginning of the next one (the closing bracket comes with `done`), so they
//! stream.

use serde::Serialize;
use trd_core::domain::{AudioFile, Segment};

use crate::view::{self, Entry};

/// One recognised word, `json`'s line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WordLine {
    pub start: f64,
    pub end: f64,
    pub word: String,
    pub confidence: f64,
    /// The last word of a segment (the end of recognised speech).
    pub speech_end: bool,
}

/// An error inside a JSON document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorLine {
    pub status_code: u16,
    pub status_reason: String,
}

/// `format=json` for `segments` (by start time); with `done` the array is closed, after the
/// file's error if it failed (status 500 and its reason).
pub fn json(file: &AudioFile, segments: &[Segment], done: bool) -> Vec<u8> {
    let mut lines: Vec<String> = Vec::new();
    for segment in spoken(segments) {
        let last = segment.words.len().saturating_sub(1);
        for (i, word) in segment.words.iter().enumerate() {
            lines.push(to_json(&WordLine {
                start: seconds(word.start),
                end: seconds(word.end),
                word: word.text.clone(),
                confidence: f64::from(word.score.min(100)) / 100.0,
                speech_end: i == last,
            }));
        }
    }
    if done {
        if let Some(error) = view::file_error(file) {
            lines.push(to_json(&ErrorLine {
                status_code: 500,
                status_reason: error,
            }));
        }
    }
    array(lines, done)
}

/// `format=speechcloud_json`: `asr_offline_started`, a partial `asr_result` per segment as it
/// is recognised, then (with `done`) `asr_offline_finished`, the final `asr_result` with every
/// word and its times, and `asr_input_processed` (or `sc_error` for a failed file).
pub fn speechcloud_json(file: &AudioFile, segments: &[Segment], done: bool) -> Vec<u8> {
    let mut lines = vec![r#"{"type": "asr_offline_started"}"#.to_owned()];
    for segment in spoken(segments) {
        lines.push(to_json(&result(std::slice::from_ref(segment), true)));
    }
    if done {
        lines.push(r#"{"type": "asr_offline_finished"}"#.to_owned());
        let all: Vec<Segment> = spoken(segments).cloned().collect();
        lines.push(to_json(&result(&all, false)));
        match view::file_error(file) {
            Some(error) => lines.push(to_json(&serde_json::json!({
                "type": "sc_error", "status_code": 500, "status_reason": error,
            }))),
            None => lines.push(r#"{"type": "asr_input_processed"}"#.to_owned()),
        }
    }
    array(lines, done)
}

#[derive(Serialize)]
struct AsrResult {
    #[serde(rename = "type")]
    kind: &'static str,
    partial_result: bool,
    result: String,
    word_array: Vec<String>,
    word_times: Vec<[f64; 2]>,
    word_confidences: Vec<f64>,
}

fn result(segments: &[Segment], partial: bool) -> AsrResult {
    let words: Vec<_> = segments.iter().flat_map(|s| &s.words).collect();
    AsrResult {
        kind: "asr_result",
        partial_result: partial,
        result: words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        word_array: words.iter().map(|w| w.text.clone()).collect(),
        word_times: words
            .iter()
            .map(|w| [seconds(w.start), seconds(w.end)])
            .collect(),
        word_confidences: words
            .iter()
            .map(|w| f64::from(w.score.min(100)) / 100.0)
            .collect(),
    }
}

/// An error as `format` writes it (`# 400 Unknown format` in plain text, a `NOTE` in WebVTT,
/// `ErrorCode`/`ErrorReason` in Transcriber XML, a status object in the JSON formats).
pub fn error(format: &str, status: u16, reason: &str) -> Vec<u8> {
    let reason = reason.replace('\n', " ");
    match format {
        "json" | "speechcloud_json" => array(
            vec![to_json(&ErrorLine {
                status_code: status,
                status_reason: reason,
            })],
            true,
        ),
        "webvtt" | "sentvtt" => {
            format!("WEBVTT\n\nNOTE Error {status} {}\n", reason.replace("-->", "→")).into_bytes()
        }
        "trs" | "extended_trs" => format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE Trans SYSTEM \"trans-14.dtd\">\n<Trans audio_filename=\"input.wav\">\n<Episode>\n<ErrorCode>{status}</ErrorCode>\n<ErrorReason>{}</ErrorReason>\n</Episode>\n</Trans>\n",
            xml_escape(&reason)
        )
        .into_bytes(),
        _ => format!("# {status} {reason}\n").into_bytes(),
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The lines as a JSON array, one element per line; open until `done`.
fn array(lines: Vec<String>, done: bool) -> Vec<u8> {
    let mut out = String::from("[\n");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(line);
        out.push('\n');
    }
    if done {
        out.push_str("]\n");
    }
    out.into_bytes()
}

fn spoken(segments: &[Segment]) -> impl Iterator<Item = &Segment> {
    view::entries(segments).filter_map(|entry| match entry {
        Entry::Speech { segment, .. } if !segment.words.is_empty() => Some(segment),
        _ => None,
    })
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("UWebASR shapes serialise")
}

fn seconds(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{file, segment};

    #[test]
    fn json_streams_and_closes_into_a_valid_array() {
        let f = file();
        let segments = vec![
            segment(&[("good", 0.06, 0.63), ("day", 0.63, 1.11)]),
            segment(&[("bye", 2.0, 2.5)]),
        ];
        let partial = json(&f, &segments[..1], false);
        let whole = json(&f, &segments, true);
        assert!(whole.starts_with(&partial));
        let parsed: serde_json::Value = serde_json::from_slice(&whole).unwrap();
        let words: Vec<&str> = parsed
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["word"].as_str().unwrap())
            .collect();
        assert_eq!(words, ["good", "day", "bye"]);
        assert_eq!(parsed[1]["speech_end"], true);
        assert_eq!(parsed[0]["speech_end"], false);
        // One word object per line.
        assert_eq!(String::from_utf8(whole).unwrap().lines().count(), 5);
    }

    #[test]
    fn speechcloud_json_ends_with_the_final_result() {
        let f = file();
        let segments = vec![
            segment(&[("good", 0.0, 0.5)]),
            segment(&[("day", 1.0, 1.5)]),
        ];
        let partial = speechcloud_json(&f, &segments[..1], false);
        let whole = speechcloud_json(&f, &segments, true);
        assert!(whole.starts_with(&partial));
        let events: Vec<serde_json::Value> = serde_json::from_slice(&whole).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "asr_offline_started",
                "asr_result",
                "asr_result",
                "asr_offline_finished",
                "asr_result",
                "asr_input_processed"
            ]
        );
        assert_eq!(events[4]["partial_result"], false);
        assert_eq!(events[4]["word_array"], serde_json::json!(["good", "day"]));
    }

    #[test]
    fn errors_are_written_in_each_format() {
        let json: serde_json::Value =
            serde_json::from_slice(&error("json", 400, "Unknown format")).unwrap();
        assert_eq!(json[0]["status_code"], 400);
        assert_eq!(
            String::from_utf8(error("plaintext", 404, "Not Found")).unwrap(),
            "# 404 Not Found\n"
        );
        assert!(String::from_utf8(error("webvtt", 503, "busy"))
            .unwrap()
            .contains("NOTE Error 503 busy"));
        let trs = String::from_utf8(error("trs", 400, "Empty <audio>")).unwrap();
        assert!(trs.contains("<ErrorCode>400</ErrorCode>"));
        assert!(trs.contains("Empty &lt;audio&gt;"));
    }
}
