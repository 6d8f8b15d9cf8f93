//! The normalizer inside the pipeline: honest metadata on the record, redundant channels
//! processed once, broken files ending FAILED with a reason, stored PCM removed on reset and
//! delete.

use std::process::Command;
use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use serde_json::Value;
use trd_tests::app::{spawn_app_with, Workers};
use trd_tests::data;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_tell_the_truth_and_failures_are_data() {
    let _turn = trd_tests::turns::shared().await;
    // Finished files keep their normalized audio here, to show it going on reset and delete.
    let app = spawn_app_with(Workers::InProcess, |s| s.pcm_retention_seconds = 3_600).await;
    let staging = tempfile::tempdir().unwrap();
    let redundant = staging.path().join("same_on_both.wav");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(data::path("dialogues/dlg_104_110.wav"))
        .args(["-ac", "2"])
        .arg(&redundant)
        .status()
        .expect("ffmpeg (installed by scripts/lib/provision-test.sh)");
    assert!(status.success());
    let notes = staging.path().join("notes.wav");
    std::fs::write(&notes, "minutes of the meeting, not audio\n".repeat(40)).unwrap();
    app.copy_into_batch(
        "mixed",
        &[
            data::path("dialogues/dlg_104_110_stereo_8k_ulaw.wav"),
            redundant,
            notes,
        ],
    );
    app.wait_registered("mixed", 3).await;
    app.get_ok("/trd/transcription/start/batch/mixed").await;
    let done = app.wait_batch_done("mixed", Duration::from_secs(600)).await;
    let by_name = |n: &str| -> Value { done.iter().find(|r| r["filename"] == n).unwrap().clone() };

    let phone = by_name("dlg_104_110_stereo_8k_ulaw.wav");
    assert_eq!(phone["control"], "FINISHED", "{phone}");
    let channels = phone["audioChannels"].as_array().unwrap();
    assert_eq!(channels.len(), 2);
    for ch in channels {
        assert_eq!(ch["bandwidth"], "4000");
        assert!(
            (ch["duration"].as_f64().unwrap() - 57.062).abs() < 0.03,
            "{ch}"
        );
    }
    assert_eq!(phone["info"]["InputSamplingRate"], "8000");
    assert_eq!(phone["info"]["OutputSamplingRate"], "16000");
    assert_eq!(phone["info"]["Duration"], "00:00:57.062");
    assert_eq!(phone["info"]["RedundantChannel"], false);
    assert!(phone["info"]["FileModifiedDate"]
        .as_str()
        .unwrap()
        .starts_with("UTC 20"));
    let phone_id = ObjectId::parse_str(phone["_id"].as_str().unwrap()).unwrap();
    let segments = app.store.segments_of(phone_id).await.unwrap();
    assert!(segments.iter().any(|s| s.channel == 1) && segments.iter().any(|s| s.channel == 2));

    let twin = by_name("same_on_both.wav");
    assert_eq!(twin["control"], "FINISHED", "{twin}");
    assert_eq!(twin["info"]["RedundantChannel"], true);
    assert_eq!(twin["info"]["Channels"], "2");
    assert_eq!(twin["audioChannels"].as_array().unwrap().len(), 1);
    let twin_id = ObjectId::parse_str(twin["_id"].as_str().unwrap()).unwrap();
    let twin_segments = app.store.segments_of(twin_id).await.unwrap();
    assert!(!twin_segments.is_empty() && twin_segments.iter().all(|s| s.channel == 1));

    let broken = by_name("notes.wav");
    assert_eq!(broken["control"], "FAILED", "{broken}");
    assert_eq!(broken["status"], "NORMALIZING");
    assert_eq!(broken["error"]["stage"], "NORMALIZING");
    assert!(
        broken["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("not a recognised audio file"),
        "{broken}"
    );

    // Stored audio goes with the record on reset and delete.
    assert!(app.store.count_pcm_chunks(phone_id).await.unwrap() > 0);
    app.get_ok(&format!("/trd/transcription/reset/audiofile/{phone_id}"))
        .await;
    assert_eq!(app.store.count_pcm_chunks(phone_id).await.unwrap(), 0);
    assert!(app.store.segments_of(phone_id).await.unwrap().is_empty());
    let resp = app
        .http
        .delete(app.url(&format!("/trd/audiofile/delete/{twin_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(app.store.count_pcm_chunks(twin_id).await.unwrap(), 0);
    assert!(app.store.segments_of(twin_id).await.unwrap().is_empty());
    assert!(
        app.workdir().join("mixed/same_on_both.wav").exists(),
        "deleteOnDisk was not asked"
    );
}
