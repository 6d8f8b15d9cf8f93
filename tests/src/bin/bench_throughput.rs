//! Throughput at contact-centre scale: hundreds of short recordings in one batch, as a contact
//! centre drops them, against the reference tool a user would otherwise run,
//! `vosk-transcriber --tasks <cores>`, on the same model directory (static graph included),
//! measured in this one program. Not a test: it prints a table.
//!
//! The batch: every recording of `ko/zeroth-104`, `ko/zeroth-speakers` and the three mono
//! dialogues of `../shared/data`, copied under distinct names until there are
//! `TRD_BENCH_FILES` of them (default 300: about 69 minutes of audio).
//!
//! Each round (`TRD_BENCH_ROUNDS`, default 3) runs the reference, then TRD with
//! `diarization=none`, then TRD with diarization at its default, so each ratio divides by the
//! reference measured just before it. TRD's time is start request → every file FINISHED, with
//! the real `trd-api` and worker binaries as processes and the models already loaded (a
//! warm-up file goes through first). Each TRD run prints the CPU seconds every busy process
//! used meanwhile; the table gives medians and the diarizer's CPU per second of audio.
//! `TRD_RECOGNIZER_FRAMES_PER_CHUNK` sets TRD's `recognizer_frames_per_chunk` (51 measures
//! the faster, not quite identical decoding; the default keeps the model's).
//!
//! `scripts/bench-throughput` builds the release binaries, starts private services and runs
//! this.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use trd_tests::bench::{
    cpu_profile, cpu_seconds_by_command, ended_children_cpu_seconds, median, model_dir, read_wav,
    reference_run, spread, MachineCpu, Trd,
};
use trd_tests::data;

/// The distinct recordings the batch is made of.
fn recordings() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for folder in ["ko/zeroth-104", "ko/zeroth-speakers"] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(data::path(folder))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .collect();
        names.sort();
        out.extend(names);
    }
    for dialogue in ["dlg_104_109", "dlg_104_110", "dlg_108_111_104"] {
        out.push(data::path("dialogues").join(format!("{dialogue}.wav")));
    }
    out
}

/// Seconds of audio in a WAV recording.
fn seconds_of(path: &Path) -> f64 {
    let (pcm, rate) = read_wav(path);
    pcm.len() as f64 / 2.0 / rate as f64
}

/// `count` files in `dir`, the recordings copied round-robin under distinct names; the seconds
/// of audio they hold.
fn prepare_batch(dir: &Path, count: usize) -> (Vec<PathBuf>, f64) {
    std::fs::create_dir_all(dir).unwrap();
    let sources = recordings();
    let lengths: Vec<f64> = sources.iter().map(|s| seconds_of(s)).collect();
    let mut seconds = 0.0;
    let files = (0..count)
        .map(|i| {
            let source = &sources[i % sources.len()];
            let extension = source.extension().unwrap().to_string_lossy();
            let stem = source.file_stem().unwrap().to_string_lossy();
            let to = dir.join(format!("call{i:04}_{stem}.{extension}"));
            std::fs::copy(source, &to).unwrap();
            seconds += lengths[i % sources.len()];
            to
        })
        .collect();
    (files, seconds)
}

/// Seconds from the start request until every file of the batch is FINISHED, watched through
/// the batch's status (cheap for the service, unlike listing 300 records again and again).
async fn run(trd: &Trd, batch: &str, query: &str) -> f64 {
    let started = Instant::now();
    trd.start_batch(batch, query).await;
    let url = format!("{}/trd/transcription/status/batch/{batch}", trd.base);
    loop {
        let status: Option<Value> = match trd.http.get(&url).send().await {
            Ok(response) => response.json().await.ok(),
            Err(_) => None,
        };
        if let Some(status) = status {
            let files = |control: &str| status["accounted_control"][control]["files"].as_u64();
            assert!(files("FAILED").is_none(), "a file failed: {status}");
            let total = status["total_files"].as_u64().unwrap_or(0);
            if total > 0 && files("FINISHED") == Some(total) {
                return started.elapsed().as_secs_f64();
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One configuration's measurements, a value per round.
struct Row {
    diarization: &'static str,
    target: f64,
    trd: Vec<f64>,
    ratios: Vec<f64>,
    diarizer_cpu: Vec<f64>,
    /// The machine's busy CPU seconds during each run.
    busy: Vec<f64>,
}

/// The CPU seconds of the processes whose command starts with `name` in a profile's snapshots.
fn cpu_of(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
    name: &str,
) -> f64 {
    after
        .iter()
        .filter(|(command, _)| command.starts_with(name))
        .map(|(command, seconds)| seconds - before.get(command).unwrap_or(&0.0))
        .sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let env = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
            .max(1)
    };
    let (rounds, count) = (env("TRD_BENCH_ROUNDS", 3), env("TRD_BENCH_FILES", 300));
    let scratch = tempfile::tempdir().unwrap();
    let batch_dir = scratch.path().join("calls");
    let (files, audio_seconds) = prepare_batch(&batch_dir, count);
    println!(
        "batch: {} files, {:.1} min of audio ({:.1} s a file); {cores} cores; {rounds} rounds",
        files.len(),
        audio_seconds / 60.0,
        audio_seconds / files.len() as f64
    );

    let workdir = scratch.path().join("workdir");
    std::fs::create_dir_all(&workdir).unwrap();
    let trd = Trd::start(&workdir, |_| {}).await;
    println!(
        "recognizer_frames_per_chunk: {} (0: the model's own; TRD_RECOGNIZER_FRAMES_PER_CHUNK sets it)",
        trd.settings.recognizer_frames_per_chunk
    );
    trd.place("warmup", &files[..2]).await;
    let warmup = trd.run("warmup", "").await;
    println!("warm-up (loads the models): {warmup:.1} s");

    let mut rows = [("none", 0.70), ("default", 0.80)].map(|(diarization, target)| Row {
        diarization,
        target,
        trd: Vec::new(),
        ratios: Vec::new(),
        diarizer_cpu: Vec::new(),
        busy: Vec::new(),
    });
    let mut reference = Vec::new();
    let mut reference_busy = Vec::new();
    let out = scratch.path().join("reference");
    std::fs::create_dir_all(&out).unwrap();
    let model = model_dir();
    for round in 1..=rounds {
        let (before, machine, children) = (
            cpu_seconds_by_command(),
            MachineCpu::now(),
            ended_children_cpu_seconds(),
        );
        let peer = reference_run(&model, &batch_dir, &out, cores);
        let peer_cpu = ended_children_cpu_seconds() - children;
        let used = MachineCpu::now().since(machine);
        let profile = cpu_profile(&before, &cpu_seconds_by_command());
        println!(
            "round {round}: vosk-transcriber --tasks {cores}: {peer:.1} s; {}; its own CPU s {peer_cpu:.1}; others: {profile}",
            machine_use(used, peer, cores)
        );
        reference.push(peer);
        reference_busy.push(used.busy);
        for row in &mut rows {
            let query = match row.diarization {
                "none" => "?diarization=none",
                _ => "",
            };
            let name = format!("calls-{}-{round}", row.diarization);
            trd.place(&name, &files).await;
            let (before, machine) = (cpu_seconds_by_command(), MachineCpu::now());
            let took = run(&trd, &name, query).await;
            let (after, used) = (cpu_seconds_by_command(), MachineCpu::now().since(machine));
            println!(
                "round {round}: TRD, diarization {}: {took:.1} s ({:.2}); {}; CPU s: {}",
                row.diarization,
                took / peer,
                machine_use(used, took, cores),
                cpu_profile(&before, &after)
            );
            row.busy.push(used.busy);
            row.trd.push(took);
            row.ratios.push(took / peer);
            row.diarizer_cpu
                .push(cpu_of(&before, &after, "trd-diarizer") / audio_seconds);
        }
    }

    println!();
    println!(
        "Medians over {rounds} rounds; ratio: median of each round's TRD / vosk-transcriber \
         measured just before it (range in brackets)"
    );
    println!();
    println!(
        "| diarization | vosk-transcriber s | TRD s | ratio | target | diarizer CPU / audio s | \
         machine CPU s: vosk-transcriber / TRD |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        let ratio = median(&row.ratios);
        println!(
            "| {} | {:.1} | {:.1} | {ratio:.2} ({}) | ≤ {:.2} {} | {:.4} | {:.0} / {:.0} |",
            row.diarization,
            median(&reference),
            median(&row.trd),
            spread(&row.ratios),
            row.target,
            if ratio <= row.target { "met" } else { "missed" },
            median(&row.diarizer_cpu),
            median(&reference_busy),
            median(&row.busy),
        );
    }
    println!();
    println!(
        "Machine CPU s: what every process used during the run (busy, from /proc/stat). The \
         same work taking more of them than on a quiet host means a slower host, which slows \
         the two sides unequally: compare rounds by them before trusting a ratio."
    );
}

/// How a run used the machine: its busy CPU seconds, the share of the cores they kept busy,
/// and the host's steal when there was any.
fn machine_use(used: MachineCpu, wall: f64, cores: usize) -> String {
    let mut text = format!(
        "machine CPU s {:.1} ({:.0} % of {cores} cores)",
        used.busy,
        100.0 * used.busy / (wall * cores as f64)
    );
    if used.steal >= 0.5 {
        text.push_str(&format!(", steal {:.1} s", used.steal));
    }
    text
}
