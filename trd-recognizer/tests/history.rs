//! A recognizer's result for a stretch of speech must not depend on what it heard before.
//! Runs are redone after a crash or a redelivery, and their results must still match byte for
//! byte.
//!
//! The default model decodes through the static graph that `scripts/lib/compile-graph.sh`
//! compiles. With the model's lazily composed lookahead graph instead, the 25th piece below
//! came out with different words when the recognizer had heard the 24 before it.

use std::path::PathBuf;
use std::time::Duration;

use trd_core::store::SegmentOutcome;
use trd_recognizer::hints::Hints;
use trd_recognizer::models::{self, LoadedModel};
use trd_recognizer::recognize::recognize_in_run;

const RATE: u32 = 16_000;
const PIECE_SECONDS: usize = 4;

fn data() -> PathBuf {
    std::env::var_os("TRD_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// The three dialogues cut into 4-second pieces, as 16 kHz mono PCM.
fn pieces() -> Vec<Vec<i16>> {
    let mut pieces = Vec::new();
    for dialogue in ["dlg_104_109", "dlg_104_110", "dlg_108_111_104"] {
        let path = data().join("dialogues").join(format!("{dialogue}.wav"));
        let mut pcm = Vec::new();
        trd_normalizer::normalize_file(&path, RATE, |block| {
            pcm.extend_from_slice(&block[0]);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        pieces.extend(
            pcm.chunks(RATE as usize * PIECE_SECONDS)
                .map(<[i16]>::to_vec),
        );
    }
    pieces
}

/// Everything a stored segment shows; times to the millisecond, as stored.
fn shown(outcome: &SegmentOutcome) -> String {
    let words: Vec<String> = outcome
        .words
        .iter()
        .map(|w| format!("{}@{:.3}-{:.3}:{}", w.text, w.start, w.end, w.score))
        .collect();
    format!(
        "{:?} {:?} score {} [{}]",
        outcome.status,
        outcome.text,
        outcome.score,
        words.join(" ")
    )
}

/// Each piece heard in `order` by one recognizer; results by piece.
fn heard_in_order(model: &LoadedModel, pieces: &[Vec<i16>], order: &[usize]) -> Vec<String> {
    let mut results = vec![String::new(); pieces.len()];
    let mut recognizer = None;
    for &i in order {
        let (kept, outcome) = recognize_in_run(
            recognizer,
            model,
            RATE,
            &pieces[i],
            0.0,
            Duration::from_secs(60),
            &Hints::default(),
        );
        assert!(kept.is_some(), "piece {i}: {}", shown(&outcome));
        recognizer = kept;
        results[i] = shown(&outcome);
    }
    results
}

#[test]
fn what_a_recognizer_heard_before_does_not_change_its_results() {
    let dir = trd_core::Settings::default()
        .model_dir("ko")
        .expect("the default model is configured")
        .to_path_buf();
    let model = models::load("ko", &dir).expect("the default model loads");
    let pieces = pieces();
    assert!(pieces.len() >= 50, "{} pieces", pieces.len());

    let alone: Vec<String> = (0..pieces.len())
        .map(|i| heard_in_order(&model, &pieces, &[i]).swap_remove(i))
        .collect();
    let words: usize = alone.iter().map(|r| r.matches('@').count()).sum();
    assert!(
        words > 300,
        "the dialogues should give hundreds of words, got {words}"
    );

    let forwards: Vec<usize> = (0..pieces.len()).collect();
    let backwards: Vec<usize> = forwards.iter().rev().copied().collect();
    for (name, order) in [("in order", forwards), ("backwards", backwards)] {
        let heard = heard_in_order(&model, &pieces, &order);
        let differ: Vec<String> = (0..pieces.len())
            .filter(|&i| heard[i] != alone[i])
            .map(|i| format!("piece {i}:\n  alone: {}\n  {name}: {}", alone[i], heard[i]))
            .collect();
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    }
}
