//! What the benchmarks share (`src/bin/bench_*.rs`): TRD's real binaries as processes on a
//! test's settings, the reference tool `vosk-transcriber`, WAV files cut to measure, CPU
//! profiles and medians.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use trd_core::Settings;

use crate::app::{bin_dir, configured_command, test_settings, worker_command};

/// Child processes, killed when dropped (even when a later step panics).
pub struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// 16-bit PCM samples and the sample rate of a plain WAV file.
pub fn read_wav(path: &Path) -> (Vec<u8>, u32) {
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

/// A mono 16-bit PCM WAV file.
pub fn write_wav(path: &Path, pcm: &[u8], rate: u32) {
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

/// The default model's directory.
pub fn model_dir() -> PathBuf {
    trd_core::Settings::default()
        .model_dir("ko")
        .expect("the default model is configured")
        .to_path_buf()
}

/// Wall seconds of one `vosk-transcriber` run.
pub fn reference_run(model: &Path, input: &Path, output: &Path, tasks: usize) -> f64 {
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

/// TRD as a user runs it: the API and one process of each worker, on `settings`.
pub struct Trd {
    pub settings: Settings,
    pub base: String,
    pub http: reqwest::Client,
    workdir: PathBuf,
    _processes: Processes,
}

impl Trd {
    /// Starts TRD on a test's settings for `workdir`, changed by `customise`.
    pub async fn start(workdir: &Path, customise: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings(workdir);
        // Every core.
        settings.worker_concurrency = 0;
        // The product's watcher. File-system events register a placed batch at once, and every
        // rescan stat()s each file of the work directory: a faster pace would spend CPU that
        // grows with every batch a benchmark places, and that no user's service spends.
        let product = Settings::default();
        settings.rescan_interval_ms = product.rescan_interval_ms;
        settings.settle_ms = product.settle_ms;
        // The product's lease, not the tests' short one (which makes failover tests quick): the
        // sweeps run every quarter or half lease, and at the tests' 15 s they ran four times as
        // often as in service.
        settings.lease_seconds = product.lease_seconds;
        if let Some(seconds) = std::env::var("TRD_RECOGNITION_RUN_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            settings.recognition_run_seconds = seconds;
        }
        if let Some(frames) = std::env::var("TRD_RECOGNIZER_FRAMES_PER_CHUNK")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            settings.recognizer_frames_per_chunk = frames;
        }
        customise(&mut settings);
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
            settings: settings.clone(),
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

    pub async fn list(&self, batch: &str) -> Option<Vec<Value>> {
        let url = format!("{}/trd/audiofile/list/batch/{batch}", self.base);
        let body: Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
        body.as_array().cloned()
    }

    /// Places `files` in a new batch and waits until all are registered.
    pub async fn place(&self, batch: &str, files: &[PathBuf]) {
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
    pub async fn run(&self, batch: &str, query: &str) -> f64 {
        let started = Instant::now();
        self.start_batch(batch, query).await;
        loop {
            if self.finished(batch).await == Some(true) {
                return started.elapsed().as_secs_f64();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Starts every file of the batch (`query`: the start's parameters, `?…` or empty).
    pub async fn start_batch(&self, batch: &str, query: &str) {
        let url = format!("{}/trd/transcription/start/batch/{batch}{query}", self.base);
        let resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "start {batch}");
    }

    /// Whether every file of the batch is FINISHED (`None` if it cannot be listed); panics
    /// on a FAILED file.
    pub async fn finished(&self, batch: &str) -> Option<bool> {
        let files = self.list(batch).await?;
        if let Some(failed) = files.iter().find(|f| f["control"] == "FAILED") {
            panic!("a file failed: {failed}");
        }
        Some(!files.is_empty() && files.iter().all(|f| f["control"] == "FINISHED"))
    }

    /// How many files of the batch are FINISHED.
    pub async fn finished_count(&self, batch: &str) -> usize {
        self.list(batch)
            .await
            .unwrap_or_default()
            .iter()
            .filter(|f| f["control"] == "FINISHED")
            .count()
    }
}

/// CPU seconds used so far by every process on the machine, summed by command name: where a
/// workload's time goes (recognizer, normalizer, diarizer, API, MongoDB, RabbitMQ…).
pub fn cpu_seconds_by_command() -> BTreeMap<String, f64> {
    let mut totals = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return totals;
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((command, fields)) = process_stat(&stat) {
            // utime and stime are the 14th and 15th fields of the whole line.
            *totals.entry(command.to_owned()).or_insert(0.0) +=
                ticks(&fields, 11) + ticks(&fields, 12);
        }
    }
    totals
}

/// CPU seconds of this process's children that have ended and been waited for, theirs
/// included: the reference tool's, with the decoders it starts, once its run returns (a
/// process that has ended is missing from [`cpu_seconds_by_command`]'s snapshots).
pub fn ended_children_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // cutime and cstime are the 16th and 17th fields of the whole line.
    process_stat(&stat).map_or(0.0, |(_, fields)| ticks(&fields, 13) + ticks(&fields, 14))
}

/// The whole machine's CPU seconds since it started, from `/proc/stat`: what its processes
/// and the kernel used (busy), and what the host gave other guests while this one had work
/// (steal). A run's busy seconds against its wall time say how fully it kept the cores busy;
/// the same work taking more busy seconds than on a quiet host says the host was slower.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    pub busy: f64,
    pub steal: f64,
}

impl MachineCpu {
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
            return Self::default();
        };
        // user nice system idle iowait irq softirq steal (guest time is within user).
        let fields: Vec<&str> = line.split_whitespace().skip(1).collect();
        Self {
            busy: [0, 1, 2, 5, 6].iter().map(|&i| ticks(&fields, i)).sum(),
            steal: ticks(&fields, 7),
        }
    }

    /// What was used between `earlier` and this snapshot.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            busy: self.busy - earlier.busy,
            steal: self.steal - earlier.steal,
        }
    }
}

/// A `/proc/<pid>/stat` line's command and the fields after it (`pid (comm) state ppid …`:
/// the command may hold spaces and parentheses, so it ends at the last ')').
fn process_stat(stat: &str) -> Option<(&str, Vec<&str>)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    Some((
        &stat[open + 1..close],
        stat[close + 1..].split_whitespace().collect(),
    ))
}

/// Field `i` of a stat line's fields, in clock ticks, as seconds.
fn ticks(fields: &[&str], i: usize) -> f64 {
    // Linux reports these in clock ticks, 100 per second on every common configuration.
    const TICKS_PER_SECOND: f64 = 100.0;
    fields
        .get(i)
        .and_then(|f| f.parse::<f64>().ok())
        .unwrap_or(0.0)
        / TICKS_PER_SECOND
}

/// The processes that used at least half a CPU second between two snapshots, busiest first.
pub fn cpu_profile(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> String {
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

/// The median of `values` (not empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// `low–high` of `values`.
pub fn spread(values: &[f64]) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{low:.2}–{high:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that spins for about `seconds` of CPU, waited for.
    fn spin(seconds: f64) {
        let script = format!(
            "end=$(( $(date +%s%N) + {} )); while [ $(date +%s%N) -lt $end ]; do :; done",
            (seconds * 1e9) as u64
        );
        let status = Command::new("sh").args(["-c", &script]).status().unwrap();
        assert!(status.success());
    }

    #[test]
    fn an_ended_child_s_cpu_counts_once_it_is_waited_for() {
        let before = ended_children_cpu_seconds();
        spin(0.4);
        let used = ended_children_cpu_seconds() - before;
        // The loop forks `date` all the time: its own time and its children's count.
        assert!((0.2..5.0).contains(&used), "{used} CPU s for a 0.4 s spin");
    }

    #[test]
    fn the_machine_s_busy_seconds_grow_with_work_and_steal_never_falls() {
        let before = MachineCpu::now();
        assert!(before.busy > 0.0, "{before:?}");
        spin(0.4);
        let used = MachineCpu::now().since(before);
        assert!(used.busy >= 0.2, "{used:?} for a 0.4 s spin");
        assert!(used.steal >= 0.0, "{used:?}");
    }

    #[test]
    fn a_command_with_spaces_and_parentheses_is_read_whole() {
        let line = "42 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 250 50 7 3 20";
        let (command, fields) = process_stat(line).unwrap();
        assert_eq!(command, "a (b) c");
        assert_eq!((ticks(&fields, 11), ticks(&fields, 12)), (2.5, 0.5));
        assert_eq!((ticks(&fields, 13), ticks(&fields, 14)), (0.07, 0.03));
    }
}
