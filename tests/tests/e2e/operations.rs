//! What operators poll: `/trd/health` and `/trd/metrics` (issue "Operator experience",
//! acceptance 4), against the real API and workers.

use std::time::Duration;

use serde_json::Value;
use trd_tests::app::{spawn_app, TestApp, Workers};
use trd_tests::tools::{promtool_check_metrics, python_json};

const PARSE_METRICS: &str = include_str!("../../scripts/parse_metrics.py");

/// One scrape of `/trd/metrics`, passed by `promtool check metrics` (Prometheus's own strict
/// parser and linter: a problem fails the test), as the Prometheus client library parses it.
struct Scrape(Value);

impl Scrape {
    async fn take(app: &TestApp) -> Self {
        let response = app.http.get(app.url("/trd/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        let text = response.text().await.unwrap();
        tokio::task::block_in_place(|| {
            if let Err(problems) = promtool_check_metrics(&text) {
                panic!("{problems}\n{text}");
            }
            Scrape(python_json(PARSE_METRICS, &[&text]))
        })
    }

    /// Sum of the samples called `name` whose labels include every pair of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s[0] == name)
            .filter(|s| labels.iter().all(|(k, v)| s[1][*k] == *v))
            .map(|s| s[2].as_f64().unwrap_or(f64::INFINITY))
            .sum()
    }

    fn family(&self, name: &str) -> &str {
        self.0["families"][name].as_str().unwrap_or("")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_as_a_batch_runs() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let clips = ["104_003_0019.wav", "104_003_0193.wav"]
        .map(|f| trd_tests::data::path(&format!("ko/zeroth-104/{f}")));
    app.copy_into_batch("m", &clips);
    app.wait_registered("m", 2).await;

    let before = Scrape::take(&app).await;
    assert_eq!(before.family("trd_http_requests"), "counter");
    assert_eq!(before.family("trd_queue_messages"), "gauge");
    assert_eq!(
        before.sum("trd_files", &[("control", "IDLE"), ("status", "INITIAL")]),
        2.0
    );
    assert_eq!(before.sum("trd_dependency_up", &[]), 2.0);
    assert_eq!(before.sum("trd_stage_duration_seconds_count", &[]), 0.0);
    // Every stage queue has its worker attached.
    for stage in ["normalize", "diarize", "recognize"] {
        let queue = format!("{}{stage}", app.settings.queue_prefix);
        assert!(
            before.sum("trd_queue_consumers", &[("queue", &queue)]) >= 1.0,
            "{queue}"
        );
    }
    let listed = before.sum(
        "trd_http_requests_total",
        &[
            ("route", "/trd/audiofile/list/batch/<batch>"),
            ("status", "200"),
        ],
    );
    assert!(listed >= 1.0);

    app.get_ok("/trd/transcription/start/batch/m").await;
    // promtool checks a scrape taken while the batch runs, too.
    let during = Scrape::take(&app).await;
    assert!(
        during.sum("trd_files", &[("control", "RUNNING")]) >= 1.0,
        "{:?}",
        during.0
    );
    let records = app.wait_batch_done("m", Duration::from_secs(120)).await;
    assert!(
        records.iter().all(|r| r["control"] == "FINISHED"),
        "{records:?}"
    );

    let after = Scrape::take(&app).await;
    // Families without samples are left out: the stage families appear once a stage has run.
    assert_eq!(before.family("trd_stage_duration_seconds"), "");
    assert_eq!(after.family("trd_stage_duration_seconds"), "histogram");
    assert_eq!(after.family("trd_stage_audio_seconds"), "counter");
    assert_eq!(
        after.sum(
            "trd_files",
            &[("control", "FINISHED"), ("status", "RECOGNIZED")]
        ),
        2.0
    );
    assert_eq!(after.sum("trd_files", &[("control", "IDLE")]), 0.0);
    let audio: f64 = records
        .iter()
        .map(|r| r["audioChannels"][0]["duration"].as_f64().unwrap())
        .sum();
    for stage in ["normalize", "diarize"] {
        assert_eq!(
            after.sum("trd_stage_duration_seconds_count", &[("stage", stage)]),
            2.0,
            "{stage}"
        );
        let counted = after.sum("trd_stage_audio_seconds_total", &[("stage", stage)]);
        assert!(
            (counted - audio).abs() < 0.01,
            "{stage}: {counted} vs {audio}"
        );
        // The +Inf bucket holds every run; the histogram is cumulative.
        assert_eq!(
            after.sum(
                "trd_stage_duration_seconds_bucket",
                &[("stage", stage), ("le", "+Inf")]
            ),
            2.0
        );
    }
    let segments: f64 = records
        .iter()
        .map(|r| r["total_segments"].as_f64().unwrap())
        .sum();
    assert_eq!(
        after.sum(
            "trd_stage_duration_seconds_count",
            &[("stage", "recognize")]
        ),
        segments
    );
    let speech = after.sum("trd_stage_audio_seconds_total", &[("stage", "recognize")]);
    assert!(speech > 0.0 && speech <= audio + 0.01, "{speech}");
    let rtf = after.sum("trd_recognizer_real_time_factor", &[]);
    let wall = after.sum("trd_stage_duration_seconds_sum", &[("stage", "recognize")]);
    assert!(rtf > 0.0 && (rtf - wall / speech).abs() < 1e-6, "{rtf}");
    // Polling by wait_batch_done was counted, per route template.
    assert!(
        after.sum(
            "trd_http_requests_total",
            &[
                ("route", "/trd/audiofile/list/batch/<batch>"),
                ("status", "200")
            ]
        ) > listed
    );
    assert_eq!(
        after.sum(
            "trd_http_requests_total",
            &[
                ("route", "/trd/transcription/start/batch/<batch>"),
                ("status", "200")
            ]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_dependencies_and_consumers_and_503_when_a_queue_is_gone() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let prefix = &app.settings.queue_prefix;
    let stages = ["normalize", "diarize", "recognize"];
    // The workers subscribe in the background once started; on a busy machine that takes a
    // moment.
    let health = app
        .eventually(
            "every stage's worker consuming",
            Duration::from_secs(20),
            || async {
                let health = app.get_ok("/trd/health").await;
                stages
                    .iter()
                    .all(|stage| {
                        health["queues"][format!("{prefix}{stage}")]["consumers"].as_u64()
                            >= Some(1)
                    })
                    .then_some(health)
            },
        )
        .await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["mongodb"]["ok"], true);
    assert_eq!(health["rabbitmq"]["ok"], true);
    for stage in stages {
        let queue = &health["queues"][format!("{prefix}{stage}")];
        assert!(queue["consumers"].as_u64().unwrap() >= 1, "{health}");
        assert_eq!(queue["messages"], 0);
        // The dead-letter queue has its consumer (the worker that fails poisoned files).
        assert!(health["queues"][format!("{prefix}{stage}.dead")]["consumers"].is_u64());
    }

    // The broker answers but the service's queues are gone: not healthy.
    app.queue.delete_all().await.unwrap();
    let (status, body) = app.get("/trd/health").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["mongodb"]["ok"], true);
    assert_eq!(body["rabbitmq"]["ok"], false);
    assert_eq!(body["error"]["status"], 503);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("RabbitMQ is unavailable"));
}
