//! Recognize now: one request that waits for its transcript, through each face TRD offers for
//! it, driven by the real clients (the `openai` SDK from PyPI; `reqwest` for the faces whose
//! clients are curl or `requests`). The text equals TRD's batch result for the same file and
//! settings; results stream while the workers recognize; excess requests get 503 with
//! `Retry-After` at once; and a temporary job leaves nothing behind.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use trd_tests::app::{spawn_app, spawn_app_with, TestApp, Workers};
use trd_tests::data;
use trd_tests::tools::python_json;

const OPENAI: &str = include_str!("../../scripts/openai_sdk.py");

fn clip() -> PathBuf {
    data::path("ko/zeroth-104/104_003_0019.wav")
}

/// `openai_sdk.py` on a blocking thread.
async fn openai(args: Vec<String>) -> Value {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        python_json(OPENAI, &args)
    })
    .await
    .unwrap()
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

/// The text TRD's batch pipeline makes of `file` with diarization off: its recognized
/// segments' texts, in order, joined by spaces.
async fn batch_text(app: &TestApp, file: &PathBuf, batch: &str) -> String {
    app.copy_into_batch(batch, std::slice::from_ref(file));
    app.wait_registered(batch, 1).await;
    app.get_ok_with(
        &app.admin(),
        &format!("/trd/transcription/start/batch/{batch}?diarization=none"),
    )
    .await;
    let done = app.wait_batch_done(batch, Duration::from_secs(180)).await;
    let id = done[0]["_id"].as_str().unwrap().to_owned();
    let result = app
        .get_ok_with(
            &app.admin(),
            &format!("/trd/transcription/result/audiofile/{id}"),
        )
        .await;
    texts(&result["segments"])
}

fn texts(segments: &Value) -> String {
    segments
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["text"].as_str())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// Records, segments and PCM of the test's database, and audio files under the private
/// batches: what a temporary job may leave behind.
async fn leftovers(app: &TestApp) -> (u64, u64, u64, usize) {
    let db = app.store.database();
    let count = |name: &'static str| {
        let db = db.clone();
        async move {
            db.collection::<mongodb::bson::Document>(name)
                .count_documents(mongodb::bson::doc! {})
                .await
                .unwrap()
        }
    };
    let audio = walkdir(app.workdir())
        .into_iter()
        .filter(|p| {
            p.components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with(".jobs-now-"))
        })
        .count();
    (
        count("audiofiles").await,
        count("segments").await,
        count("pcm_chunks").await,
        audio,
    )
}

fn walkdir(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walkdir(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The OpenAI SDK, unchanged: every `response_format`, the model list, a refused language in
/// OpenAI's error shape; the text is the batch pipeline's, and nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openai_sdk_transcribes_in_every_format() {
    let app = spawn_app(Workers::InProcess).await;
    let (_, key) = app.create_key(&["read", "operate"], None).await;
    let expected = batch_text(&app, &clip(), "reference").await;
    assert!(!expected.is_empty(), "the batch heard nothing in the clip");
    let (files_before, segments_before, pcm_before, _) = leftovers(&app).await;

    let base = app.base.clone();
    let clip = clip().to_string_lossy().into_owned();
    let run = |format: &str| openai(args(&["transcribe", &base, &key, &clip, format]));
    let (json, text, verbose, srt, vtt) = tokio::join!(
        run("json"),
        run("text"),
        run("verbose_json"),
        run("srt"),
        run("vtt")
    );

    assert_eq!(json["type"], "Transcription", "{json}");
    assert_eq!(json["result"]["text"].as_str().unwrap(), expected);
    assert_eq!(text["type"], "str");
    assert_eq!(text["result"].as_str().unwrap().trim(), expected);
    assert_eq!(verbose["type"], "TranscriptionVerbose", "{verbose}");
    let verbose = &verbose["result"];
    assert_eq!(verbose["text"].as_str().unwrap(), expected);
    assert_eq!(verbose["task"], "transcribe");
    assert_eq!(verbose["language"], "ko");
    let duration = verbose["duration"].as_f64().unwrap();
    assert!(duration > 1.0 && duration < 30.0, "{verbose}");
    let segments = verbose["segments"].as_array().unwrap();
    assert!(!segments.is_empty());
    for (i, segment) in segments.iter().enumerate() {
        assert_eq!(segment["id"], i);
        let (start, end) = (
            segment["start"].as_f64().unwrap(),
            segment["end"].as_f64().unwrap(),
        );
        assert!(
            0.0 <= start && start < end && end <= duration + 0.01,
            "{segment}"
        );
        assert!(segment["avg_logprob"].as_f64().unwrap() <= 0.0);
    }
    let spoken: Vec<String> = verbose["words"]
        .as_array()
        .expect("words, as word timestamps were asked for")
        .iter()
        .map(|w| w["word"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(spoken, words(&expected));
    let srt = srt["result"].as_str().unwrap();
    assert!(srt.starts_with("1\n"), "{srt}");
    assert!(srt.contains(" --> ") && srt.contains(','), "{srt}");
    let vtt = vtt["result"].as_str().unwrap();
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    for word in words(&expected) {
        assert!(srt.contains(&word) && vtt.contains(&word), "{word}");
    }

    // Models: TRD's own.
    let models = openai(args(&["models", &base, &key])).await;
    assert_eq!(models["ids"], serde_json::json!(["ko"]));

    // A language no model serves: 400 in OpenAI's shape, naming the parameter.
    let http = app.client_with_key(&key);
    let form = reqwest::multipart::Form::new()
        .text("model", "whisper-1")
        .text("language", "xx")
        .part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(&clip).unwrap()).file_name("a.wav"),
        );
    let response = http
        .post(app.url("/v1/audio/transcriptions"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["param"], "language", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("ko"));
    // Not audio: 400, before anything is sent.
    let not_audio = reqwest::multipart::Form::new()
        .text("model", "whisper-1")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"this is not audio at all".to_vec())
                .file_name("notes.wav"),
        );
    let response = http
        .post(app.url("/v1/audio/transcriptions"))
        .multipart(not_audio)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");

    // Temporary jobs: gone after their responses.
    let after = app
        .eventually(
            "temporary jobs deleted",
            Duration::from_secs(10),
            || async {
                let now = leftovers(&app).await;
                (now == (files_before, segments_before, pcm_before, 0)).then_some(now)
            },
        )
        .await;
    assert_eq!(after.3, 0);
}
