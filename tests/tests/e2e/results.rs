//! Batch results as a streamed ZIP (contract section 5) and the query endpoint (section 7), on
//! batches written straight into MongoDB.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use serde_json::Value;
use trd_core::domain::{Control, SegmentStatus, Status};
use trd_tests::app::{spawn_app, TestApp, Workers};
use trd_tests::fixtures::{an_hour_ago, insert_batch, FileSpec};

use SegmentStatus::{NoMatch, Processing, Recognized};

fn files() -> Vec<FileSpec> {
    vec![
        FileSpec::new("a.wav", Control::Finished, Status::Recognized, 3000)
            .channels(&[30.0])
            .segments(&[(0.5, 4.0, Recognized), (5.0, 9.5, NoMatch)]),
        FileSpec::new("day2/b.wav", Control::Finished, Status::Recognized, 2000)
            .channels(&[20.0, 20.0])
            .segments(&[(1.0, 3.0, Recognized)]),
        FileSpec::new("c.wav", Control::Running, Status::Recognizing, 1000)
            .channels(&[10.0])
            .segments(&[(0.0, 2.0, Recognized), (3.0, 6.0, Processing)]),
        FileSpec::new("d.wav", Control::Idle, Status::Initial, 500),
    ]
}

struct Download {
    content_type: String,
    disposition: String,
    entries: BTreeMap<String, Vec<u8>>,
    order: Vec<String>,
}

async fn download(app: &TestApp, path: &str) -> Download {
    let resp = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET {path}");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let content_type = header("content-type");
    let disposition = header("content-disposition");
    let bytes = resp.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).expect("a valid ZIP");
    let mut entries = BTreeMap::new();
    let mut order = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        let name = entry.name().expect("a UTF-8 entry name").to_string();
        order.push(name.clone());
        entries.insert(name, content);
    }
    Download {
        content_type,
        disposition,
        entries,
        order,
    }
}

async fn single(app: &TestApp, id: &str, format: &str) -> Vec<u8> {
    let url = app.url(&format!(
        "/trd/transcription/result/audiofile/{id}?format={format}"
    ));
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_zip_holds_each_files_result_in_every_format() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;
    let specs = files();
    let ids = insert_batch(&app.store, "calls", &specs, an_hour_ago()).await;
    let by_name: BTreeMap<&str, String> = specs
        .iter()
        .zip(&ids)
        .map(|(f, id)| (f.filename.as_str(), id.to_hex()))
        .collect();

    // Default (json): one entry per file, each the file's own result document.
    let zip = download(&app, "/trd/transcription/result/batch/calls").await;
    assert_eq!(zip.content_type, "application/zip");
    assert_eq!(zip.disposition, "attachment; filename=\"calls.zip\"");
    assert_eq!(
        zip.order,
        ["a.wav.json", "c.wav.json", "d.wav.json", "day2/b.wav.json"]
    );
    for (name, id) in &by_name {
        let entry: Value = serde_json::from_slice(&zip.entries[&format!("{name}.json")]).unwrap();
        let expected: Value = serde_json::from_slice(&single(&app, id, "json").await).unwrap();
        assert_eq!(entry, expected, "{name}");
    }
    let a: Value = serde_json::from_slice(&zip.entries["a.wav.json"]).unwrap();
    assert_eq!(a["segments"].as_array().unwrap().len(), 2);
    assert_eq!(a["segments"][0]["text"], "segment 1 of a.wav");

    // json-array: one entry named after the batch, the results in filename order.
    let zip = download(
        &app,
        "/trd/transcription/result/batch/calls?format=json-array",
    )
    .await;
    assert_eq!(zip.order, ["calls.json"]);
    let array: Value = serde_json::from_slice(&zip.entries["calls.json"]).unwrap();
    let names: Vec<&str> = array
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.wav", "c.wav", "d.wav", "day2/b.wav"]);
    assert_eq!(array[0], a);

    // csv and every other export format: byte for byte what the single-file result gives.
    for (format, extension) in [
        ("csv", "csv"),
        ("txt", "txt"),
        ("vtt", "vtt"),
        ("srt", "srt"),
        ("trs", "trs"),
        ("extended_trs", "trs"),
    ] {
        let zip = download(
            &app,
            &format!("/trd/transcription/result/batch/calls?format={format}"),
        )
        .await;
        assert_eq!(zip.entries.len(), 4, "{format}");
        for (name, id) in &by_name {
            let entry = zip
                .entries
                .get(&format!("{name}.{extension}"))
                .unwrap_or_else(|| panic!("{format}: no entry for {name}: {:?}", zip.order));
            assert_eq!(entry, &single(&app, id, format).await, "{format} {name}");
        }
    }
    let csv = String::from_utf8(
        download(&app, "/trd/transcription/result/batch/calls?format=csv")
            .await
            .entries["a.wav.csv"]
            .clone(),
    )
    .unwrap();
    assert!(csv.starts_with("contador,canal,"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "{csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_zip_refuses_unknown_formats_and_batches() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;
    insert_batch(&app.store, "calls", &files(), an_hour_ago()).await;
    let (code, body) = app
        .get("/trd/transcription/result/batch/calls?format=docx")
        .await;
    assert_eq!(code, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("docx") && message.contains("json-array"),
        "{message}"
    );
    let (code, body) = app.get("/trd/transcription/result/batch/nosuch").await;
    assert_eq!(code, 404, "{body}");
    let (code, _) = app.get("/trd/transcription/result/batch/calls/").await;
    assert_eq!(code, 200, "a trailing slash is the same path");
}

async fn ndjson(app: &TestApp, path: &str) -> Vec<Value> {
    let resp = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET {path}");
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let text = resp.text().await.unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_streams_matching_documents_with_projection() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;
    let ids = insert_batch(&app.store, "calls", &files(), an_hour_ago()).await;
    insert_batch(
        &app.store,
        "other",
        &[FileSpec::new("z.wav", Control::Finished, Status::Recognized, 1).channels(&[1.0])],
        an_hour_ago(),
    )
    .await;

    let finished = ndjson(
        &app,
        "/trd/query/collection/audiofiles?batch=calls&control=FINISHED",
    )
    .await;
    let mut names: Vec<&str> = finished
        .iter()
        .map(|r| r["filename"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.wav", "day2/b.wav"]);
    let a = finished.iter().find(|r| r["filename"] == "a.wav").unwrap();
    assert_eq!(a["_id"], ids[0].to_hex());
    assert!(a["create_date"].as_str().unwrap().ends_with(" GMT"), "{a}");
    assert!(a.get("lease").is_none() && a.get("options").is_none());

    // Repeated values match any of them; projection keeps only what is asked (and the id).
    let some = ndjson(
        &app,
        "/trd/query/collection/audiofiles/?batch=calls&status=INITIAL&status=RECOGNIZING&project=filename&project=status",
    )
    .await;
    assert_eq!(some.len(), 2);
    for r in &some {
        let mut keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["_id", "filename", "status"], "{r}");
    }

    let segments = ndjson(
        &app,
        &format!(
            "/trd/query/collection/segments?audiofile_id={}&status=RECOGNIZED",
            ids[2].to_hex()
        ),
    )
    .await;
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0]["audiofile_id"], ids[2].to_hex());
    assert_eq!(segments[0]["start"], 0.0);

    let none = ndjson(&app, "/trd/query/collection/audiofiles?batch=nosuch").await;
    assert!(none.is_empty());

    for (path, needle) in [
        ("/trd/query/collection/pcm_chunks", "pcm_chunks"),
        ("/trd/query/collection/audiofiles?lease=x", "lease"),
        (
            "/trd/query/collection/audiofiles?project=options",
            "options",
        ),
        ("/trd/query/collection/audiofiles?control=DONE", "DONE"),
        ("/trd/query/collection/audiofiles?size=big", "size"),
        (
            "/trd/query/collection/segments?audiofile_id=123",
            "audiofile_id",
        ),
    ] {
        let (code, body) = app.get(path).await;
        assert_eq!(code, 400, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path}: {message}");
    }
}
