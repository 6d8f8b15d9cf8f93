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

/// Every piece heard alone, then all of them in order and backwards by one recognizer each:
/// the results heard alone, which must match the others byte for byte.
fn results_do_not_depend_on_history(model: &LoadedModel, pieces: &[Vec<i16>]) -> Vec<String> {
    let alone: Vec<String> = (0..pieces.len())
        .map(|i| heard_in_order(model, pieces, &[i]).swap_remove(i))
        .collect();
    let words: usize = alone.iter().map(|r| r.matches('@').count()).sum();
    assert!(
        words > 300,
        "the dialogues should give hundreds of words, got {words}"
    );

    let forwards: Vec<usize> = (0..pieces.len()).collect();
    let backwards: Vec<usize> = forwards.iter().rev().copied().collect();
    for (name, order) in [("in order", forwards), ("backwards", backwards)] {
        let heard = heard_in_order(model, pieces, &order);
        let differ: Vec<String> = (0..pieces.len())
            .filter(|&i| heard[i] != alone[i])
            .map(|i| format!("piece {i}:\n  alone: {}\n  {name}: {}", alone[i], heard[i]))
            .collect();
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    }
    alone
}

fn default_model_dir() -> PathBuf {
    trd_core::Settings::default()
        .model_dir("ko")
        .expect("the default model is configured")
        .to_path_buf()
}

#[test]
fn what_a_recognizer_heard_before_does_not_change_its_results() {
    let decoding = models::Decoding::of(&trd_core::Settings::default());
    let model =
        models::load("ko", &default_model_dir(), decoding).expect("the default model loads");
    let pieces = pieces();
    assert!(pieces.len() >= 50, "{} pieces", pieces.len());
    results_do_not_depend_on_history(&model, &pieces);
}

/// `recognizer_frames_per_chunk` laid over the model's configuration: the model loads through
/// the directory of links, its results still do not depend on what it heard before, and the
/// option does take effect: the speaker adaptation moves per chunk, so words, times and scores
/// come out differently than with the model's own 20 frames (the text of 22 of these 53
/// pieces, cut in the middle of words, when this was written).
#[test]
fn larger_chunks_are_laid_over_the_model_and_keep_results_independent_of_history() {
    let dir = default_model_dir();
    let pieces = pieces();
    let own = models::load(
        "ko",
        &dir,
        models::Decoding {
            frames_per_chunk: 0,
        },
    )
    .expect("the default model loads");
    let own_results: Vec<String> = (0..pieces.len())
        .map(|i| heard_in_order(&own, &pieces, &[i]).swap_remove(i))
        .collect();
    let larger = models::load(
        "ko",
        &dir,
        models::Decoding {
            frames_per_chunk: 51,
        },
    )
    .expect("the default model loads with larger chunks");
    let larger_results = results_do_not_depend_on_history(&larger, &pieces);
    let differing = (0..pieces.len())
        .filter(|&i| own_results[i] != larger_results[i])
        .count();
    assert!(
        differing > 0,
        "51 frames per chunk heard all {} pieces exactly as 20 did: the option was not applied",
        pieces.len()
    );
}
