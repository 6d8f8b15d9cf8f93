//! Reliability acceptance 4: a poison file — one that makes its stage fail on every attempt —
//! is dead-lettered after the configured number of attempts and ends FAILED with the reason,
//! while the other files of its batch finish.

use std::path::Path;
use std::time::{Duration, Instant};

use trd_tests::app::{spawn_app_with, worker_command, Workers};
use trd_tests::data;
use trd_tests::fleet::Fleet;

const ATTEMPTS: u32 = 3;

/// A long 16-bit PCM WAV made of `times` copies of a dialogue's samples: far too long to
/// normalize within the normalizer's one-second stage time limit, unlike the short clips.
fn write_long_wav(source: &Path, times: usize, target: &Path) {
    let bytes = std::fs::read(source).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    let (mut pos, mut fmt, mut data) = (12, None, None);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
        match id {
            b"fmt " => fmt = Some(body.to_vec()),
            b"data" => data = Some(body.to_vec()),
            _ => {}
        }
        pos += 8 + len + (len & 1);
    }
    let (fmt, data) = (fmt.expect("a fmt chunk"), data.expect("a data chunk"));
    let data_len = data.len() * times;
    let mut out = Vec::with_capacity(data_len + 64);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((4 + 8 + fmt.len() + 8 + data_len) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    out.extend_from_slice(&fmt);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_len as u32).to_le_bytes());
    for _ in 0..times {
        out.extend_from_slice(&data);
    }
    std::fs::write(target, out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_file_fails_after_the_configured_attempts_and_the_batch_finishes() {
    let _turn = trd_tests::turns::alone().await;
    let app = spawn_app_with(Workers::None, |s| {
        s.max_delivery_attempts = ATTEMPTS;
        s.lease_seconds = 5;
    })
    .await;
    let logs = tempfile::tempdir().unwrap();
    let normalizer_log = logs.path().join("normalizer.log");
    let mut fleet = Fleet::new();
    let settings = app.settings.clone();
    let log = normalizer_log.clone();
    fleet.add("trd-normalizer", move || {
        let mut command = worker_command(&settings, "trd-normalizer");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        command
            .env("TRD_STAGE_TIMEOUT_SECONDS", "1")
            .env("RUST_LOG", "info,lapin=warn,mongodb=warn")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        command
    });
    for name in ["trd-diarizer", "trd-recognizer"] {
        let settings = app.settings.clone();
        fleet.add(name, move || worker_command(&settings, name));
    }

    let clips: Vec<_> = ["104_003_0019.wav", "104_003_0294.wav", "104_003_0352.wav"]
        .iter()
        .map(|f| data::path("ko/zeroth-104").join(f))
        .collect();
    let poison = logs.path().join("poison.wav");
    write_long_wav(&data::path("dialogues/dlg_104_109.wav"), 40, &poison);
    app.copy_into_batch("mixed", &clips);
    app.copy_into_batch("mixed", &[poison]);
    let registered = app.wait_registered("mixed", 4).await;
    let poison_id = registered
        .iter()
        .find(|r| r["filename"] == "poison.wav")
        .and_then(|r| r["_id"].as_str())
        .unwrap()
        .to_owned();

    let started = Instant::now();
    app.get_ok("/trd/transcription/start/batch/mixed").await;
    let done = app.wait_batch_done("mixed", Duration::from_secs(300)).await;
    println!("batch ended in {:.1} s", started.elapsed().as_secs_f64());

    for record in &done {
        if record["_id"] == poison_id.as_str() {
            assert_eq!(record["control"], "FAILED", "{record}");
            let error = record["error"].to_string();
            assert!(
                error.contains(&format!("after {ATTEMPTS} attempts"))
                    && error.contains("normalize"),
                "the reason names the attempts and the stage: {record}"
            );
            assert!(error.contains("NORMALIZING"), "{record}");
        } else {
            assert_eq!(record["control"], "FINISHED", "{record}");
            assert_eq!(record["status"], "RECOGNIZED", "{record}");
        }
    }

    // Exactly the configured number of attempts: one claim per delivery, no more.
    let log = std::fs::read_to_string(&normalizer_log).unwrap();
    let attempts = log
        .lines()
        .filter(|l| l.contains("stage started") && l.contains(&poison_id))
        .count();
    let timeouts = log
        .lines()
        .filter(|l| {
            l.contains("attempt failed")
                && l.contains("took longer than 1 s")
                && l.contains(&poison_id)
        })
        .count();
    println!("poison file: {attempts} attempts, {timeouts} timed out");
    assert_eq!(attempts, ATTEMPTS as usize, "{log}");
    assert_eq!(timeouts, ATTEMPTS as usize, "{log}");
    assert!(fleet.exited().is_empty());
}
