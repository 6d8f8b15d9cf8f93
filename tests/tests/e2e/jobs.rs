//! The job core every protocol face uses, on its own: audio submitted as bytes and as a stream,
//! options checked, started, followed segment by segment to the end, and deleted; against real
//! MongoDB, RabbitMQ and workers.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use trd_api::jobs::{Audio, JobError, Jobs};
use trd_core::domain::{BatchName, Control, FileLocation, FileName, StartOptions, Status};
use trd_tests::app::{spawn_app, TestApp, Workers};
use trd_tests::data;

fn jobs_of(app: &TestApp) -> Jobs {
    Jobs::new(
        Arc::new(app.settings.clone()),
        app.store.clone(),
        app.queue.clone(),
    )
}

fn location(batch: &str, file: &str) -> FileLocation {
    FileLocation {
        batch: Some(BatchName::parse(batch).unwrap()),
        filename: FileName::parse(file).unwrap(),
    }
}

fn a_clip() -> std::path::PathBuf {
    let clips = data::references("ko/zeroth-104");
    let first = clips.keys().next().expect("reference clips");
    data::path("ko/zeroth-104").join(first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_submitted_as_bytes_is_followed_to_its_result() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let jobs = jobs_of(&app);
    let audio = std::fs::read(a_clip()).unwrap();

    let here = location("jobs", "clip.wav");
    let record = jobs
        .submit(&here, Audio::Bytes(audio.clone()))
        .await
        .unwrap();
    assert_eq!(
        (record.control, record.status),
        (Control::Idle, Status::Initial)
    );
    assert_eq!(record.size as usize, audio.len());
    assert_eq!(record.md5, format!("{:x}", md5::compute(&audio)));
    assert!(
        here.path_in(app.workdir()).is_file(),
        "the audio is in the work directory"
    );

    // A name is never taken twice, and the first file stays as it was.
    let again = jobs.submit(&here, Audio::Bytes(b"other".to_vec())).await;
    assert!(matches!(again, Err(JobError::NameTaken(_))), "{again:?}");

    // Options the service cannot honour are refused before anything is queued.
    let unknown_model = StartOptions {
        model: Some("no-such-model".into()),
        ..StartOptions::default()
    };
    let refused = jobs.check_options(unknown_model).await;
    assert!(
        matches!(refused, Err(JobError::InvalidOptions(_))),
        "{refused:?}"
    );
    assert_eq!(jobs.record(record.id).await.unwrap().control, Control::Idle);

    let defaults = jobs.check_options(StartOptions::default()).await.unwrap();
    jobs.start(record.id, &defaults).await.unwrap();
    let twice = jobs.start(record.id, &defaults).await;
    assert!(
        matches!(twice, Err(JobError::NotStartable { .. })),
        "{twice:?}"
    );

    let updates: Vec<_> = jobs
        .follow(record.id, Duration::from_millis(200))
        .collect()
        .await;
    let last = updates.last().expect("updates").as_ref().expect("no error");
    assert_eq!(last.record.control, Control::Finished);
    assert!(last.is_final());
    let followed: Vec<_> = updates
        .iter()
        .flat_map(|u| u.as_ref().unwrap().recognized.iter().map(|s| s.id))
        .collect();
    let (_, segments) = jobs.result(record.id).await.unwrap();
    assert!(!segments.is_empty());
    assert_eq!(
        followed.len(),
        segments.len(),
        "every segment is reported exactly once while following"
    );
    for s in &segments {
        assert!(followed.contains(&s.id));
    }

    let removed = jobs.delete(record.id, true).await.unwrap();
    assert_eq!(removed.id, record.id);
    assert!(!here.path_in(app.workdir()).exists(), "deleted on disk");
    assert!(matches!(
        jobs.record(record.id).await,
        Err(JobError::NotFound(_))
    ));
    assert!(app.store.segments_of(record.id).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_submitted_as_a_stream_is_registered_whole() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;
    let jobs = jobs_of(&app);
    let audio = std::fs::read(a_clip()).unwrap();
    let file = tokio::fs::File::open(a_clip()).await.unwrap();

    let here = location("streams", "day1/clip.wav");
    let record = jobs
        .submit(&here, Audio::Stream(Box::pin(file)))
        .await
        .unwrap();
    assert_eq!(record.filename, "day1/clip.wav");
    assert_eq!(record.md5, format!("{:x}", md5::compute(&audio)));
    assert_eq!(std::fs::read(here.path_in(app.workdir())).unwrap(), audio);

    // Following a job that is deleted meanwhile ends with "not found".
    jobs.delete(record.id, false).await.unwrap();
    let mut follow = Box::pin(jobs.follow(record.id, Duration::from_millis(50)));
    assert!(matches!(
        follow.next().await,
        Some(Err(JobError::NotFound(_)))
    ));
    assert!(follow.next().await.is_none());
}
