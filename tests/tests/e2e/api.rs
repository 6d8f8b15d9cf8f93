//! The HTTP contract's error semantics and shapes, against the real API.

use trd_tests::app::{spawn_app, Workers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_with_the_right_status() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;

    let (status, body) = app.get("/trd/audiofile/5b76faed4d27fc0001331dcc").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["status"], 404);
    assert_eq!(body["error"]["reason"], "Not Found");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("5b76faed4d27fc0001331dcc"));

    for bad in [
        "not-an-id",
        "5B76FAED4D27FC0001331DCC",
        "5b76faed4d27fc0001331dc",
    ] {
        let (status, body) = app
            .get(&format!("/trd/transcription/status/audiofile/{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["status"], 400);
    }

    for bad in ["..", ".hidden", "%2e%2e", "a%00b"] {
        let (status, body) = app
            .get(&format!("/trd/transcription/start/batch/{bad}"))
            .await;
        assert!(status == 400 || status == 404, "{bad}: {status} {body}");
        assert_eq!(body["error"]["status"], status);
    }
    let (status, _) = app.get("/trd/transcription/start/batch/nobatch").await;
    assert_eq!(status, 404);

    let (status, body) = app.get("/trd/no/such/route").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["status"], 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_answer_with_and_without_trailing_slash_and_unknown_models_are_refused() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;
    assert_eq!(
        app.get_ok("/trd/audiofile/list").await,
        serde_json::json!([])
    );
    assert_eq!(
        app.get_ok("/trd/audiofile/list/").await,
        serde_json::json!([])
    );

    std::fs::write(app.workdir().join("note.wav"), b"RIFF").unwrap();
    let record = app.get_ok("/trd/audiofile/create/note.wav").await;
    assert_eq!(record["batch"], serde_json::Value::Null);
    assert_eq!(record["filename"], "note.wav");
    assert_eq!(record["size"], 4);
    assert_eq!(record["md5"], md5sum(b"RIFF"));
    assert!(record["create_date"].as_str().unwrap().ends_with(" GMT"));
    let id = record["_id"].as_str().unwrap().to_owned();
    // Registering again returns the same record rather than a second one.
    assert_eq!(
        app.get_ok("/trd/audiofile/create/note.wav/").await["_id"],
        id.as_str()
    );

    let (status, body) = app
        .get(&format!(
            "/trd/transcription/start/audiofile/{id}?lm.uri=klingon"
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("klingon"));
    let unchanged = app.get_ok(&format!("/trd/audiofile/{id}")).await;
    assert_eq!(unchanged["control"], "IDLE");

    let (status, _) = app
        .get("/trd/transcription/stop/audiofile/5b76faed4d27fc0001331dcc")
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .get(&format!("/trd/transcription/stop/audiofile/{id}"))
        .await;
    assert_eq!(status, 409, "{body}");
}

/// The record's md5 is computed by the service; check it against an independent tool.
fn md5sum(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("md5sum runs");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Opening and reading files is not changing them. The service opens files all the time
/// (registration hashes them, the normalizer decodes them, a ZIP reads them): once the events
/// of those opens sent every registered file back to registration, which opened it again, so
/// each file was looked up in MongoDB every few hundred milliseconds for as long as the
/// service ran (hundreds of queries a second for a contact centre's batch). Here 20 registered
/// files are read over and over: the database hears next to nothing about them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_registered_files_does_not_send_them_back_to_registration() {
    let services = tempfile::tempdir().unwrap();
    let mongo = trd_tests::services::PrivateMongo::start(&services.path().join("mongo"));
    let app = trd_tests::app::spawn_app_with(Workers::None, |s| s.mongodb_uri = mongo.uri()).await;
    let clips: Vec<_> = trd_tests::data::references("ko/zeroth-104")
        .keys()
        .map(|f| trd_tests::data::path("ko/zeroth-104").join(f))
        .collect();
    let mut files = Vec::new();
    for batch in ["a", "b"] {
        app.copy_into_batch(batch, &clips[..10]);
        files.extend(
            clips[..10]
                .iter()
                .map(|c| app.workdir().join(batch).join(c.file_name().unwrap())),
        );
    }
    app.wait_registered("a", 10).await;
    app.wait_registered("b", 10).await;
    // Whatever registration is still settling.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let database = app.settings.database.clone();
    let before = mongo.queries_on(&database, "audiofiles").await;
    for _ in 0..8 {
        for file in &files {
            std::fs::read(file).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let queries = mongo.queries_on(&database, "audiofiles").await - before;
    // The API's own sweeps read the collection a few times a second; 20 files looked up again
    // after each of 8 readings would be 160 at the least.
    println!("queries on audiofiles over 4 s of reading: {queries}");
    assert!(queries < 40, "{queries} queries while nothing changed");
    let listed = app.get_ok("/trd/audiofile/list/batch/a").await;
    assert_eq!(listed.as_array().unwrap().len(), 10);
}
