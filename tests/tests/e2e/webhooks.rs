//! File management and webhooks as the vendor's client library uses them (contract sections
//! 2, 3 and 6), with a real HTTP server receiving the callbacks.

use std::time::Duration;

use serde_json::Value;
use trd_tests::app::{spawn_app, spawn_app_with, Workers};
use trd_tests::data;
use trd_tests::receiver::Receiver;

fn clip() -> std::path::PathBuf {
    data::path("ko/zeroth-104/104_003_0294.wav")
}

async fn upload(
    app: &trd_tests::app::TestApp,
    path: &std::path::Path,
    batch: Option<&str>,
) -> reqwest::Response {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let mut form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(bytes).file_name(name),
    );
    if let Some(b) = batch {
        form = form.text("batch", b.to_owned());
    }
    app.http
        .post(app.url("/trd/audiofile/upload/"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

fn is_object_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Acceptance 1: whoami, validate, upload without a batch, start with two webhooks, both
/// callbacks with token and full result, fetch the result, delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_vendor_client_flow_works_unchanged() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let receiver = Receiver::start("127.0.0.1:0").await;

    assert_eq!(
        app.get_ok("/trd/webhook/whoami").await,
        Value::String("127.0.0.1".into())
    );

    let port = receiver.addr.port();
    let validated = app
        .http
        .post(app.url(&format!(
            "/trd/webhook/validate/127.0.0.1/{port}?timeout=2&retries=1"
        )))
        .json(&serde_json::json!({"crt": "", "token": "s3cret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(validated.status(), 200);
    assert_eq!(validated.json::<Value>().await.unwrap(), Value::Bool(true));
    let (status, closed) = app.get("/trd/webhook/validate/127.0.0.1/1").await;
    assert_eq!((status, closed), (200, Value::Bool(false)));

    let answer: Value = upload(&app, &clip(), None).await.json().await.unwrap();
    let url = answer["104_003_0294.wav"]
        .as_str()
        .expect("the upload answers {filename: url}");
    let id = url.rsplit('/').next().unwrap().to_owned();
    assert!(is_object_id(&id), "{url}");
    assert!(app.workdir().join("104_003_0294.wav").is_file());
    let record = app.get_ok(&format!("/trd/audiofile/{id}")).await;
    assert_eq!(record["batch"], Value::Null);
    assert_eq!(record["control"], "IDLE");

    let (a, b) = (receiver.url("/hooks/a"), receiver.url("/hooks/b"));
    app.get_ok(&format!(
        "/trd/transcription/start/audiofile/{id}?webhook={a}&webhook={b}"
    ))
    .await;
    let callbacks = app
        .eventually("both callbacks", Duration::from_secs(300), || async {
            let got: Vec<_> = receiver
                .requests()
                .into_iter()
                .filter(|r| r.method == "POST")
                .collect();
            (got.len() >= 2).then_some(got)
        })
        .await;
    for path in [format!("/hooks/a/{id}"), format!("/hooks/b/{id}")] {
        let hits: Vec<_> = callbacks.iter().filter(|r| r.path == path).collect();
        assert_eq!(hits.len(), 1, "{path}: {callbacks:?}");
        let body = &hits[0].body;
        assert_eq!(hits[0].method, "POST");
        assert_eq!(body["token"], "s3cret");
        assert_eq!(body["_id"], id.as_str());
        assert_eq!(body["control"], "FINISHED");
        assert!(!body["segments"].as_array().unwrap().is_empty(), "{body}");
    }
    let result = app
        .get_ok(&format!("/trd/transcription/result/audiofile/{id}"))
        .await;
    assert_eq!(result["status"], "RECOGNIZED");
    let shown = app
        .eventually(
            "outcomes on the record",
            Duration::from_secs(10),
            || async {
                let r = app.get_ok(&format!("/trd/audiofile/{id}")).await;
                let hooks = r["webhooks"].as_array().cloned().unwrap_or_default();
                (hooks.len() == 2 && hooks.iter().all(|h| h["state"] == "DELIVERED"))
                    .then_some(hooks)
            },
        )
        .await;
    assert!(shown.iter().all(|h| h["attempts"] == 1), "{shown:?}");

    // Deleting the audio too is an admin's: the anonymous operator deletes the record.
    let on_disk = app
        .http
        .delete(app.url(&format!("/trd/audiofile/delete/{id}?deleteOnDisk=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(on_disk.status(), 403);
    let deleted = app
        .http
        .delete(app.url(&format!("/trd/audiofile/delete/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let (status, _) = app.get(&format!("/trd/audiofile/{id}")).await;
    assert_eq!(status, 404);
    assert!(app.workdir().join("104_003_0294.wav").exists());
    // Deleting a file started with webhooks tells them too.
    app.eventually("delete callbacks", Duration::from_secs(30), || async {
        let deleted: Vec<_> = receiver
            .requests()
            .into_iter()
            .filter(|r| r.body["event"] == "DELETED")
            .collect();
        (deleted.len() == 2).then_some(())
    })
    .await;
}

/// Acceptance 2: the receiver fails at first and the API restarts in between; each URL still
/// gets its callback, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callbacks_survive_a_failing_receiver_and_an_api_restart() {
    let _turn = trd_tests::turns::shared().await;
    let mut app = spawn_app_with(Workers::InProcess, |s| s.webhook_backoff_ms = 300).await;
    let receiver = Receiver::start("127.0.0.1:0").await;
    receiver.answer_with(500);
    app.copy_into_batch("hooks", &[clip()]);
    let records = app.wait_registered("hooks", 1).await;
    let id = records[0]["_id"].as_str().unwrap().to_owned();
    let (a, b) = (receiver.url("/a"), receiver.url("/b"));
    app.get_ok(&format!(
        "/trd/transcription/start/batch/hooks?webhook={a}&webhook={b}"
    ))
    .await;
    app.eventually("failed attempts", Duration::from_secs(300), || async {
        (receiver
            .requests()
            .iter()
            .filter(|r| r.answered == 500)
            .count()
            >= 2)
            .then_some(())
    })
    .await;

    app.restart_api().await;
    receiver.answer_with(200);
    app.eventually("successful callbacks", Duration::from_secs(60), || async {
        (receiver
            .requests()
            .iter()
            .filter(|r| r.answered == 200)
            .count()
            >= 2)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ok: Vec<String> = receiver
        .requests()
        .into_iter()
        .filter(|r| r.answered == 200)
        .map(|r| r.path)
        .collect();
    let mut sorted = ok.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![format!("/a/{id}"), format!("/b/{id}")],
        "each URL exactly once: {ok:?}"
    );
    let record = app.get_ok(&format!("/trd/audiofile/{id}")).await;
    for hook in record["webhooks"].as_array().unwrap() {
        assert_eq!(hook["state"], "DELIVERED");
        assert!(hook["attempts"].as_u64().unwrap() >= 2, "{hook}");
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Acceptance 3: a 1 GB upload streams (RSS grows < 50 MB); escaping names and oversized
/// uploads are refused with the documented codes, and nothing lands outside the work directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_stream_to_disk_and_hostile_names_are_refused() {
    let _turn = trd_tests::turns::alone().await;
    let app = spawn_app(Workers::None).await;
    const GIB: u64 = 1 << 30;
    let before = rss_bytes();
    let chunks =
        futures::stream::iter((0..1024).map(|_| Ok::<_, std::io::Error>(vec![7u8; 1 << 20])));
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(chunks), GIB)
            .file_name("big.wav");
    let form = reqwest::multipart::Form::new()
        .text("batch", "large")
        .part("files", part);
    let resp = app
        .http
        .post(app.url("/trd/audiofile/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let growth = rss_bytes().saturating_sub(before);
    println!("RSS growth over a 1 GiB upload: {} MB", growth / 1_000_000);
    assert!(growth < 50_000_000, "RSS grew by {growth} bytes");
    assert_eq!(
        std::fs::metadata(app.workdir().join("large/big.wav"))
            .unwrap()
            .len(),
        GIB
    );
    let listed = app.get_ok("/trd/audiofile/list/batch/large").await;
    assert_eq!(listed[0]["size"], GIB);

    let outside = app.workdir().parent().unwrap().to_path_buf();
    for (name, batch) in [
        ("../escape.wav", None),
        ("/tmp/abs.wav", None),
        ("ok.wav", Some("../up")),
        ("ok.wav", Some("a/b")),
    ] {
        let mut form = reqwest::multipart::Form::new().part(
            "files",
            reqwest::multipart::Part::bytes(b"RIFF0000".to_vec()).file_name(name),
        );
        if let Some(b) = batch {
            form = form.text("batch", b);
        }
        let resp = app
            .http
            .post(app.url("/trd/audiofile/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{name} {batch:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["status"], 400);
    }
    assert!(!outside.join("escape.wav").exists() && !std::path::Path::new("/tmp/abs.wav").exists());
    assert!(!outside.join("up").exists());

    // The same name twice in a batch is a conflict, not an overwrite.
    assert_eq!(upload(&app, &clip(), Some("dup")).await.status(), 200);
    let again = upload(&app, &clip(), Some("dup")).await;
    assert_eq!(again.status(), 409);

    let small = spawn_app_with(Workers::None, |s| s.upload_limit_bytes = 100_000).await;
    let resp = upload(&small, &clip(), None).await;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["status"], 413);
    assert!(std::fs::read_dir(small.workdir())
        .unwrap()
        .flatten()
        .all(|e| e.file_name().to_string_lossy().starts_with('.')));
}

/// Acceptance 4: a target outside the allow-list is refused before any connection is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_outside_the_allow_list_are_never_contacted() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::None, |s| {
        s.webhook_allow = vec!["127.0.0.1/32".into()]
    })
    .await;
    let outsider = Receiver::start("127.0.0.2:0").await;
    let port = outsider.addr.port();

    let (status, body) = app
        .get(&format!("/trd/webhook/validate/127.0.0.2/{port}"))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("allow-list"));
    let (status, body) = app.get("/trd/webhook/validate/169.254.169.254/80").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("link-local"));

    app.copy_into_batch("guarded", &[clip()]);
    let records = app.wait_registered("guarded", 1).await;
    let id = records[0]["_id"].as_str().unwrap();
    let hook = outsider.url("/x");
    let (status, body) = app
        .get(&format!(
            "/trd/transcription/start/audiofile/{id}?webhook={hook}"
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        app.get_ok(&format!("/trd/audiofile/{id}")).await["control"],
        "IDLE"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(outsider.connections(), 0, "a refused target was contacted");
}
