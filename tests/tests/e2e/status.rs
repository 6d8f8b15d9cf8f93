//! Status figures (contract section 4): checked against a hand computation on a batch built
//! record by record, and the ETA against the time a real batch actually takes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use trd_core::domain::{Control, SegmentStatus, Status};
use trd_tests::app::{spawn_app, Workers};
use trd_tests::data;
use trd_tests::fixtures::{an_hour_ago, insert_batch, FileSpec};

use SegmentStatus::{NoMatch, Processing, Recognized};

fn close(actual: &Value, expected: f64, what: &str) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {actual}"));
    assert!(
        (a - expected).abs() < 1e-6,
        "{what}: {a}, expected {expected}"
    );
}

/// Acceptance 2: one file in every interesting state, figures computed by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_figures_match_a_hand_computation() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;
    let files = [
        FileSpec::new("idle.wav", Control::Idle, Status::Initial, 1000),
        FileSpec::new(
            "normalizing.wav",
            Control::Running,
            Status::Normalizing,
            2000,
        ),
        FileSpec::new("diarized.wav", Control::Running, Status::Diarized, 3000)
            .channels(&[30.0, 30.0])
            .segments(&[(0.0, 12.0, Processing), (15.0, 23.0, Processing)]),
        FileSpec::new(
            "recognizing.wav",
            Control::Running,
            Status::Recognizing,
            4000,
        )
        .channels(&[40.0])
        .segments(&[
            (0.0, 10.0, Recognized),
            (12.0, 17.0, NoMatch),
            (20.0, 35.0, Processing),
        ]),
        FileSpec::new("failed.wav", Control::Failed, Status::Normalizing, 500),
        FileSpec::new("finished.wav", Control::Finished, Status::Recognized, 5000)
            .channels(&[50.0])
            .segments(&[(0.0, 20.0, Recognized), (30.0, 35.0, Recognized)]),
    ];
    let ids = insert_batch(&app.store, "mixed", &files, an_hour_ago()).await;
    // Another batch's files and segments must not leak into the figures.
    insert_batch(
        &app.store,
        "other",
        &[
            FileSpec::new("x.wav", Control::Finished, Status::Recognized, 777)
                .channels(&[9.0])
                .segments(&[(0.0, 4.0, Recognized)]),
        ],
        an_hour_ago(),
    )
    .await;

    let s = app.get_ok("/trd/transcription/status/batch/mixed").await;
    assert_eq!(s["batch"], "mixed");
    assert_eq!(
        s["accounted_control"],
        json!({
            "IDLE": {"bytes": 1000, "files": 1},
            "RUNNING": {"bytes": 9000, "files": 3},
            "FAILED": {"bytes": 500, "files": 1},
            "FINISHED": {"bytes": 5000, "files": 1},
        })
    );
    assert_eq!(
        s["accounted_status"],
        json!({
            "INITIAL": {"bytes": 1000, "files": 1},
            "NORMALIZING": {"bytes": 2500, "files": 2},
            "DIARIZED": {"bytes": 3000, "files": 1},
            "RECOGNIZING": {"bytes": 4000, "files": 1},
            "RECOGNIZED": {"bytes": 5000, "files": 1},
        })
    );
    assert_eq!(
        s["accounted_recognition"],
        json!({
            "PROCESSING": {"seconds": 35.0, "segments": 3},
            "RECOGNIZED": {"seconds": 35.0, "segments": 3},
            "NO_MATCH": {"seconds": 5.0, "segments": 1},
        })
    );
    assert_eq!(s["total_files"], 6);
    assert_eq!(s["total_bytes"], 15500);
    assert_eq!(s["total_segments"], 7);
    close(&s["total_speech"], 75.0, "total_speech");
    // Durations: a file lasts as long as its first channel; `_ch` counts every channel.
    close(&s["total_audio"], 120.0, "total_audio");
    close(&s["total_audio_ch"], 150.0, "total_audio_ch");
    close(&s["speech2audio_rate"], 75.0 / 120.0, "speech2audio_rate");
    close(
        &s["speech2audio_rate_ch"],
        75.0 / 150.0,
        "speech2audio_rate_ch",
    );
    // Past normalization and diarization: diarized, recognizing, finished; past recognition:
    // finished. The failed file stopped before normalization.
    close(&s["normalization"], 3.0 / 6.0, "normalization");
    close(&s["diarization"], 3.0 / 6.0, "diarization");
    close(&s["recognition"], 1.0 / 6.0, "recognition");
    // Progress weighs files by audio: 120 s over 12 000 normalized bytes gives 0.01 s/byte
    // for the others (idle 10, normalizing 20, failed 5). Done: finished 50, failed 5 (over),
    // diarized 30 × 0.1, recognizing 40 × (0.1 + 0.9 × 15/30) = 22.
    close(
        &s["progress"],
        (50.0 + 5.0 + 3.0 + 22.0) / 155.0,
        "progress",
    );
    // Nothing was processed recently, so the ETA falls back to the per-core speed: 65 s of
    // audio left for running files (20 + 27 + 18) at 2 cores × 4 s/s.
    close(&s["ETA"], 8.0, "ETA");

    let f = app
        .get_ok(&format!(
            "/trd/transcription/status/audiofile/{}",
            ids[3].to_hex()
        ))
        .await;
    assert_eq!(
        f,
        json!({
            "accounted_speech": {
                "RECOGNIZED": {"seconds": 10.0, "segments": 1},
                "NO_MATCH": {"seconds": 5.0, "segments": 1},
                "PROCESSING": {"seconds": 15.0, "segments": 1},
            },
            "total_segments": 3,
            "total_speech": 30.0,
        })
    );

    let (code, body) = app.get("/trd/transcription/status/batch/nosuch").await;
    assert_eq!(code, 404, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nosuch"));
    let (code, body) = app.get("/trd/transcription/status/batch/..").await;
    assert!((400..500).contains(&code), "{code} {body}");
}

/// A batch that is over, failed files included, is done: progress 1, ETA 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_is_over_has_progress_one_and_no_eta() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;
    insert_batch(
        &app.store,
        "over",
        &[
            FileSpec::new("a.wav", Control::Finished, Status::Recognized, 1000)
                .channels(&[10.0])
                .segments(&[(1.0, 4.0, Recognized)]),
            FileSpec::new("b.wav", Control::Failed, Status::Diarizing, 1000).channels(&[10.0]),
        ],
        an_hour_ago(),
    )
    .await;
    let s = app.get_ok("/trd/transcription/status/batch/over").await;
    close(&s["progress"], 1.0, "progress");
    close(&s["ETA"], 0.0, "ETA");
    close(&s["recognition"], 0.5, "recognition");

    // A small batch is summed on every request: a change shows at once.
    insert_batch(
        &app.store,
        "over",
        &[FileSpec::new("c.wav", Control::Idle, Status::Initial, 1000)],
        an_hour_ago(),
    )
    .await;
    let s = app.get_ok("/trd/transcription/status/batch/over").await;
    assert_eq!(s["total_files"], 3);
    close(&s["progress"], 2.0 / 3.0, "progress with a new idle file");
}

/// Acceptance 3: at 25 % progress the ETA is within ±50 % of the time the batch really takes
/// from there, with the real workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eta_at_a_quarter_predicts_the_remaining_time() {
    let _turn = trd_tests::turns::alone().await;
    let app = spawn_app(Workers::InProcess).await;
    let clips: Vec<_> = std::fs::read_dir(data::path("ko/zeroth-speakers"))
        .expect("ko/zeroth-speakers")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    assert!(clips.len() >= 20, "expected the 28 zeroth-speakers clips");
    // Three copies of each: a batch long enough (about 20 s here) that the quarter mark is
    // past the pipeline's start-up and whole-second rounding does not decide the ±50 %.
    let copies = tempfile::tempdir().unwrap();
    let clips: Vec<PathBuf> = clips
        .iter()
        .flat_map(|clip| {
            let stem = clip.file_stem().unwrap().to_string_lossy().to_string();
            (1..=3).map(move |copy| (clip.clone(), format!("{stem}_{copy}.wav")))
        })
        .map(|(clip, name)| {
            let to = copies.path().join(name);
            std::fs::copy(clip, &to).unwrap();
            to
        })
        .collect();
    app.copy_into_batch("eta", &clips);
    app.wait_registered("eta", clips.len()).await;
    let started = Instant::now();
    app.get_ok("/trd/transcription/start/batch/eta").await;

    let (eta, at) = app
        .eventually(
            "a quarter of the batch",
            Duration::from_secs(600),
            || async {
                let s = app.get_ok("/trd/transcription/status/batch/eta").await;
                let progress = s["progress"].as_f64().unwrap();
                (progress >= 0.25).then(|| (s["ETA"].as_f64().unwrap(), Instant::now()))
            },
        )
        .await;
    app.wait_batch_done("eta", Duration::from_secs(900)).await;
    let actual = at.elapsed().as_secs_f64();
    println!(
        "ETA at 25 %: {eta:.0} s; actually took {actual:.1} s more (batch started {:.1} s before the 25 % mark)",
        (at - started).as_secs_f64()
    );
    assert!(
        (eta - actual).abs() <= 0.5 * actual,
        "ETA {eta:.0} s is not within ±50 % of the actual {actual:.1} s"
    );
    let s = app.get_ok("/trd/transcription/status/batch/eta").await;
    close(&s["progress"], 1.0, "final progress");
    close(&s["ETA"], 0.0, "final ETA");
}
