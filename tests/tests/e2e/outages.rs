//! Reliability acceptance 2: RabbitMQ killed (SIGKILL) mid-batch and down for 30 s, then
//! MongoDB the same; the batch finishes with the text a batch that met no outage gets.
//! The batch completes without intervention (workers and API reconnect by themselves), and
//! while each dependency is down the API answers 503 naming it — promptly, never a 500 or a
//! hang. The test runs its own private broker and database: restarting the shared ones would
//! disturb the tests running beside it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use trd_tests::app::{spawn_app_with, TestApp, Workers};
use trd_tests::data;
use trd_tests::services::{PrivateMongo, PrivateRabbit};

fn clips() -> Vec<std::path::PathBuf> {
    data::references("ko/zeroth-104")
        .keys()
        .map(|f| data::path("ko/zeroth-104").join(f))
        .chain([data::path("dialogues/dlg_104_109.flac")])
        .collect()
}

/// A request sent while a dependency is down: it must come back quickly with 503 and a JSON
/// error body that names the dependency.
async fn expect_unavailable(app: &TestApp, path: &str, dependency: &str) -> f64 {
    let started = Instant::now();
    let response =
        tokio::time::timeout(Duration::from_secs(15), app.http.get(app.url(path)).send())
            .await
            .unwrap_or_else(|_| panic!("GET {path} hung while {dependency} was down"))
            .expect("the API answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    let seconds = started.elapsed().as_secs_f64();
    println!("GET {path} while {dependency} was down: {status} in {seconds:.1} s: {body}");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["status"], 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(dependency),
        "the message names {dependency}: {body}"
    );
    assert!(seconds < 10.0, "answered in {seconds:.1} s");
    seconds
}

/// Waits until at least `n` files of the batch are past normalization.
async fn progressed(app: &TestApp, batch: &str, n: usize) {
    app.eventually("progress", Duration::from_secs(300), || async {
        let list = app
            .get_ok(&format!("/trd/audiofile/list/batch/{batch}"))
            .await;
        let records = list.as_array().cloned().unwrap_or_default();
        let moved = records
            .iter()
            .filter(|r| !matches!(r["status"].as_str(), Some("INITIAL" | "NORMALIZING")))
            .count();
        let open = records.iter().any(|r| r["control"] == "RUNNING");
        (moved >= n && open).then_some(())
    })
    .await
}

/// Asserts that every record FINISHED with as many segments as it counts, none twice.
async fn assert_each_segment_once(app: &TestApp, done: &[Value]) {
    for record in done {
        assert_eq!(record["control"], "FINISHED", "{record}");
        let id = mongodb::bson::oid::ObjectId::parse_str(record["_id"].as_str().unwrap()).unwrap();
        let segments = app.store.segments_of(id).await.unwrap();
        assert_eq!(
            segments.len() as i64,
            record["total_segments"].as_i64().unwrap(),
            "{record}"
        );
        let distinct: HashSet<_> = segments
            .iter()
            .map(|s| (s.channel, (s.start * 1000.0) as i64))
            .collect();
        assert_eq!(
            distinct.len(),
            segments.len(),
            "duplicate segments: {record}"
        );
    }
}

/// How long each dependency stays dead.
const DOWN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_batch_survives_a_broker_restart_and_a_database_restart() {
    let _turn = trd_tests::turns::alone().await;
    let services = tempfile::tempdir().unwrap();
    let mut mongo = PrivateMongo::start(&services.path().join("mongo"));
    let rabbit = PrivateRabbit::start(&services.path().join("rabbit"));
    let app = spawn_app_with(Workers::Processes, |s| {
        s.mongodb_uri = mongo.uri();
        s.amqp_uri = rabbit.uri();
        s.lease_seconds = 10;
    })
    .await;
    let files = clips();
    app.copy_into_batch("calls", &files);
    app.copy_into_batch("probe", &files[..1]);
    app.wait_registered("calls", files.len()).await;
    let probe = app.wait_registered("probe", 1).await[0]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    app.get_ok("/trd/transcription/start/batch/calls").await;

    // RabbitMQ goes away mid-batch: starting a file needs the queue, so the API says 503.
    progressed(&app, "calls", 2).await;
    rabbit.kill();
    let down = Instant::now();
    println!(
        "RabbitMQ killed at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    expect_unavailable(
        &app,
        &format!("/trd/transcription/start/audiofile/{probe}"),
        "RabbitMQ",
    )
    .await;
    let record = app.get_ok(&format!("/trd/audiofile/{probe}")).await;
    assert_eq!(
        record["control"], "IDLE",
        "a start that could not be queued is undone"
    );
    tokio::time::sleep(DOWN.saturating_sub(down.elapsed())).await;
    rabbit.start_again();
    println!("RabbitMQ back at {:.1} s", started.elapsed().as_secs_f64());
    app.eventually(
        "the API to reach RabbitMQ again",
        Duration::from_secs(30),
        || async {
            let (code, _) = app
                .get(&format!("/trd/transcription/start/audiofile/{probe}"))
                .await;
            (code == 200).then_some(())
        },
    )
    .await;

    // MongoDB goes away mid-batch: every read needs it.
    progressed(&app, "calls", 6).await;
    mongo.kill();
    let down = Instant::now();
    println!("MongoDB killed at {:.1} s", started.elapsed().as_secs_f64());
    expect_unavailable(&app, "/trd/audiofile/list/batch/calls", "MongoDB").await;
    expect_unavailable(
        &app,
        &format!("/trd/transcription/status/audiofile/{probe}"),
        "MongoDB",
    )
    .await;
    tokio::time::sleep(DOWN.saturating_sub(down.elapsed())).await;
    mongo.start_again();
    println!("MongoDB back at {:.1} s", started.elapsed().as_secs_f64());

    let done = app.wait_batch_done("calls", Duration::from_secs(420)).await;
    println!("batch done at {:.1} s", started.elapsed().as_secs_f64());
    assert_each_segment_once(&app, &done).await;
    let probe_done = app.wait_batch_done("probe", Duration::from_secs(120)).await;
    assert_eq!(probe_done[0]["control"], "FINISHED");

    // The same files in a batch that met no outage: the same text, byte for byte.
    app.assert_finished_as_undisturbed(&done, &files).await;
    drop(app);
    rabbit.stop();
    mongo.stop();
}

/// A broker whose consumer timeout is shorter than the work (a stock RabbitMQ's is 30 min, a
/// stage may take 2 h): it takes the deliveries back and closes the channels of the workers
/// still busy with them. The leases in MongoDB decide who works on a file, so the copies
/// redelivered meanwhile are stale hints, the busy workers finish and hand on, and the batch
/// ends with a clean batch's text, no file failed and no segment twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_timeout_shorter_than_the_work_costs_no_file() {
    let services = tempfile::tempdir().unwrap();
    let rabbit = PrivateRabbit::start_with_consumer_timeout(
        &services.path().join("rabbit"),
        Duration::from_secs(1),
    );
    let app = spawn_app_with(Workers::Processes, |s| s.amqp_uri = rabbit.uri()).await;
    let files = clips();
    app.copy_into_batch("calls", &files);
    app.wait_registered("calls", files.len()).await;
    app.get_ok("/trd/transcription/start/batch/calls").await;
    let done = app.wait_batch_done("calls", Duration::from_secs(420)).await;
    let log = rabbit.log();
    let timeouts = log
        .matches("has timed out waiting for delivery acknowledgement")
        .count();
    println!("the broker timed out {timeouts} deliveries");
    assert!(
        timeouts > 0,
        "the broker never timed a delivery out:\n{log}"
    );
    assert_each_segment_once(&app, &done).await;

    // The same files through the shared broker, whose timeout is a day.
    let clean_app = trd_tests::app::spawn_app(Workers::InProcess).await;
    let clean = clean_app.clean_run("clean", &files).await;
    assert_eq!(
        app.texts_by_name(&done).await,
        clean_app.texts_by_name(&clean).await
    );
}
