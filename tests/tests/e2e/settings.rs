//! The settings of the worker processes a test starts: the test's whole settings, through the
//! file they read, so that a setting the test changes reaches them.

use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use trd_core::domain::Status;
use trd_core::Settings;
use trd_tests::app::{spawn_app_with, test_settings, worker_command, Workers};
use trd_tests::fleet::Fleet;
use trd_tests::{data, settings_file};

#[tokio::test]
async fn the_settings_file_loads_back_as_the_same_settings() {
    let _turn = trd_tests::turns::shared().await;
    let workdir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(workdir.path());
    settings.sample_rate = 8_000;
    settings.max_segment_seconds = 7.5;
    settings
        .models
        .insert("other".to_owned(), workdir.path().join("other-model"));
    let path = settings_file::write(&settings);
    let loaded = Settings::from_figment(Settings::figment(&path, "default")).unwrap();
    assert_eq!(
        serde_json::to_value(&loaded).unwrap(),
        serde_json::to_value(&settings).unwrap()
    );
}

/// The normalizer process resamples to the test's sample rate, not the default 16 kHz.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_setting_reaches_the_worker_processes() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::None, |s| s.sample_rate = 8_000).await;
    let settings = app.settings.clone();
    let mut normalizer = Fleet::new();
    normalizer.add("trd-normalizer", move || {
        worker_command(&settings, "trd-normalizer")
    });
    app.copy_into_batch("rate", &[data::path("ko/zeroth-104/104_003_0019.wav")]);
    let registered = app.wait_registered("rate", 1).await;
    let id = ObjectId::parse_str(registered[0]["_id"].as_str().unwrap()).unwrap();
    app.get_ok("/trd/transcription/start/batch/rate").await;
    let record = app
        .eventually(
            "the normalizer process",
            Duration::from_secs(120),
            || async {
                let record = app.store.audiofile(id).await.ok()??;
                (record.status == Status::Normalized).then_some(record)
            },
        )
        .await;
    assert_eq!(record.info.unwrap().output_sampling_rate, "8000");
}
