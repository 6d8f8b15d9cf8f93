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
//! `TRD_RECOGNITION_RUN_SECONDS` overrides the recognizer's run length.
//!
//! The reference runs on the same model directory as TRD, static graph included (the targets
//! are judged on that), and also on the model as downloaded, with only its lookahead graph:
//! what a user who never compiled the graph would measure.
//!
//! `scripts/bench-recognizer` builds the release binaries, starts private services and runs
//! this; see there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use trd_tests::app::{bin_dir, configured_command, test_settings, worker_command};
use trd_tests::data;

const DIALOGUES: [&str; 3] = ["dlg_104_109", "dlg_104_110", "dlg_108_111_104"];

struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// 16-bit PCM samples and the sample rate of a plain WAV file.
fn read_wav(path: &Path) -> (Vec<u8>, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if &bytes[at..at + 4] == b"data" {
            let end = (at + 8 + len).min(bytes.len());
            return (bytes[at + 8..end].to_vec(), rate);
        }
        at += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display())
}

fn write_wav(path: &Path, pcm: &[u8], rate: u32) {
    let mut out = Vec::with_capacity(44 + pcm.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(pcm);
    std::fs::write(path, out).unwrap();
}

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

fn model_dir() -> PathBuf {
    trd_core::Settings::default()
        .model_dir("ko")
        .expect("the default model is configured")
        .to_path_buf()
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

/// Wall seconds of one `vosk-transcriber` run.
fn reference_run(model: &Path, input: &Path, output: &Path, tasks: usize) -> f64 {
    let started = Instant::now();
    let status = Command::new("vosk-transcriber")
        .arg("-m")
        .arg(model)
        .arg("-i")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(["-t", "txt", "--tasks", &tasks.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("vosk-transcriber (pip install vosk==0.3.45; scripts/lib/provision-test.sh does)");
    let took = started.elapsed().as_secs_f64();
    assert!(status.success(), "vosk-transcriber failed: {status}");
    took
}

struct Trd {
    base: String,
    http: reqwest::Client,
    workdir: PathBuf,
    _processes: Processes,
}

impl Trd {
    async fn start(workdir: &Path) -> Self {
        let mut settings = test_settings(workdir);
        settings.worker_concurrency = 0; // every core
        settings.rescan_interval_ms = 200;
        settings.settle_ms = 200;
        if let Some(seconds) = std::env::var("TRD_RECOGNITION_RUN_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            settings.recognition_run_seconds = seconds;
        }
        // Killed on drop, even when a later step panics.
        let mut processes = Processes(Vec::new());
        processes.0.push(
            configured_command(&bin_dir().join("trd-api"), &settings)
                .spawn()
                .expect("the trd-api binary beside this one"),
        );
        for name in ["trd-normalizer", "trd-diarizer", "trd-recognizer"] {
            processes.0.push(
                worker_command(&settings, name)
                    .spawn()
                    .unwrap_or_else(|e| panic!("{name}: {e}")),
            );
        }
        let trd = Self {
            base: format!("http://127.0.0.1:{}", settings.port),
            http: reqwest::Client::new(),
            workdir: workdir.to_path_buf(),
            _processes: processes,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while trd.list("none").await.is_none() {
            assert!(Instant::now() < deadline, "the API did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        trd
    }

    async fn list(&self, batch: &str) -> Option<Vec<Value>> {
        let url = format!("{}/trd/audiofile/list/batch/{batch}", self.base);
        let body: Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
        body.as_array().cloned()
    }

    /// Places `files` in a new batch and waits until all are registered.
    async fn place(&self, batch: &str, files: &[PathBuf]) {
        let dir = self.workdir.join(batch);
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::copy(f, dir.join(f.file_name().unwrap())).unwrap();
        }
        loop {
            if self
                .list(batch)
                .await
                .is_some_and(|l| l.len() == files.len())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Seconds from the start request until every file of the batch is FINISHED.
    async fn run(&self, batch: &str, query: &str) -> f64 {
        let started = Instant::now();
        let url = format!("{}/trd/transcription/start/batch/{batch}{query}", self.base);
        let resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "start {batch}");
        loop {
            let files = self.list(batch).await.unwrap_or_default();
            if !files.is_empty() && files.iter().all(|f| f["control"] == "FINISHED") {
                return started.elapsed().as_secs_f64();
            }
            if let Some(failed) = files.iter().find(|f| f["control"] == "FAILED") {
                panic!("a file failed: {failed}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// CPU seconds used so far by every process on the machine, summed by command name: where a
/// workload's time goes (recognizer, normalizer, diarizer, API, MongoDB, RabbitMQ…).
fn cpu_seconds_by_command() -> BTreeMap<String, f64> {
    // Linux reports these in clock ticks, 100 per second on every common configuration.
    const TICKS_PER_SECOND: f64 = 100.0;
    let mut totals = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return totals;
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: the command may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let command = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are the 14th and 15th fields of the whole line.
        *totals.entry(command).or_insert(0.0) += (ticks(11) + ticks(12)) / TICKS_PER_SECOND;
    }
    totals
}

/// The processes that used at least half a CPU second between two snapshots, busiest first.
fn cpu_profile(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> String {
    let mut used: Vec<(&String, f64)> = after
        .iter()
        .map(|(command, seconds)| (command, seconds - before.get(command).unwrap_or(&0.0)))
        .filter(|(_, seconds)| *seconds >= 0.5)
        .collect();
    used.sort_by(|a, b| b.1.total_cmp(&a.1));
    used.iter()
        .map(|(command, seconds)| format!("{command} {seconds:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
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

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn spread(values: &[f64]) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{low:.2}–{high:.2}")
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
    let trd = Trd::start(&workdir).await;
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
