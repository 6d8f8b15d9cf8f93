//! Benchmark of the batch figures and the batch ZIP (not a test: it prints a table).
//!
//! It writes a synthetic batch of `BENCH_FILES` (10 000) records in mixed states, with
//! segments, and a batch of `BENCH_ZIP_FILES` (1 000) finished files, then starts the real
//! `trd-api` binary as a child process and measures, over HTTP:
//! - batch status latency: the first request, then p50/p90/p99/max over `BENCH_REQUESTS` (200)
//!   polls one every `BENCH_INTERVAL_MS` (50 ms), during which the API re-sums the batch in the
//!   background;
//! - the batch ZIP of the finished batch in each format: size, time, and how much the API
//!   process's resident memory grew while streaming it (sampled every 20 ms from /proc).
//!
//! Run it against private services (see `scripts/lib/services.sh`):
//!
//! ```sh
//! cargo build -p trd-api --bin trd-api && \
//! TRD_TEST_MONGODB_URI=mongodb://127.0.0.1:27217 \
//! TRD_TEST_AMQP_URI='amqp://guest:guest@127.0.0.1:5683/%2f' \
//! cargo run -p trd-tests --bin bench_status
//! ```

use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::DateTime;
use trd_core::domain::{Control, SegmentStatus, Status};
use trd_core::Store;
use trd_tests::app::{test_settings, wait_until_answering};
use trd_tests::fixtures::{insert_batch, FileSpec};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A file in one of the states a large batch in progress has, cycling through them.
fn mixed_file(i: usize) -> FileSpec {
    use SegmentStatus::{NoMatch, Processing, Recognized};
    let name = format!("f{i:05}.wav");
    let speech = |n: usize, pending: usize| -> Vec<(f64, f64, SegmentStatus)> {
        (0..n)
            .map(|k| {
                let start = k as f64 * 6.0;
                let status = match k {
                    k if k >= n - pending => Processing,
                    3 => NoMatch,
                    _ => Recognized,
                };
                (start, start + 4.5, status)
            })
            .collect()
    };
    match i % 20 {
        0..=3 => FileSpec::new(&name, Control::Finished, Status::Recognized, 1_920_000)
            .channels(&[60.0])
            .segments(&speech(10, 0)),
        4 => FileSpec::new(&name, Control::Failed, Status::Normalizing, 1_920_000),
        5 | 6 => FileSpec::new(&name, Control::Running, Status::Recognizing, 1_920_000)
            .channels(&[60.0])
            .segments(&speech(10, 4)),
        7 | 8 => FileSpec::new(&name, Control::Running, Status::Diarized, 1_920_000)
            .channels(&[60.0, 60.0])
            .segments(&speech(10, 10)),
        9 | 10 => {
            FileSpec::new(&name, Control::Running, Status::Normalized, 1_920_000).channels(&[60.0])
        }
        11 => FileSpec::new(&name, Control::Running, Status::Normalizing, 1_920_000),
        12..=15 => FileSpec::new(&name, Control::Running, Status::Initial, 1_920_000),
        _ => FileSpec::new(&name, Control::Idle, Status::Initial, 1_920_000),
    }
}

fn finished_file(i: usize) -> FileSpec {
    let segments: Vec<_> = (0..30)
        .map(|k| {
            let start = k as f64 * 10.0;
            (start, start + 8.0, SegmentStatus::Recognized)
        })
        .collect();
    FileSpec::new(
        &format!("call-{i:04}.wav"),
        Control::Finished,
        Status::Recognized,
        9_600_000,
    )
    .channels(&[300.0])
    .segments(&segments)
}

fn rss_kib(pid: u32) -> u64 {
    trd_tests::procfs::memory_kb(pid, "status", "VmRSS").unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Api {
    child: Child,
    base: String,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_api(settings: &trd_core::Settings) -> Api {
    let exe = std::env::current_exe().expect("own path");
    let api = exe.with_file_name("trd-api");
    let child = trd_tests::app::configured_command(&api, settings)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} (cargo build -p trd-api first): {e}",
                api.display()
            )
        });
    let base = format!("http://127.0.0.1:{}", settings.port);
    let http = reqwest::Client::new();
    wait_until_answering(&http, &base, Duration::from_secs(30)).await;
    Api { child, base }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let files = env_number("BENCH_FILES", 10_000);
    let zip_files = env_number("BENCH_ZIP_FILES", 1_000);
    let requests = env_number("BENCH_REQUESTS", 200);
    // Polls spread over 10 s, so the background re-summing of the batch happens meanwhile.
    let interval = Duration::from_millis(env_number("BENCH_INTERVAL_MS", 50) as u64);

    let workdir = tempfile::tempdir().expect("a work directory");
    let settings = test_settings(workdir.path());
    let store = Store::connect(&settings).await.expect("MongoDB");
    let t = Instant::now();
    let mixed: Vec<FileSpec> = (0..files).map(mixed_file).collect();
    insert_batch(&store, "status", &mixed, DateTime::now()).await;
    let finished: Vec<FileSpec> = (0..zip_files).map(finished_file).collect();
    insert_batch(&store, "finished", &finished, DateTime::now()).await;
    println!(
        "inserted {files} + {zip_files} records and their segments in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let api = start_api(&settings).await;
    let http = reqwest::Client::new();
    let status_url = format!("{}/trd/transcription/status/batch/status", api.base);
    let first = Instant::now();
    let body = http
        .get(&status_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first_ms = first.elapsed().as_secs_f64() * 1000.0;
    println!("first batch status ({first_ms:.1} ms): {body}");
    let mut latencies = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let resp = http.get(&status_url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.bytes().await.unwrap();
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(interval.saturating_sub(t.elapsed())).await;
    }
    latencies.sort_by(f64::total_cmp);

    println!();
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| batch status, {files} records: first request (MongoDB sums the batch) | {first_ms:.1} ms |"
    );
    for p in [50.0, 90.0, 99.0] {
        println!(
            "| batch status, {files} records: p{p:.0} of {requests} polls every {interval:?} | {:.1} ms |",
            percentile(&latencies, p)
        );
    }
    println!(
        "| batch status, {files} records: max | {:.1} ms |",
        latencies.last().unwrap()
    );

    let pid = api.child.id();
    for format in ["json", "csv", "json-array"] {
        let url = format!(
            "{}/trd/transcription/result/batch/finished?format={format}",
            api.base
        );
        let before = rss_kib(pid);
        let peak = Arc::new(AtomicU64::new(before));
        let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let sampler = {
            let (peak, sampling) = (peak.clone(), sampling.clone());
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let t = Instant::now();
        let mut resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{url}");
        let mut bytes = 0usize;
        let mut first_byte = None;
        let mut tail = Vec::new();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            first_byte.get_or_insert_with(|| t.elapsed());
            bytes += chunk.len();
            tail.extend_from_slice(&chunk);
            let keep = tail.len().saturating_sub(22);
            tail.drain(..keep);
        }
        let took = t.elapsed();
        sampling.store(false, Ordering::Relaxed);
        sampler.await.unwrap();
        // The end-of-central-directory record closes every complete archive.
        assert_eq!(
            &tail[..4],
            b"PK\x05\x06",
            "{format}: the archive is incomplete"
        );
        let entries = u16::from_le_bytes([tail[10], tail[11]]);
        let growth = peak.load(Ordering::Relaxed).saturating_sub(before) as f64 / 1024.0;
        println!(
            "| batch ZIP `{format}`, {zip_files} finished files: {entries} entries, {:.1} MB | {:.2} s (first byte {:.0} ms), API RSS {:.1} → peak {:.1} MB, growth {growth:.1} MB |",
            bytes as f64 / 1e6,
            took.as_secs_f64(),
            first_byte.unwrap_or_default().as_secs_f64() * 1000.0,
            before as f64 / 1024.0,
            peak.load(Ordering::Relaxed) as f64 / 1024.0,
        );
    }
    drop(api);
    let _ = store.database().drop().await;
}
