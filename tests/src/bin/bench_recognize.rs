//! Benchmark of the whole pipeline against the reference tool a user would otherwise run,
//! `vosk-transcriber` (from the same `vosk` wheel, same model, same machine), measured one
//! after the other in this one program. Not a test: it prints a table.
//!
//! Workloads:
//! - batch: the three dialogues and the ten `ko/zeroth-104` clips (about 300 s of audio);
//!   the reference runs `vosk-transcriber --tasks <cores>` over the folder;
//! - long: the three dialogues concatenated three times (about 610 s) as one file; the
//!   reference can only use one core for it.
//!
//! TRD's time is start request → every file FINISHED, with the real `trd-api` and worker
//! binaries as processes and the models already loaded (a warm-up file goes through first),
//! once with `diarization=none` and once with diarization on. Each round measures the
//! reference and then TRD (`TRD_BENCH_ROUNDS`, default 3); the table gives medians, and each
//! TRD run prints the CPU seconds every busy process used meanwhile (where the time goes).
//! `TRD_RECOGNITION_RUN_SECONDS` overrides the recognizer's run length and
//! `TRD_RECOGNIZER_FRAMES_PER_CHUNK` its `recognizer_frames_per_chunk`.
//!
//! The reference runs on the same model directory as TRD, static graph included (the targets
//! are judged on that), and also on the model as downloaded, with only its lookahead graph:
//! what a user who never compiled the graph would measure.
//!
//! `scripts/bench-recognizer` builds the release binaries, starts private services and runs
//! this; see there.

use std::path::{Path, PathBuf};

use trd_tests::bench::{
    cpu_profile, cpu_seconds_by_command, median, model_dir, read_wav, reference_run, spread,
    write_wav, Trd,
};
use trd_tests::data;

const DIALOGUES: [&str; 3] = ["dlg_104_109", "dlg_104_110", "dlg_108_111_104"];

/// The batch's files and the long file, in `dir`; returns (batch files, long file, seconds of
/// audio in each).
fn prepare_inputs(dir: &Path) -> (Vec<PathBuf>, PathBuf, f64, f64) {
    let mut batch: Vec<PathBuf> = DIALOGUES
        .iter()
        .map(|d| data::path("dialogues").join(format!("{d}.wav")))
        .collect();
    let clips = data::path("ko/zeroth-104");
    let mut names: Vec<String> = data::references("ko/zeroth-104").into_keys().collect();
    names.sort();
    batch.extend(names.iter().map(|n| clips.join(n)));
    let batch_dir = dir.join("batch");
    std::fs::create_dir_all(&batch_dir).unwrap();
    let mut batch_seconds = 0.0;
    let copies: Vec<PathBuf> = batch
        .iter()
        .map(|src| {
            let (pcm, rate) = read_wav(src);
            batch_seconds += pcm.len() as f64 / 2.0 / rate as f64;
            let to = batch_dir.join(src.file_name().unwrap());
            std::fs::copy(src, &to).unwrap();
            to
        })
        .collect();

    let mut long = Vec::new();
    let mut rate = 16_000;
    for _ in 0..3 {
        for d in DIALOGUES {
            let (pcm, r) = read_wav(&data::path("dialogues").join(format!("{d}.wav")));
            rate = r;
            long.extend_from_slice(&pcm);
        }
    }
    let long_dir = dir.join("long");
    std::fs::create_dir_all(&long_dir).unwrap();
    let long_path = long_dir.join("dialogues_x3.wav");
    write_wav(&long_path, &long, rate);
    let long_seconds = long.len() as f64 / 2.0 / rate as f64;
    (copies, long_path, batch_seconds, long_seconds)
}

/// The default model as downloaded: its lookahead graph only, without the static graph that
/// `scripts/lib/compile-graph.sh` adds, as symbolic links in `scratch`. `None` when the model
/// has only one graph.
fn downloaded_model(model: &Path, scratch: &Path) -> Option<PathBuf> {
    let graph = model.join("graph");
    if !(graph.join("HCLG.fst").exists() && graph.join("HCLr.fst").exists()) {
        return None;
    }
    let copy = scratch.join("downloaded-model");
    std::fs::create_dir_all(copy.join("graph")).unwrap();
    let link_all_but = |from: &Path, to: &Path, skip: &[&str]| {
        for entry in std::fs::read_dir(from).unwrap() {
            let name = entry.unwrap().file_name();
            if !skip.iter().any(|s| name == *s) {
                std::os::unix::fs::symlink(from.join(&name), to.join(&name)).unwrap();
            }
        }
    };
    link_all_but(model, &copy, &["graph"]);
    link_all_but(&graph, &copy.join("graph"), &["HCLG.fst", "words.txt"]);
    Some(copy)
}

/// One measured workload: TRD's and the reference's wall seconds in each round.
struct Row {
    workload: &'static str,
    diarization: &'static str,
    target: f64,
    reference: Vec<f64>,
    /// The reference on the model as downloaded (see [`downloaded_model`]).
    reference_downloaded: Vec<f64>,
    trd: Vec<f64>,
}

impl Row {
    /// Each round's ratio, TRD over the reference measured just before it: the machine's
    /// speed drifts between rounds, and a ratio of neighbours cancels most of the drift.
    fn ratios(&self) -> Vec<f64> {
        self.ratios_to(&self.reference)
    }

    fn ratios_to(&self, reference: &[f64]) -> Vec<f64> {
        self.trd.iter().zip(reference).map(|(t, r)| t / r).collect()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rounds: usize = std::env::var("TRD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let scratch = tempfile::tempdir().unwrap();
    let (batch, long, batch_seconds, long_seconds) = prepare_inputs(scratch.path());
    println!(
        "batch: {} files, {batch_seconds:.0} s of audio; long: {long_seconds:.0} s; {cores} cores; {rounds} rounds",
        batch.len()
    );

    let workdir = scratch.path().join("workdir");
    std::fs::create_dir_all(&workdir).unwrap();
    let trd = Trd::start(&workdir, |_| {}).await;
    // Models load lazily, once per process: a first file loads them outside the measurement.
    trd.place("warmup", &batch[3..4]).await;
    let warmup = trd.run("warmup", "").await;
    println!("warm-up (loads the models): {warmup:.1} s");

    let mut rows: Vec<Row> = [
        ("batch", "none", 0.9),
        ("batch", "on", 1.0),
        ("long", "none", 0.55),
        ("long", "on", 0.65),
    ]
    .into_iter()
    .map(|(workload, diarization, target)| Row {
        workload,
        diarization,
        target,
        reference: Vec::new(),
        reference_downloaded: Vec::new(),
        trd: Vec::new(),
    })
    .collect();
    let out = scratch.path().join("reference");
    std::fs::create_dir_all(&out).unwrap();
    let model = model_dir();
    let downloaded = downloaded_model(&model, scratch.path());
    let batch_dir = batch[0].parent().unwrap();
    for round in 1..=rounds {
        let reference_batch = reference_run(&model, batch_dir, &out, cores);
        println!("round {round}: vosk-transcriber --tasks {cores}, batch: {reference_batch:.1} s");
        let reference_long = reference_run(&model, &long, &out.join("long.txt"), 1);
        println!("round {round}: vosk-transcriber, long file: {reference_long:.1} s");
        let (downloaded_batch, downloaded_long) = match &downloaded {
            Some(m) => {
                let b = reference_run(m, batch_dir, &out, cores);
                let l = reference_run(m, &long, &out.join("long.txt"), 1);
                println!("round {round}: vosk-transcriber on the model as downloaded: batch {b:.1} s, long file {l:.1} s");
                (b, l)
            }
            None => (reference_batch, reference_long),
        };
        for row in &mut rows {
            let (files, reference, reference_downloaded) = match row.workload {
                "batch" => (batch.clone(), reference_batch, downloaded_batch),
                _ => (vec![long.clone()], reference_long, downloaded_long),
            };
            let query = match row.diarization {
                "none" => "?diarization=none",
                _ => "",
            };
            let name = format!("{}-{}-{round}", row.workload, row.diarization);
            trd.place(&name, &files).await;
            let before = cpu_seconds_by_command();
            let took = trd.run(&name, query).await;
            let profile = cpu_profile(&before, &cpu_seconds_by_command());
            println!(
                "round {round}: TRD {}, diarization {}: {took:.1} s; CPU s: {profile}",
                row.workload, row.diarization
            );
            row.reference.push(reference);
            row.reference_downloaded.push(reference_downloaded);
            row.trd.push(took);
        }
    }

    println!();
    println!("Medians over {rounds} rounds (ratio: median of each round's TRD / reference; range in brackets)");
    println!();
    println!("Both run on the same model directory. The last column divides TRD's time by the");
    if downloaded.is_some() {
        println!("reference's on the model as downloaded, without the compiled static graph.");
    } else {
        println!("reference's on the model as downloaded: here the same, as it has one graph.");
    }
    println!();
    println!("| workload | diarization | vosk-transcriber s | TRD s | ratio | target | vs as downloaded |");
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        let ratio = median(&row.ratios());
        let downloaded = row.ratios_to(&row.reference_downloaded);
        println!(
            "| {} | {} | {:.1} | {:.1} | {ratio:.2} ({}) | ≤ {:.2} {} | {:.2} ({:.1} s) |",
            row.workload,
            row.diarization,
            median(&row.reference),
            median(&row.trd),
            spread(&row.ratios()),
            row.target,
            if ratio <= row.target { "met" } else { "missed" },
            median(&downloaded),
            median(&row.reference_downloaded),
        );
    }
}
