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
//! once with `diarization=none` and once with diarization on.
//!
//! `scripts/bench-recognizer` builds the release binaries, starts private services and runs
//! this; see there.

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

/// Wall seconds of one `vosk-transcriber` run.
fn reference_run(input: &Path, output: &Path, tasks: usize) -> f64 {
    let started = Instant::now();
    let status = Command::new("vosk-transcriber")
        .arg("-m")
        .arg(model_dir())
        .arg("-i")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(["-t", "txt", "--tasks", &tasks.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("vosk-transcriber (pip install vosk==0.3.45; scripts/lib/provision.sh does)");
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
                                         // Killed on drop, even when a later step panics.
        let mut processes = Processes(Vec::new());
        processes.0.push(
            configured_command(&bin_dir().join("trd-api"), &settings)
                .env("TRD_PORT", settings.port.to_string())
                .env("TRD_RESCAN_INTERVAL_MS", "200")
                .env("TRD_SETTLE_MS", "200")
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
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scratch = tempfile::tempdir().unwrap();
    let (batch, long, batch_seconds, long_seconds) = prepare_inputs(scratch.path());
    println!(
        "batch: {} files, {batch_seconds:.0} s of audio; long: {long_seconds:.0} s; {cores} cores",
        batch.len()
    );

    let out = scratch.path().join("reference");
    std::fs::create_dir_all(&out).unwrap();
    let reference_batch = reference_run(batch[0].parent().unwrap(), &out, cores);
    println!("vosk-transcriber --tasks {cores}, batch: {reference_batch:.1} s");
    let reference_long = reference_run(&long, &out.join("long.txt"), 1);
    println!("vosk-transcriber, long file: {reference_long:.1} s");

    let workdir = scratch.path().join("workdir");
    std::fs::create_dir_all(&workdir).unwrap();
    let trd = Trd::start(&workdir).await;
    // Models load lazily, once per process: a first file loads them outside the measurement.
    trd.place("warmup", &batch[3..4]).await;
    let warmup = trd.run("warmup", "").await;
    println!("warm-up (loads the models): {warmup:.1} s");

    let mut rows = Vec::new();
    for (workload, files, reference) in [
        ("batch", batch.clone(), reference_batch),
        ("long", vec![long.clone()], reference_long),
    ] {
        for (label, query) in [("none", "?diarization=none"), ("on", "")] {
            let name = format!("{workload}-{label}");
            trd.place(&name, &files).await;
            let took = trd.run(&name, query).await;
            println!("TRD {workload}, diarization {label}: {took:.1} s");
            rows.push((workload, label, reference, took));
        }
    }

    println!();
    println!("| workload | diarization | vosk-transcriber s | TRD s | ratio | target |");
    println!("|---|---|---|---|---|---|");
    for (workload, label, reference, took) in rows {
        let target = match (workload, label) {
            ("batch", "none") => 0.9,
            ("batch", _) => 1.0,
            (_, "none") => 0.55,
            _ => 0.65,
        };
        let ratio = took / reference;
        println!(
            "| {workload} | {label} | {reference:.1} | {took:.1} | {ratio:.2} | ≤ {target:.2} {} |",
            if ratio <= target { "met" } else { "missed" }
        );
    }
}
