//! Recognition at scale (issue "Recognizer at scale"): vocabulary hints, and one long file
//! shared by two recognizer processes while its segment messages are delivered again and again.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use serde_json::Value;
use trd_core::domain::{Lane, Stage};
use trd_core::WorkItem;
use trd_tests::app::{spawn_app, spawn_app_with, TestApp, Workers};
use trd_tests::procfs::memory_kb;
use trd_tests::{cer, data};

const CLIP: &str = "104_003_0019.wav";

fn text_of(result: &Value) -> String {
    result["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn result_of(app: &TestApp, record: &Value) -> Value {
    let id = record["_id"].as_str().unwrap();
    app.get_ok(&format!("/trd/transcription/result/audiofile/{id}"))
        .await
}

/// The clip's plain reading hears 뒤발 where the speaker said 개발 (development); with the hints
/// the near-miss reading wins, the transcript gets closer to the reference, and a hinted word
/// the model cannot produce is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hints_turn_near_misses_into_the_expected_words_and_unknown_hints_are_reported() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let clip = data::path("ko/zeroth-104").join(CLIP);
    app.copy_into_batch("plain", std::slice::from_ref(&clip));
    app.copy_into_batch("hinted", &[clip]);
    app.wait_registered("plain", 1).await;
    app.wait_registered("hinted", 1).await;

    app.get_ok("/trd/transcription/start/batch/plain").await;
    let started = app
        .http
        .get(app.url("/trd/transcription/start/batch/hinted"))
        .query(&[("hints.words", "동료, 개발 작업 ,zzyzxq")])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);

    let plain = app.wait_batch_done("plain", Duration::from_secs(300)).await;
    let hinted = app
        .wait_batch_done("hinted", Duration::from_secs(300))
        .await;
    let reference = &data::references("ko/zeroth-104")[CLIP];
    let plain_text = text_of(&result_of(&app, &plain[0]).await);
    let hinted_result = result_of(&app, &hinted[0]).await;
    let hinted_text = text_of(&hinted_result);
    let (plain_errors, _) = cer::errors(reference, &plain_text);
    let (hinted_errors, _) = cer::errors(reference, &hinted_text);
    println!("plain  ({plain_errors} errors): {plain_text}\nhinted ({hinted_errors} errors): {hinted_text}");

    assert!(!plain_text.contains("개발"), "{plain_text}");
    assert!(hinted_text.contains("개발"), "{hinted_text}");
    assert!(
        hinted_errors < plain_errors,
        "hints made it worse: {hinted_errors} vs {plain_errors}"
    );
    // Words keep file times and scores in the hinted reading too.
    for segment in hinted_result["segments"].as_array().unwrap() {
        for w in segment["words"].as_array().unwrap() {
            let score = w["score"].as_u64().unwrap();
            assert!(score <= 100, "{w}");
            assert!(
                w["end"].as_f64().unwrap() >= w["start"].as_f64().unwrap(),
                "{w}"
            );
        }
    }

    let warnings = hinted[0]["warnings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].as_str().unwrap().contains("'zzyzxq'"),
        "{warnings:?}"
    );
    assert!(plain[0].get("warnings").is_none(), "{}", plain[0]);
}

/// Acceptance 2: a long file cut into many segments, recognized by two recognizer processes at
/// once; one of them is killed mid-file (its unacknowledged messages are redelivered to the
/// other) and every segment message is also published a second time. Each segment is
/// recognized once and the file is closed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_recognizer_processes_recognize_each_segment_once_despite_redeliveries() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::None, |s| {
        s.max_segment_seconds = 4.0;
        // Runs of a few segments, so that both processes work on the file at once.
        s.recognition_run_seconds = 8.0;
        s.worker_concurrency = 2;
    })
    .await;
    let logs = tempfile::tempdir().unwrap();
    let recognizer = |n: usize| -> (Child, PathBuf) {
        let log = logs.path().join(format!("recognizer-{n}.log"));
        let child = app
            .worker_command("trd-recognizer")
            .env("RUST_LOG", "info")
            .env("TRD_LOG_FORMAT", "json")
            .stdout(File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("the trd-recognizer binary (build the workspace binaries first)");
        (child, log)
    };
    let mut others = vec![
        app.worker_process("trd-normalizer"),
        app.worker_process("trd-diarizer"),
    ];
    let (mut first, first_log) = recognizer(1);
    let (second, second_log) = recognizer(2);

    app.copy_into_batch(
        "long",
        &[data::path("dialogues").join("dlg_108_111_104.wav")],
    );
    let registered = app.wait_registered("long", 1).await;
    let file = ObjectId::parse_str(registered[0]["_id"].as_str().unwrap()).unwrap();
    app.get_ok("/trd/transcription/start/batch/long?diarization=none")
        .await;

    // Once a few segments are done: every segment's message once more, then kill -9 one
    // recognizer while it holds messages, and start a replacement.
    let total: usize = app
        .eventually(
            "several segments recognized",
            Duration::from_secs(300),
            || async {
                let segments = app.store.segments_of(file).await.ok()?;
                let done = segments.iter().filter(|s| !s.text.is_empty()).count();
                (done >= 3).then_some(segments.len())
            },
        )
        .await;
    assert!(
        total >= 12,
        "only {total} segments: the file should be cut small"
    );
    for segment in app.store.segments_of(file).await.unwrap() {
        app.queue
            .publish(
                Stage::Recognize,
                Lane::Batch,
                &WorkItem::Segment {
                    file,
                    segment: segment.id,
                },
            )
            .await
            .unwrap();
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let (third, third_log) = recognizer(3);

    let done = app.wait_batch_done("long", Duration::from_secs(600)).await;
    assert_eq!(done[0]["control"], "FINISHED", "{}", done[0]);
    assert_eq!(done[0]["status"], "RECOGNIZED", "{}", done[0]);
    let segments = app.store.segments_of(file).await.unwrap();
    assert_eq!(segments.len(), total, "segments were added or lost");
    assert_eq!(done[0]["total_segments"].as_u64().unwrap() as usize, total);
    assert!(segments.iter().all(|s| s.lease.is_none()));

    // Each segment was stored once: the recognize stage counted exactly one finished run per
    // segment (a second completion of a segment would count twice).
    let timings = app.store.stage_timings().await.unwrap();
    let recognize = timings.iter().find(|t| t.stage == "recognize").unwrap();
    assert_eq!(recognize.runs as usize, total, "{recognize:?}");

    // The file was closed exactly once, by one of the processes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for mut child in [second, third].into_iter().chain(others.drain(..)) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let closes: usize = [first_log, second_log, third_log]
        .iter()
        .map(|log| {
            std::fs::read_to_string(log)
                .unwrap()
                .lines()
                .filter(|l| l.contains("file finished") && l.contains(&file.to_hex()))
                .count()
        })
        .sum();
    assert_eq!(closes, 1, "the file must be closed exactly once");
}

/// The recognizer process asks for huge pages (its allocator's options), and the kernel grants
/// them on request in its `madvise` mode, Debian's default: the decoding graph, which the
/// decoder reads at random, then sits in 2 MB pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recognizer_holds_its_decoding_graph_in_huge_pages() {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .expect("a Linux kernel with transparent huge pages");
    assert!(
        !thp.contains("[never]"),
        "this machine forbids transparent huge pages ({thp}): the recognizer cannot have them"
    );
    let _turn = trd_tests::turns::shared().await;
    let mut app = spawn_app_with(Workers::None, |_| {}).await;
    let graph_dir = app
        .settings
        .model_dir(&app.settings.default_model)
        .expect("the default model's directory")
        .join("graph");
    // The static graph when it has been compiled, else the larger half of the lookahead graph.
    let graph_bytes: u64 = ["HCLG.fst", "HCLr.fst", "Gr.fst"]
        .iter()
        .filter_map(|f| std::fs::metadata(graph_dir.join(f)).ok())
        .map(|m| m.len())
        .max()
        .expect("a decoding graph in the model");
    let pid = app.start_worker_process("trd-recognizer");
    app.eventually(
        "most of the graph in huge pages",
        Duration::from_secs(120),
        || async {
            let kb = memory_kb(pid, "smaps_rollup", "AnonHugePages")?;
            (kb * 1024 >= graph_bytes / 2).then_some(kb)
        },
    )
    .await;
}
