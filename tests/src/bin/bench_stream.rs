//! Benchmark of live streams against the Vosk project's reference WebSocket server
//! (`../shared/peers/vosk-server/asr_server.py`, PyPI's `vosk` and `websockets`, on the same
//! model directory), in one run on one machine. Not a test: it prints a table.
//!
//! For a rising number of concurrent real-time streams (vosk-server's protocol, 200 ms
//! frames, each stream cycling through the shared Korean clips for `STREAM_SECONDS` of audio),
//! `tests/scripts/stream_bench.py` measures against each server in turn:
//! - final latency: a final result's arrival after the frame in which the server ended the
//!   utterance was sent (the server's delay; the engine's wait for trailing silence before it
//!   ends an utterance is the same for both and not in it);
//! - after speech: a final result's arrival after the frame holding its last word was sent
//!   (the final latency plus that wait);
//! - partial latency: a frame's answer after the frame was sent.
//!
//! A server sustains N streams when every session completed and the final latency p95 stayed
//! under 1 s. `scripts/bench-streaming` builds the release binaries, starts private services
//! and runs this.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;
use trd_tests::bench::{model_dir, Trd};
use trd_tests::data;
use trd_tests::tools::tool;

/// Audio each stream sends per level.
const STREAM_SECONDS: &str = "20";
/// Concurrent streams tried, in order, until both servers miss.
const LEVELS: [usize; 8] = [1, 4, 8, 12, 16, 20, 24, 32];
const TARGET_P95: f64 = 1.0;

/// The reference server, killed on drop.
struct Reference(Child);

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_reference(port: u16) -> Reference {
    let script = data::path("../peers/vosk-server/asr_server.py");
    let child = Command::new(tool("python"))
        .arg(&script)
        .env("VOSK_MODEL_PATH", model_dir())
        .env("VOSK_SERVER_INTERFACE", "127.0.0.1")
        .env("VOSK_SERVER_PORT", port.to_string())
        .env("VOSK_SAMPLE_RATE", "16000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the reference server did not come up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Reference(child)
}

fn clips() -> Vec<PathBuf> {
    let dir = data::path("ko/zeroth-104");
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    clips.sort();
    clips
}

/// One level against one server: `stream_bench.py`'s figures.
fn measure(url: &str, clips: &[PathBuf], streams: usize) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/stream_bench.py");
    let out = Command::new(tool("python"))
        .arg(&script)
        .arg(url)
        .args(clips)
        .args([
            "--streams",
            &streams.to_string(),
            "--duration",
            STREAM_SECONDS,
        ])
        .output()
        .expect("stream_bench.py runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)))
}

fn figure(v: &Value, latency: &str, q: &str) -> f64 {
    v[latency][q].as_f64().unwrap_or(f64::NAN)
}

fn sustained(v: &Value, streams: usize) -> bool {
    v["sessions_ok"].as_u64() == Some(streams as u64)
        && figure(v, "final_latency", "p95") < TARGET_P95
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scratch = tempfile::tempdir().unwrap();
    let workdir = scratch.path().join("workdir");
    std::fs::create_dir_all(&workdir).unwrap();
    let clips = clips();
    println!(
        "{} clips; each stream sends {STREAM_SECONDS} s of audio in real time; {cores} cores",
        clips.len()
    );
    let peer_port = free_port();
    let _reference = start_reference(peer_port);
    let peer = format!("ws://127.0.0.1:{peer_port}");
    let trd = Trd::start(&workdir, |s| {
        s.stream_slots = 64;
        s.stream_accept_ms = 10_000;
    })
    .await;
    let ours = format!("ws://127.0.0.1:{}/asr/ws", trd.settings.port);
    // Warm-up: the first session of each loads what it loads lazily.
    measure(&peer, &clips[..1], 1);
    measure(&ours, &clips[..1], 1);

    let mut rows = Vec::new();
    let (mut peer_best, mut trd_best) = (0, 0);
    for streams in LEVELS {
        // Alternate which server goes first, so neither always runs on a warmer machine.
        let (p, t) = if rows.len() % 2 == 0 {
            let p = measure(&peer, &clips, streams);
            (p, measure(&ours, &clips, streams))
        } else {
            let t = measure(&ours, &clips, streams);
            (measure(&peer, &clips, streams), t)
        };
        let (p_ok, t_ok) = (sustained(&p, streams), sustained(&t, streams));
        if p_ok {
            peer_best = streams;
        }
        if t_ok {
            trd_best = streams;
        }
        println!(
            "{streams:>2} streams: vosk-server final p95 {:.3} s ({} ok), TRD final p95 {:.3} s ({} ok)",
            figure(&p, "final_latency", "p95"),
            p["sessions_ok"],
            figure(&t, "final_latency", "p95"),
            t["sessions_ok"]
        );
        rows.push((streams, p, t));
        if !p_ok && !t_ok {
            break;
        }
    }

    println!();
    println!("| streams | vosk-server final p50 / p95 (s) | TRD final p50 / p95 (s) | vosk-server after speech p50 / p95 (s) | TRD after speech p50 / p95 (s) | vosk-server partial p50 / p95 (s) | TRD partial p50 / p95 (s) | sessions ok (vosk-server / TRD) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (streams, p, t) in &rows {
        println!(
            "| {streams} | {:.3} / {:.3} | {:.3} / {:.3} | {:.2} / {:.2} | {:.2} / {:.2} | {:.3} / {:.3} | {:.3} / {:.3} | {} / {} |",
            figure(p, "final_latency", "p50"),
            figure(p, "final_latency", "p95"),
            figure(t, "final_latency", "p50"),
            figure(t, "final_latency", "p95"),
            figure(p, "after_speech", "p50"),
            figure(p, "after_speech", "p95"),
            figure(t, "after_speech", "p50"),
            figure(t, "after_speech", "p95"),
            figure(p, "partial_latency", "p50"),
            figure(p, "partial_latency", "p95"),
            figure(t, "partial_latency", "p50"),
            figure(t, "partial_latency", "p95"),
            p["sessions_ok"],
            t["sessions_ok"],
        );
    }
    println!();
    println!(
        "| streams sustained with final p95 < {TARGET_P95} s | vosk-server {peer_best} | TRD {trd_best} |"
    );
}
