//! Benchmark of recognize-now (one HTTP request that waits for its transcript) against the
//! reference tool a user would otherwise run for one file, `vosk-transcriber` (same model,
//! same machine, one after the other in this one program). Not a test: it prints a table.
//!
//! - latency: one 10 s clip end to end, 20 times one after the other. The reference is a
//!   `vosk-transcriber` process per request (process start and model load included: that is
//!   what running it per file costs); TRD is `POST /v1/audio/transcriptions` through the
//!   OpenAI face, with its models loaded (a warm-up request goes first).
//! - throughput: 20 such requests at once while a batch (the three dialogues, diarization on)
//!   runs; beside it, the reference transcribing the same 20 clips with `--tasks <cores>`,
//!   its fastest way through many files. The batch's progress meanwhile is reported too.
//!
//! `scripts/bench-recognize-now` builds the release binaries, starts private services and
//! runs this.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trd_tests::bench::{median, model_dir, read_wav, reference_run, write_wav, Trd};
use trd_tests::data;

const REQUESTS: usize = 20;
const CLIP_SECONDS: f64 = 10.0;

/// The first ten seconds of a dialogue: real speech, two speakers.
fn ten_second_clip(dir: &Path) -> PathBuf {
    let (pcm, rate) = read_wav(&data::path("dialogues/dlg_104_109.wav"));
    let bytes = (CLIP_SECONDS * rate as f64) as usize * 2;
    let path = dir.join("clip10.wav");
    write_wav(&path, &pcm[..bytes.min(pcm.len())], rate);
    path
}

/// The `q`-quantile of `values` (nearest rank).
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One request through the OpenAI face; its seconds, end to end (the whole body read).
async fn request(trd: &Trd, clip: &Path) -> Result<f64, String> {
    let started = Instant::now();
    let form = reqwest::multipart::Form::new()
        .text("model", "whisper-1")
        .part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(clip).unwrap()).file_name("clip10.wav"),
        );
    let response = trd
        .http
        .post(format!("{}/v1/audio/transcriptions", trd.base))
        .multipart(form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    Ok(started.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scratch = tempfile::tempdir().unwrap();
    let clip = ten_second_clip(scratch.path());
    let model = model_dir();
    let out = scratch.path().join("reference");
    std::fs::create_dir_all(&out).unwrap();
    println!("clip: {CLIP_SECONDS:.0} s of speech; {REQUESTS} requests; {cores} cores");

    // Latency, the reference: a process per request.
    let reference: Vec<f64> = (0..REQUESTS)
        .map(|_| reference_run(&model, &clip, &out.join("clip.txt"), 1))
        .collect();
    println!(
        "vosk-transcriber per request: p50 {:.2} s, p95 {:.2} s",
        quantile(&reference, 0.5),
        quantile(&reference, 0.95)
    );

    // Latency, TRD: every request admitted (the bound is not what is measured here).
    let workdir = scratch.path().join("workdir");
    std::fs::create_dir_all(&workdir).unwrap();
    let trd = Trd::start(&workdir, |s| {
        s.worker_concurrency = 0;
        s.interactive_in_flight = 2 * REQUESTS;
    })
    .await;
    let warmup = request(&trd, &clip).await.expect("the warm-up request");
    println!("TRD warm-up request (loads the models): {warmup:.2} s");
    let mut sequential = Vec::new();
    for _ in 0..REQUESTS {
        sequential.push(request(&trd, &clip).await.expect("a request"));
    }
    println!(
        "TRD per request: p50 {:.2} s, p95 {:.2} s",
        quantile(&sequential, 0.5),
        quantile(&sequential, 0.95)
    );

    // Throughput, the reference: the same clips as one folder, every core.
    let folder = scratch.path().join("clips");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..REQUESTS {
        std::fs::copy(&clip, folder.join(format!("clip{i:02}.wav"))).unwrap();
    }
    let reference_all = reference_run(&model, &folder, &out, cores);
    println!("vosk-transcriber --tasks {cores}, {REQUESTS} clips: {reference_all:.1} s");

    // Throughput, TRD: all at once while a batch runs.
    let dialogues: Vec<PathBuf> = ["dlg_104_109", "dlg_104_110", "dlg_108_111_104"]
        .iter()
        .map(|d| data::path("dialogues").join(format!("{d}.wav")))
        .collect();
    trd.place("busy", &dialogues).await;
    trd.start_batch("busy", "").await;
    let started = Instant::now();
    let answers = futures::future::join_all((0..REQUESTS).map(|_| request(&trd, &clip))).await;
    let concurrent_wall = started.elapsed().as_secs_f64();
    let failed: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(failed.is_empty(), "requests failed: {failed:?}");
    let under_load: Vec<f64> = answers.into_iter().map(Result::unwrap).collect();
    let batch_done_meanwhile = trd.finished_count("busy").await;
    let batch_started = Instant::now();
    while trd.finished("busy").await != Some(true) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let batch_rest = batch_started.elapsed().as_secs_f64();
    println!(
        "TRD, {REQUESTS} at once during a batch: all answered in {concurrent_wall:.1} s (p50 {:.2} s, p95 {:.2} s each); the batch had {batch_done_meanwhile}/3 files done by then and finished {batch_rest:.1} s later",
        quantile(&under_load, 0.5),
        quantile(&under_load, 0.95)
    );

    println!();
    println!("| measure | vosk-transcriber | TRD | TRD / reference |");
    println!("|---|---|---|---|");
    let p50 = (quantile(&reference, 0.5), quantile(&sequential, 0.5));
    let p95 = (quantile(&reference, 0.95), quantile(&sequential, 0.95));
    println!(
        "| latency p50, one 10 s clip (s) | {:.2} | {:.2} | {:.2} |",
        p50.0,
        p50.1,
        p50.1 / p50.0
    );
    println!(
        "| latency p95, one 10 s clip (s) | {:.2} | {:.2} | {:.2} |",
        p95.0,
        p95.1,
        p95.1 / p95.0
    );
    println!(
        "| {REQUESTS} clips at once, wall (s) | {reference_all:.1} (idle machine) | {concurrent_wall:.1} (a batch running) | {:.2} |",
        concurrent_wall / reference_all
    );
    println!(
        "| throughput (audio s per wall s) | {:.1} | {:.1} | {:.2} |",
        REQUESTS as f64 * CLIP_SECONDS / reference_all,
        REQUESTS as f64 * CLIP_SECONDS / concurrent_wall,
        reference_all / concurrent_wall
    );
    println!(
        "| median latency, sequential vs during the batch (s) | – | {:.2} → {:.2} | – |",
        median(&sequential),
        median(&under_load)
    );
}
