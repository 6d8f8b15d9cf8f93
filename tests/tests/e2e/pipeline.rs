//! The walking skeleton's acceptance: real files through the real pipeline, against real
//! MongoDB, RabbitMQ and Vosk.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::Value;
use trd_core::domain::Status;
use trd_tests::app::{spawn_app, Workers};
use trd_tests::{cer, data};

fn zeroth_clips() -> Vec<std::path::PathBuf> {
    data::references("ko/zeroth-104")
        .keys()
        .map(|f| data::path("ko/zeroth-104").join(f))
        .collect()
}

fn dialogues() -> Vec<std::path::PathBuf> {
    ["dlg_104_109.wav", "dlg_104_110.flac", "dlg_108_111_104.wav"]
        .iter()
        .map(|f| data::path("dialogues").join(f))
        .collect()
}

/// Acceptance 1 and 4: the ten zeroth-104 clips, registered by the watcher, started with one
/// batch call, processed by the worker binaries as separate processes, and scored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_clips_is_transcribed_accurately_by_worker_processes() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::Processes).await;
    app.copy_into_batch("clips", &zeroth_clips());
    let registered = app.wait_registered("clips", 10).await;
    for r in &registered {
        assert_eq!(r["control"], "IDLE");
        assert_eq!(r["status"], "INITIAL");
        assert_eq!(r["batch"], "clips");
        assert_eq!(r["format"], "wav");
        assert_eq!(r["md5"].as_str().unwrap().len(), 32);
        assert!(r["size"].as_u64().unwrap() > 100_000);
    }

    let started = app.get_ok("/trd/transcription/start/batch/clips").await;
    assert_eq!(started.as_object().unwrap().len(), 10, "{started}");
    for url in started.as_object().unwrap().values() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with(&app.base) && url.contains("/trd/audiofile/"),
            "{url}"
        );
    }

    let done = app.wait_batch_done("clips", Duration::from_secs(600)).await;
    let references = data::references("ko/zeroth-104");
    let (mut errors, mut length) = (0, 0);
    for record in &done {
        assert_eq!(record["control"], "FINISHED", "{record}");
        assert_eq!(record["status"], "RECOGNIZED", "{record}");
        let text = app.result_text(record["_id"].as_str().unwrap()).await;
        let reference = &references[record["filename"].as_str().unwrap()];
        let (e, n) = cer::errors(reference, &text);
        errors += e;
        length += n;
    }
    let rate = errors as f64 / length as f64;
    println!(
        "CER over ko/zeroth-104: {:.2} % ({errors}/{length})",
        rate * 100.0
    );
    assert!(rate <= 0.125, "CER {:.2} % is above 12.5 %", rate * 100.0);
}

fn statuses(records: &[Value]) -> BTreeMap<String, (String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r["filename"].as_str().unwrap().to_owned(),
                (
                    r["control"].as_str().unwrap().to_owned(),
                    r["status"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

/// Where `status` comes in the pipeline (`Status::ALL` is in pipeline order).
fn rank(status: &str) -> usize {
    Status::ALL
        .iter()
        .position(|s| s.as_str() == status)
        .unwrap()
}

/// Acceptance 2: stopping mid-batch pauses files after their current stage; starting again
/// resumes each from where it stopped, keeping the work already done, and they finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stop_pauses_after_the_current_stage_and_start_resumes_there() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    app.copy_into_batch("talks", &dialogues());
    app.wait_registered("talks", 3).await;
    app.get_ok("/trd/transcription/start/batch/talks").await;

    // Stop as soon as the pipeline is visibly under way.
    app.eventually("work to begin", Duration::from_secs(60), || async {
        let list = app.get_ok("/trd/audiofile/list/batch/talks").await;
        list.as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] != "INITIAL")
            .then_some(())
    })
    .await;
    let stopped = app.get_ok("/trd/transcription/stop/batch/talks").await;
    assert_eq!(stopped.as_object().unwrap().len(), 3);

    // Work in progress completes, then nothing moves.
    let paused = app
        .eventually(
            "the current stages to complete",
            Duration::from_secs(120),
            || async {
                let list = app.get_ok("/trd/audiofile/list/batch/talks").await;
                let records = list.as_array().unwrap().clone();
                let settled = records.iter().all(|r| {
                    !matches!(
                        r["status"].as_str(),
                        Some("NORMALIZING") | Some("DIARIZING")
                    ) && matches!(r["control"].as_str(), Some("PAUSED") | Some("FINISHED"))
                });
                settled.then_some(records)
            },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = app.get_ok("/trd/audiofile/list/batch/talks").await;
    assert_eq!(
        statuses(&paused),
        statuses(later.as_array().unwrap()),
        "paused files kept moving"
    );
    assert!(
        paused.iter().any(|r| r["control"] == "PAUSED"),
        "every file finished before the stop took effect: {paused:?}"
    );

    // Remember what was done before the pause: segment ids of diarized files must survive.
    let mut kept_segments = BTreeMap::new();
    for r in &paused {
        if r["control"] == "PAUSED" && rank(r["status"].as_str().unwrap()) >= rank("DIARIZED") {
            let id = r["_id"].as_str().unwrap().to_owned();
            let oid = mongodb::bson::oid::ObjectId::parse_str(&id).unwrap();
            let ids: HashSet<_> = app
                .store
                .segments_of(oid)
                .await
                .unwrap()
                .iter()
                .map(|s| s.id)
                .collect();
            kept_segments.insert(id, ids);
        }
    }

    app.get_ok("/trd/transcription/start/batch/talks").await;
    let resumed = app.get_ok("/trd/audiofile/list/batch/talks").await;
    let before = statuses(&paused);
    for r in resumed.as_array().unwrap() {
        let (_, old_status) = &before[r["filename"].as_str().unwrap()];
        assert!(
            rank(r["status"].as_str().unwrap()) >= rank(old_status),
            "{} restarted from {} instead of resuming at {old_status}",
            r["filename"],
            r["status"]
        );
    }
    let done = app.wait_batch_done("talks", Duration::from_secs(600)).await;
    for r in &done {
        assert_eq!(r["control"], "FINISHED", "{r}");
        assert_eq!(r["status"], "RECOGNIZED", "{r}");
    }
    for (id, ids_before) in kept_segments {
        let oid = mongodb::bson::oid::ObjectId::parse_str(&id).unwrap();
        let ids_after: HashSet<_> = app
            .store
            .segments_of(oid)
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(
            ids_before, ids_after,
            "file {id} was diarized again after resuming"
        );
    }
}

/// Acceptance 3: starting a running batch again queues nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn starting_a_running_batch_again_queues_nothing_twice() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let clips: Vec<_> = zeroth_clips().into_iter().take(3).collect();
    app.copy_into_batch("twice", &clips);
    app.wait_registered("twice", 3).await;
    app.get_ok("/trd/transcription/start/batch/twice").await;
    let again = app.get_ok("/trd/transcription/start/batch/twice").await;
    assert_eq!(again.as_object().unwrap().len(), 3);
    // A single file start on a RUNNING file is refused, not queued.
    let list = app.get_ok("/trd/audiofile/list/batch/twice").await;
    let running = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["control"] == "RUNNING");
    if let Some(r) = running {
        let (status, body) = app
            .get(&format!(
                "/trd/transcription/start/audiofile/{}",
                r["_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["status"], 409);
    }

    let done = app.wait_batch_done("twice", Duration::from_secs(600)).await;
    for r in &done {
        assert_eq!(r["control"], "FINISHED");
        let oid = mongodb::bson::oid::ObjectId::parse_str(r["_id"].as_str().unwrap()).unwrap();
        let segments = app.store.segments_of(oid).await.unwrap();
        assert_eq!(
            segments.len() as u64,
            r["total_segments"].as_u64().unwrap(),
            "{r}"
        );
        let distinct: HashSet<(u32, u64)> = segments
            .iter()
            .map(|s| (s.channel, (s.start * 1000.0) as u64))
            .collect();
        assert_eq!(
            distinct.len(),
            segments.len(),
            "duplicate segments in {}",
            r["filename"]
        );
        assert!(segments
            .iter()
            .all(|s| s.status != trd_core::domain::SegmentStatus::Processing));
    }
    // Nothing is left in the queues: every hint was consumed exactly as far as it needed.
    for stage in trd_core::domain::Stage::ALL {
        assert_eq!(
            app.queue.depth(stage).await.unwrap(),
            0,
            "{stage} queue not empty"
        );
    }
}
