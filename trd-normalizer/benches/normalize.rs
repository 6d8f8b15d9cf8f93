//! Normalizer memory and speed on a long call-centre recording.
//!
//! Run: `cargo bench -p trd-normalizer --bench normalize` (needs ffmpeg, installed by
//! scripts/lib/provision.sh, and ../shared/data). Builds 2-hour stereo WAVs from the shared
//! stereo dialogues (16 kHz PCM, and the 8 kHz µ-law twin), normalizes each on one core with a
//! sink that only counts samples, and prints the speed and peak RSS (high-water mark so far).
//! Targets: peak RSS < 200 MB, at least 100x real time on one core.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn data() -> PathBuf {
    std::env::var_os("TRD_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of this process from /proc (100 clock ticks per second on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

fn make_long_file(dir: &Path, name: &str, source: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-stream_loop", "-1", "-i"])
        .arg(data().join("dialogues").join(source))
        .args(["-t", "7200"])
        .args(extra)
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    out
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "2 h 16 kHz stereo PCM",
            make_long_file(dir.path(), "long16k.wav", "dlg_104_109_stereo.wav", &[]),
        ),
        (
            "2 h 8 kHz stereo µ-law",
            make_long_file(
                dir.path(),
                "long8k.wav",
                "dlg_104_109_stereo_8k_ulaw.wav",
                &["-c:a", "pcm_mulaw"],
            ),
        ),
    ];
    println!("| input | audio s | wall s | CPU s | x real time (CPU) | peak RSS MB |");
    println!("|---|---|---|---|---|---|");
    for (label, path) in cases {
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let mut samples = 0u64;
        let report = trd_normalizer::normalize_file(&path, 16_000, |block| {
            samples += block[0].len() as u64;
            Ok(())
        })
        .expect("normalizes");
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let audio = samples as f64 / 16_000.0;
        println!(
            "| {label} | {audio:.0} | {wall:.1} | {cpu:.1} | {:.0} | {:.0} |",
            audio / cpu.max(1e-9),
            status_kb("VmHWM:") as f64 / 1024.0
        );
        assert_eq!(report.channels.len(), 2);
    }
}
