//! Diarization speed, memory and accuracy on the shared dialogues and on a 30-minute file made
//! by concatenating them. Prints tables; asserts nothing (the tests do that).
//!
//! `cargo bench -p trd-diarizer --bench diarize` (needs the weights from
//! scripts/lib/provision-diarizer.sh).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{dialogues_dir, read_channels, reference, speaker_count, COLLAR, DIALOGUES, STEREO};
use trd_diarizer::der::{self, SpeakerTurn};
use trd_diarizer::{diarize, DiarizationRequest, Turn};

const RATE: u32 = 16_000;
const LONG_SECONDS: f64 = 1800.0;

struct Run {
    turns: Vec<Turn>,
    cpu: Duration,
    wall: Duration,
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn run(channels: &[Vec<i16>]) -> Run {
    let request = DiarizationRequest::new(channels.iter().map(Vec::as_slice).collect(), RATE, 30.0);
    let (cpu, wall) = (cpu_time(), Instant::now());
    let turns = diarize(&request, &common::models())
        .expect("diarization runs; are the weights provisioned?");
    Run {
        turns,
        cpu: cpu_time() - cpu,
        wall: wall.elapsed(),
    }
}

/// CPU ticks used so far by each thread of this process, by thread id.
fn thread_ticks() -> Vec<(String, u64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // Fields after the parenthesised name: utime and stime are the 12th and 13th.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some((t.file_name().to_string_lossy().into_owned(), ticks))
        })
        .collect()
}

/// The busiest thread's share of the CPU time spent between two [`thread_ticks`] snapshots:
/// with free cores, wall time is about this share of CPU time, whatever else loads the machine.
fn busiest_thread_share(before: &[(String, u64)], after: &[(String, u64)]) -> f64 {
    let used: Vec<u64> = after
        .iter()
        .map(|(id, t)| t - before.iter().find(|(b, _)| b == id).map_or(0, |(_, b)| *b))
        .collect();
    let total: u64 = used.iter().sum();
    used.iter()
        .max()
        .map_or(f64::NAN, |&m| m as f64 / total.max(1) as f64)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Model loading happens once per process; keep it out of the figures.
    let warm_up = run(&[vec![0; RATE as usize]]);
    println!(
        "model load + first call: {:.2} s wall, {threads} cores\n",
        warm_up.wall.as_secs_f64()
    );

    println!(
        "{:<32} {:>8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>9} {:>8}",
        "file", "audio s", "speakers", "DER %", "miss %", "FA %", "conf %", "CPU RTF", "wall/CPU"
    );
    let mut cases: Vec<(String, String)> = DIALOGUES
        .iter()
        .map(|n| (format!("{n}.wav"), n.to_string()))
        .collect();
    for name in STEREO {
        for suffix in ["_stereo.wav", "_stereo_8k_ulaw.wav"] {
            cases.push((format!("{name}{suffix}"), format!("{name}_stereo")));
        }
    }
    for (file, rttm) in &cases {
        let channels = read_channels(&dialogues_dir().join(file));
        let seconds = channels[0].len() as f64 / RATE as f64;
        let r = run(&channels);
        let report = common::score(rttm, &r.turns);
        print_row(file, seconds, &r, speaker_count(&r.turns), &report);
    }

    // Short recordings, one file each, as a contact centre's batch holds them: every recording
    // of `ko/`. Their cost per second of audio is what a batch of calls pays.
    let clips = short_recordings();
    let (mut audio, mut cpu, mut wall) = (0.0, Duration::ZERO, Duration::ZERO);
    for clip in &clips {
        let channels = read_channels(clip);
        audio += channels[0].len() as f64 / RATE as f64;
        let r = run(&channels);
        cpu += r.cpu;
        wall += r.wall;
    }
    println!(
        "{:<32} {:>8.1} {:>9} {:>7} {:>7} {:>7} {:>7} {:>9.4} {:>8.2}",
        format!("{} short recordings, one by one", clips.len()),
        audio,
        "",
        "",
        "",
        "",
        "",
        cpu.as_secs_f64() / audio,
        wall.as_secs_f64() / cpu.as_secs_f64(),
    );

    // The 30-minute file: the three dialogues over and over, references shifted to match.
    let mut long = Vec::new();
    let mut long_reference: Vec<SpeakerTurn> = Vec::new();
    'fill: loop {
        for name in DIALOGUES {
            let offset = long.len() as f64 / RATE as f64;
            long.extend(read_channels(&dialogues_dir().join(format!("{name}.wav"))).remove(0));
            long_reference.extend(reference(name).into_iter().map(|t| SpeakerTurn {
                file: "long".into(),
                start: t.start + offset,
                ..t
            }));
            if long.len() as f64 >= LONG_SECONDS * RATE as f64 {
                break 'fill;
            }
        }
    }
    let seconds = long.len() as f64 / RATE as f64;
    // Writing 5 to clear_refs resets the peak RSS, so VmHWM below is this run's alone
    // (plus the PCM, which the real pipeline holds too).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let long_channels = vec![long];
    let ticks = thread_ticks();
    let r = run(&long_channels);
    let share = busiest_thread_share(&ticks, &thread_ticks());
    let report = der::score(&long_reference, &common::as_rttm("long", &r.turns), COLLAR);
    print_row(
        "30-minute concatenation",
        seconds,
        &r,
        speaker_count(&r.turns),
        &report,
    );
    println!(
        "\n30-minute file: {} reference speakers, peak RSS {:.0} MiB, busiest thread did {:.0} % \
         of the CPU work (the wall/CPU ratio on otherwise idle cores)",
        names(&long_reference),
        peak_rss_mib(),
        100.0 * share
    );
    println!("targets: CPU RTF <= 0.020; wall/CPU <= 0.6 on 2 cores for the long file; DER <= 10 % (collar {COLLAR} s)");
}

/// Every WAV recording under `ko/` of the shared data, in name order.
fn short_recordings() -> Vec<std::path::PathBuf> {
    let ko = dialogues_dir().parent().unwrap().join("ko");
    let mut out: Vec<std::path::PathBuf> = std::fs::read_dir(&ko)
        .unwrap()
        .flatten()
        .flat_map(|folder| {
            std::fs::read_dir(folder.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    out.sort();
    out
}

fn names(turns: &[SpeakerTurn]) -> usize {
    let mut n: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
    n.sort_unstable();
    n.dedup();
    n.len()
}

fn print_row(file: &str, seconds: f64, r: &Run, speakers: usize, report: &der::DerReport) {
    let pct = |v: f64| 100.0 * v / report.scored;
    println!(
        "{:<32} {:>8.1} {:>9} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>9.4} {:>8.2}",
        file,
        seconds,
        speakers,
        100.0 * report.der(),
        pct(report.missed),
        pct(report.false_alarm),
        pct(report.confusion),
        r.cpu.as_secs_f64() / seconds,
        r.wall.as_secs_f64() / r.cpu.as_secs_f64(),
    );
}
