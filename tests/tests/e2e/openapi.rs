//! The OpenAPI document and the Swagger UI (issue "Operator experience", acceptance 1 and 2):
//! the document validates, real responses match it, schemathesis finds no 5xx and no response
//! contradicting it, and the Swagger UI works in headless Chromium.

use std::time::{Duration, Instant};

use trd_core::domain::{Control, SegmentStatus, Status};
use trd_tests::app::{spawn_app, TestApp, Workers};
use trd_tests::fixtures::{an_hour_ago, insert_batch, FileSpec};
use trd_tests::tools::{artifacts_dir, python_json, tool};

const CHECK_OPENAPI: &str = include_str!("../../scripts/check_openapi.py");

/// A batch in every interesting state, with segments, so that records, statuses and results
/// carry all their optional fields.
async fn seed(app: &TestApp) -> Vec<String> {
    let done = FileSpec::new("done.wav", Control::Finished, Status::Recognized, 32_000)
        .channels(&[10.0])
        .segments(&[
            (0.5, 3.0, SegmentStatus::Recognized),
            (3.5, 6.0, SegmentStatus::NoMatch),
        ]);
    let running = FileSpec::new("running.wav", Control::Running, Status::Recognizing, 64_000)
        .channels(&[20.0, 20.0])
        .segments(&[(1.0, 2.0, SegmentStatus::Processing)]);
    let idle = FileSpec::new("idle.wav", Control::Idle, Status::Initial, 1_000);
    insert_batch(&app.store, "seeded", &[done, running, idle], an_hour_ago())
        .await
        .iter()
        .map(|id| id.to_hex())
        .collect()
}

/// Sum of `trd_http_requests_total` over every route: the requests the API answered.
async fn requests_answered(app: &TestApp) -> f64 {
    let text = app
        .http
        .get(app.url("/trd/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("trd_http_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_validates_and_real_responses_match_it() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;
    let ids = seed(&app).await;
    let paths: Vec<String> = [
        "/trd/audiofile/list".to_owned(),
        "/trd/audiofile/list/batch/seeded".to_owned(),
        format!("/trd/audiofile/{}", ids[0]),
        format!("/trd/transcription/status/audiofile/{}", ids[0]),
        "/trd/transcription/status/batch/seeded".to_owned(),
        format!("/trd/transcription/result/audiofile/{}", ids[0]),
        format!("/trd/transcription/result/audiofile/{}?format=csv", ids[0]),
        format!("/trd/transcription/result/audiofile/{}?format=srt", ids[1]),
        "/trd/transcription/result/batch/seeded?format=vtt".to_owned(),
        "/trd/query/collection/segments".to_owned(),
        "/trd/audiofile/00000000000000000000abcd".to_owned(),
        "/trd/health".to_owned(),
        "/trd/metrics".to_owned(),
        "/trd/webhook/whoami".to_owned(),
    ]
    .into();
    let base = app.base.clone();
    let mut args = vec![base.as_str()];
    args.extend(paths.iter().map(String::as_str));
    let report = tokio::task::block_in_place(|| python_json(CHECK_OPENAPI, &args));
    eprintln!("{report}");
    assert!(report["version"].as_str().unwrap().starts_with("3."));
    assert!(report["operations"].as_u64().unwrap() >= 24, "{report}");
    let checked = report["checked"].as_array().unwrap();
    assert_eq!(checked.len(), paths.len());
    let statuses: Vec<u64> = checked
        .iter()
        .map(|c| c["status"].as_u64().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        paths.len() - 1
    );
    assert!(statuses.contains(&404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_contradicting_the_document() {
    let _turn = trd_tests::turns::shared().await;
    // Workers run: the recognize-now operations answer once a normalizer has read the audio.
    let app = spawn_app(Workers::InProcess).await;
    let mut ids = seed(&app).await;
    app.copy_into_batch(
        "clips",
        &[trd_tests::data::path("ko/zeroth-104/104_003_0019.wav")],
    );
    let clip = app.wait_registered("clips", 1).await;
    ids.push(clip[0]["_id"].as_str().unwrap().to_owned());
    let report = artifacts_dir("schemathesis");
    // Half the generated ids and batch names are real ones, so that operations reach records
    // in every state rather than answering 404.
    let config = report.join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[dictionaries.ids]\nvalues = {ids:?}\n\n\
             [dictionaries.batches]\nvalues = [\"seeded\", \"clips\"]\n\n\
             [parameters]\n\
             \"path.id\" = {{ dictionary = \"ids\", probability = 0.5 }}\n\
             \"path.batch\" = {{ dictionary = \"batches\", probability = 0.5 }}\n\n\
             [auth]\n\
             # It calls anonymously from loopback (scope operate): no sign-up through the\n\
             # DeepSpeech registration it finds in the document.\n\
             auto-signup = false\n"
        ),
    )
    .unwrap();
    let before = requests_answered(&app).await;
    let started = Instant::now();
    let (base, dir) = (app.base.clone(), report.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(tool("schemathesis"))
            .arg("--config-file")
            .arg(&config)
            .arg("run")
            .arg(format!("{base}/trd/openapi.json"))
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_headers_conformance,response_schema_conformance",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "40",
                // One worker: with two, schemathesis's threads parse lambdas' sources with
                // Python's `ast` at once, which this machine's Python 3.11 cannot do safely
                // (a SystemError, "AST constructor recursion depth mismatch", now and then).
                "--workers",
                "1",
                "--seed",
                "9",
                "--request-timeout",
                "30",
                "--no-color",
                "--generation-database",
                "none",
                "--report",
                "junit",
                "--report-dir",
            ])
            .arg(&dir)
            .current_dir(&dir)
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    std::fs::write(report.join("output.txt"), stdout.as_bytes()).unwrap();
    // The requests schemathesis made, as the API itself counted them (minus our own scrape).
    let sent = requests_answered(&app).await - before - 1.0;
    eprintln!(
        "schemathesis: {sent} requests in {:.0} s; report in {}\n{}",
        elapsed.as_secs_f64(),
        report.display(),
        stdout
            .lines()
            .rev()
            .take(25)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}"
    );
    assert!(sent >= 500.0, "only {sent} requests were made");
    assert!(elapsed < Duration::from_secs(240));
}

const SWAGGER_UI: &str = include_str!("../../scripts/swagger_ui.py");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_lists_the_transcription_endpoints_and_tries_one_out_in_chromium() {
    let _turn = trd_tests::turns::shared().await;
    // Nothing is anonymous: "Try it out" works only once "Authorize" holds a key.
    let app =
        trd_tests::app::spawn_app_with(Workers::None, |s| s.trusted_networks = Vec::new()).await;
    seed(&app).await;
    let (_, key) = app.create_key(&["read"], None).await;
    let screenshot = artifacts_dir("swagger-ui").join("swagger-ui.png");
    let _ = std::fs::remove_file(&screenshot);
    let shot = screenshot.display().to_string();
    let args = [app.base.as_str(), "seeded", shot.as_str(), key.as_str()];
    let page = tokio::task::block_in_place(|| python_json(SWAGGER_UI, &args));
    eprintln!("Swagger UI screenshot: {shot}");

    let listed: Vec<String> = page["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| format!("{} {}", op[0].as_str().unwrap(), op[1].as_str().unwrap()))
        .collect();
    for op in [
        "GET /trd/transcription/start/batch/{batch}",
        "GET /trd/transcription/stop/audiofile/{id}",
        "GET /trd/transcription/reset/batch/{batch}",
        "GET /trd/transcription/status/batch/{batch}",
        "GET /trd/transcription/result/batch/{batch}",
        "GET /trd/transcription/result/audiofile/{id}",
        "POST /trd/audiofile/upload",
        "GET /trd/metrics",
    ] {
        assert!(
            listed.contains(&op.to_owned()),
            "{op} missing from {listed:?}"
        );
    }
    // "Try it out" really called the API from the page, with the key "Authorize" took, and
    // got the seeded batch's figures.
    assert_eq!(page["status"], "200", "{page}");
    let body: serde_json::Value = serde_json::from_str(page["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["batch"], "seeded");
    assert_eq!(body["total_files"], 3);
    let png = std::fs::read(&screenshot).expect("the screenshot was kept");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
}
