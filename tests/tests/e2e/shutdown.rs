//! Reliability: SIGTERM. A worker asked to stop takes no new work, finishes or returns what it
//! holds, and exits within a bounded time; nothing it held is lost or done twice.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mongodb::bson::oid::ObjectId;
use trd_core::domain::SegmentStatus;
use trd_tests::app::{spawn_app_with, Workers};
use trd_tests::data;

const LEASE_SECONDS: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminated_recognizer_exits_promptly_and_loses_nothing() {
    let _turn = trd_tests::turns::alone().await;
    let app = spawn_app_with(Workers::None, |s| {
        s.max_segment_seconds = 4.0;
        s.lease_seconds = LEASE_SECONDS;
        s.worker_concurrency = 2;
    })
    .await;
    let mut helpers = vec![
        app.worker_process("trd-normalizer"),
        app.worker_process("trd-diarizer"),
    ];
    let mut recognizer = app
        .worker_command("trd-recognizer")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    app.copy_into_batch("calls", &[data::path("dialogues").join("dlg_104_109.wav")]);
    let registered = app.wait_registered("calls", 1).await;
    let file = ObjectId::parse_str(registered[0]["_id"].as_str().unwrap()).unwrap();
    app.get_ok("/trd/transcription/start/batch/calls?diarization=none")
        .await;

    // Mid-file: some segments done, others still to do.
    let total = app
        .eventually(
            "recognition under way",
            Duration::from_secs(300),
            || async {
                let segments = app.store.segments_of(file).await.ok()?;
                let done = segments
                    .iter()
                    .filter(|s| s.status != SegmentStatus::Processing)
                    .count();
                (done >= 2 && done < segments.len()).then_some(segments.len())
            },
        )
        .await;

    let asked = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &recognizer.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = recognizer.try_wait().unwrap() {
            break exit;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(LEASE_SECONDS + 10),
            "the recognizer did not exit within its bound after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = asked.elapsed();
    println!(
        "recognizer exited {exit} {:.1} s after SIGTERM",
        took.as_secs_f64()
    );
    assert!(exit.success(), "a terminated worker exits cleanly: {exit}");

    // What it held was finished (stored, lease released) or handed back untouched: no
    // segment is left claimed by the process that is gone.
    let segments = app.store.segments_of(file).await.unwrap();
    assert_eq!(segments.len(), total);
    assert!(
        segments.iter().all(|s| s.lease.is_none()),
        "a segment is still claimed by the exited recognizer"
    );
    let remaining = segments
        .iter()
        .filter(|s| s.status == SegmentStatus::Processing)
        .count();
    assert!(
        remaining > 0,
        "the file finished before the signal: nothing was tested"
    );

    // A new recognizer picks up the rest at once (no lease to wait out), each segment once.
    let resumed = Instant::now();
    helpers.push(app.worker_process("trd-recognizer"));
    let done = app.wait_batch_done("calls", Duration::from_secs(300)).await;
    assert_eq!(done[0]["control"], "FINISHED", "{}", done[0]);
    println!(
        "the rest ({remaining} segments) finished {:.1} s after a new recognizer started",
        resumed.elapsed().as_secs_f64()
    );
    let timings = app.store.stage_timings().await.unwrap();
    let recognize = timings.iter().find(|t| t.stage == "recognize").unwrap();
    assert_eq!(recognize.runs as usize, total, "{recognize:?}");
    for mut child in helpers {
        let _ = child.kill();
        let _ = child.wait();
    }
}
