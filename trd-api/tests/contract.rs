//! The contract's own examples (`../shared/reference/trd-api.md`) against the Rust types that
//! the handlers return: each example, rebuilt from the domain model, serialises to the same
//! JSON (every key the example shows, with its value; for the status shapes, no other key).

use std::path::PathBuf;

use mongodb::bson::{oid::ObjectId, DateTime};
use serde_json::Value;
use trd_api::shapes::{FileStatus, RecordView, SegmentView, SpeechTally};
use trd_api::status::{batch_figures, BatchSums};
use trd_core::domain::{
    AudioChannel, AudioFile, AudioInfo, BatchName, Control, Segment, SegmentStatus, Span,
    StartOptions, Status, Word,
};
use trd_core::store::figures::{FileGroup, SpeechTally as SpeechSum};

fn contract_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/trd-api.md")
}

/// The JSON examples of the contract, in order. The segments example is a fragment
/// (`"segments": [ … ]` with an ellipsis for the further words): it is closed into an object.
fn examples() -> Vec<Value> {
    let text = std::fs::read_to_string(contract_path()).expect("the contract is readable");
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```json") {
        let body = &rest[start + "```json".len()..];
        let end = body.find("```").expect("a closed code block");
        blocks.push(body[..end].trim().to_owned());
        rest = &body[end + 3..];
    }
    blocks
        .into_iter()
        .map(|b| {
            let json = if b.starts_with('"') {
                format!("{{{}}}", b.replace(", … ]", "]"))
            } else {
                b
            };
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("example {json}: {e}"))
        })
        .collect()
}

/// Every key of `example` is in `ours` with an equal value (numbers to 1e-6, as the contract
/// rounds some); with `exact`, objects have no other keys either.
fn assert_matches(example: &Value, ours: &Value, exact: bool, at: &str) {
    match (example, ours) {
        (Value::Object(e), Value::Object(o)) => {
            for (k, v) in e {
                let ours = o
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}.{k} is missing in {ours}"));
                assert_matches(v, ours, exact, &format!("{at}.{k}"));
            }
            if exact {
                let extra: Vec<&String> = o.keys().filter(|k| !e.contains_key(*k)).collect();
                assert!(
                    extra.is_empty(),
                    "{at} has keys the contract lacks: {extra:?}"
                );
            }
        }
        (Value::Array(e), Value::Array(o)) => {
            assert_eq!(e.len(), o.len(), "{at} length");
            for (i, (e, o)) in e.iter().zip(o).enumerate() {
                assert_matches(e, o, exact, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(e), Value::Number(o)) => {
            let (e, o) = (e.as_f64().unwrap(), o.as_f64().unwrap());
            assert!((e - o).abs() <= 1e-6 * e.abs().max(1.0), "{at}: {o} ≠ {e}");
        }
        (e, o) => assert_eq!(e, o, "{at}"),
    }
}

fn example_record() -> AudioFile {
    AudioFile {
        id: ObjectId::parse_str("5b76faed4d27fc0001331dcc").unwrap(),
        batch: Some("folder1".into()),
        filename: "file1.wav".into(),
        format: "wav".into(),
        size: 8_320_044,
        md5: "bee0c78600f52fdf65edc1a742970313".into(),
        // Fri, 08 Mar 2019 18:02:16 GMT and 18:09:40 GMT.
        create_date: DateTime::from_millis(1_552_068_136_000),
        last_update: DateTime::from_millis(1_552_068_580_000),
        control: Control::Finished,
        status: Status::Recognized,
        info: Some(AudioInfo {
            bit_rate: "128000".into(),
            bit_rate_mode: "Constant".into(),
            channels: "1".into(),
            codec: "PCM".into(),
            duration: "00:08:40.000".into(),
            file_size: "8320044".into(),
            format: "Wave".into(),
            input_sampling_rate: "8000".into(),
            output_sampling_rate: "8000".into(),
            redundant_channel: false,
            file_modified_date: "UTC 2019-03-08 18:02:16".into(),
            ..AudioInfo::default()
        }),
        audio_channels: Some(vec![AudioChannel {
            bandwidth: "4000".into(),
            channel: 1,
            duration: 520.0,
        }]),
        error: None,
        total_segments: None,
        total_speech: None,
        options: StartOptions::default(),
        warnings: Vec::new(),
        mtime: None,
        lease: None,
    }
}

#[test]
fn the_record_example_is_a_record_view() {
    let examples = examples();
    let ours = serde_json::to_value(RecordView::from(&example_record())).unwrap();
    assert_matches(&examples[0], &ours, false, "record");
    // Internal state never leaks into the contract's shape.
    for internal in ["options", "lease", "webhooks", "warnings"] {
        assert!(
            ours.get(internal).is_none(),
            "{internal} is not shown: {ours}"
        );
    }
}

#[test]
fn the_file_status_example_is_a_file_status() {
    let examples = examples();
    let status = FileStatus {
        accounted_speech: [("RECOGNIZED", 81.847, 30), ("NO_MATCH", 1.2, 1)]
            .into_iter()
            .map(|(k, seconds, segments)| (k.to_owned(), SpeechTally { seconds, segments }))
            .collect(),
        total_segments: 31,
        total_speech: 83.047,
    };
    let ours = serde_json::to_value(status).unwrap();
    assert_matches(&examples[1], &ours, true, "file status");
}

#[test]
fn the_batch_status_example_is_what_the_figures_make_of_its_sums() {
    let examples = examples();
    let sums = BatchSums {
        groups: vec![FileGroup {
            control: Control::Finished,
            status: Status::Recognized,
            files: 3,
            bytes: 11_115_492,
            audio: 694.71,
            audio_ch: 694.71,
            speech: 542.775,
            segments: 144,
        }],
        recognition: vec![SpeechSum {
            status: SegmentStatus::Recognized,
            seconds: 542.775,
            segments: 144,
        }],
        ..BatchSums::default()
    };
    let batch = BatchName::parse("folder1").unwrap();
    let ours = serde_json::to_value(batch_figures(&batch, &sums, 2)).unwrap();
    assert_matches(&examples[2], &ours, true, "batch status");
}

#[test]
fn the_segment_example_is_a_segment_view() {
    let examples = examples();
    let mut segment = Segment::pending(
        ObjectId::new(),
        1,
        Span {
            start: 0.56,
            end: 7.4,
        },
        "1".into(),
        None,
    );
    segment.score = 97;
    segment.status = SegmentStatus::Recognized;
    segment.text = "boa tarde eu posso falar com a sabrina".into();
    segment.words = vec![Word {
        text: "boa".into(),
        start: 0.56,
        end: 0.81,
        score: 98,
    }];
    let ours = serde_json::json!({"segments": [SegmentView::from(&segment)]});
    assert_matches(&examples[3], &ours, true, "result");
}
