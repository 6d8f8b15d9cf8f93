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
use trd_tests::tools::python_json_async;

const OPENAI: &str = include_str!("../../scripts/openai_sdk.py");

fn clip() -> PathBuf {
    data::path("ko/zeroth-104/104_003_0019.wav")
}

/// `openai_sdk.py` on a blocking thread.
async fn openai(args: Vec<String>) -> Value {
    python_json_async(OPENAI, args).await
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
    let form = openai_form(&PathBuf::from(&clip), "json").text("language", "xx");
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
    // Outside the work directory, which the watcher registers.
    let scratch = tempfile::tempdir().unwrap();
    let notes = scratch.path().join("notes.wav");
    std::fs::write(&notes, b"this is not audio at all").unwrap();
    let not_audio = openai_form(&notes, "json");
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

/// The newest `recognized_at` among a record's segments, in milliseconds since the epoch.
async fn last_recognized_ms(app: &TestApp, id: mongodb::bson::oid::ObjectId) -> i64 {
    use futures::TryStreamExt;
    let segments: Vec<mongodb::bson::Document> = app
        .store
        .database()
        .collection::<mongodb::bson::Document>("segments")
        .find(mongodb::bson::doc! {"audiofile_id": id})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    segments
        .iter()
        .map(|s| s.get_datetime("recognized_at").unwrap().timestamp_millis())
        .max()
        .unwrap()
}

/// `stream=True` through the SDK on a minute of speech: deltas arrive while the workers are
/// still recognizing (the first before the last segment is stored), then the whole text; the
/// kept job (`keep=true`) is listed like any file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openai_stream_starts_before_recognition_ends() {
    let app = spawn_app(Workers::InProcess).await;
    let (_, key) = app.create_key(&["read", "operate"], None).await;
    let file = data::path("dialogues/dlg_108_111_104.wav");
    let out = openai(args(&["stream", &app.base, &key, &file.to_string_lossy()])).await;
    let events = out["events"].as_array().unwrap();
    let (last, deltas) = events.split_last().expect("events");
    assert_eq!(last["event"]["type"], "transcript.text.done", "{out}");
    assert!(deltas.len() >= 3, "a delta per segment: {out}");
    let mut streamed = String::new();
    for delta in deltas {
        assert_eq!(delta["event"]["type"], "transcript.text.delta", "{delta}");
        streamed.push_str(delta["event"]["delta"].as_str().unwrap());
    }
    let text = last["event"]["text"].as_str().unwrap();
    assert_eq!(streamed, text);

    // Kept: listed in the default batch, with the same text as the stream.
    let kept = app
        .get_ok_with(&app.admin(), "/trd/audiofile/list/batch/recognized")
        .await;
    let kept = kept.as_array().unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["control"], "FINISHED");
    let id = mongodb::bson::oid::ObjectId::parse_str(kept[0]["_id"].as_str().unwrap()).unwrap();
    let result = app
        .get_ok_with(
            &app.admin(),
            &format!("/trd/transcription/result/audiofile/{id}"),
        )
        .await;
    assert_eq!(texts(&result["segments"]), text);
    let first_delta_ms = (deltas[0]["at"].as_f64().unwrap() * 1000.0) as i64;
    let last_stored_ms = last_recognized_ms(&app, id).await;
    assert!(
        first_delta_ms < last_stored_ms,
        "the first delta came {} ms after the last segment was stored",
        first_delta_ms - last_stored_ms
    );
}

/// A multipart OpenAI request for `file` (`json` unless `format` says otherwise).
fn openai_form(file: &PathBuf, format: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("model", "whisper-1")
        .text("response_format", format.to_owned())
        .part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(file).unwrap())
                .file_name(file.file_name().unwrap().to_string_lossy().into_owned()),
        )
}

/// With `interactive_in_flight = 2`, ten requests at once while a batch runs: the excess are
/// refused at once with 503 and `Retry-After`, the rest get their transcript, and the batch
/// finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn excess_requests_get_503_at_once() {
    let app = spawn_app_with(Workers::InProcess, |s| s.interactive_in_flight = 2).await;
    app.copy_into_batch(
        "busy",
        &[
            data::path("dialogues/dlg_104_109.wav"),
            data::path("dialogues/dlg_104_110.wav"),
        ],
    );
    app.wait_registered("busy", 2).await;
    app.get_ok_with(&app.admin(), "/trd/transcription/start/batch/busy")
        .await;

    let http = app.admin();
    let requests = (0..10).map(|_| {
        let http = http.clone();
        let url = app.url("/v1/audio/transcriptions");
        async move {
            let sent = Instant::now();
            let response = http
                .post(url)
                .multipart(openai_form(&clip(), "json"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: Value = response.json().await.unwrap();
            (status, retry_after, body, sent.elapsed())
        }
    });
    let answers = tokio::time::timeout(
        Duration::from_secs(300),
        futures::future::join_all(requests),
    )
    .await
    .expect("nothing hangs");
    let (ok, busy): (Vec<_>, Vec<_>) = answers.into_iter().partition(|a| a.0 == 200);
    assert!(ok.len() >= 2, "the bound's worth succeed: {ok:?} {busy:?}");
    assert!(busy.len() >= 6, "the excess is refused: {ok:?} {busy:?}");
    for (status, retry_after, body, took) in &busy {
        assert_eq!(*status, 503, "{body}");
        assert!(retry_after.as_deref().unwrap().parse::<u64>().unwrap() >= 1);
        assert_eq!(body["error"]["type"], "server_error", "{body}");
        assert!(
            *took < Duration::from_secs(5),
            "refused at once, not after {took:?}"
        );
    }
    let text = ok[0].2["text"].as_str().unwrap();
    assert!(!text.is_empty());
    assert!(ok.iter().all(|a| a.2["text"] == text), "{ok:?}");
    // The batch went on meanwhile and ends.
    app.wait_batch_done("busy", Duration::from_secs(300)).await;
}

/// A client that goes away mid-request (streamed or not) cancels its job: no record,
/// segment, PCM or audio is left once `lease_seconds` have passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_leaves_leaves_nothing_behind() {
    let app = spawn_app(Workers::InProcess).await;
    let http = app.admin();
    let file = data::path("dialogues/dlg_104_109.wav");

    // Streamed: the first bytes arrive, then the client hangs up.
    let form = openai_form(&file, "json").text("stream", "true");
    let mut response = http
        .post(app.url("/v1/audio/transcriptions"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().expect("a first event");
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
    drop(response);
    let lease = Duration::from_secs(app.settings.lease_seconds);
    app.eventually("nothing left of the streamed job", lease, || async {
        (leftovers(&app).await == (0, 0, 0, 0)).then_some(())
    })
    .await;

    // Not streamed: the client gives up while the job runs.
    let url = app.url("/v1/audio/transcriptions");
    let waiting = tokio::spawn({
        let http = http.clone();
        async move {
            http.post(url)
                .multipart(openai_form(&file, "verbose_json"))
                .send()
                .await
        }
    });
    app.eventually(
        "the second job running",
        Duration::from_secs(30),
        || async {
            let records = app
                .store
                .database()
                .collection::<mongodb::bson::Document>("audiofiles");
            let running = records
                .count_documents(mongodb::bson::doc! {"control": "RUNNING"})
                .await
                .unwrap();
            (running >= 1).then_some(())
        },
    )
    .await;
    waiting.abort();
    app.eventually("nothing left of the abandoned job", lease, || async {
        (leftovers(&app).await == (0, 0, 0, 0)).then_some(())
    })
    .await;
}

/// A multipart form with `file` under the part name `field`.
fn file_form(field: &str, file: &PathBuf) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        field.to_owned(),
        reqwest::multipart::Part::bytes(std::fs::read(file).unwrap())
            .file_name(file.file_name().unwrap().to_string_lossy().into_owned()),
    )
}

/// `curl` as the services' documentation calls it, on a blocking thread; what it printed.
async fn curl(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--fail-with-body", "-N"])
            .args(&args)
            .output()
            .expect("curl runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "curl {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    })
    .await
    .unwrap()
}

async fn text_of(response: reqwest::Response) -> (u16, reqwest::header::HeaderMap, String) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// whisper-asr-webservice's `/asr` in every output and `/detect-language`, UWebASR (POST and
/// GET `?url=`, its formats and its errors), DeepSpeech REST (both layouts, hot words, a JWT),
/// Nanotrix's file API (an `ntx-token`) and `/trd/recognize`: each answers with the batch
/// pipeline's text for the clip.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_face_answers_with_the_batch_text() {
    let app = spawn_app_with(Workers::InProcess, |s| s.open_registration = true).await;
    let expected = batch_text(&app, &clip(), "reference").await;
    let expected_words = words(&expected);
    assert!(!expected_words.is_empty());
    let http = app.admin();
    let clip = clip();
    let post = |path: &str| http.post(app.url(path));

    // whisper-asr-webservice.
    let asr = |output: &'static str| {
        post(&format!("/asr?output={output}&language=ko"))
            .multipart(file_form("audio_file", &clip))
            .send()
    };
    let (txt, vtt, srt, tsv, json) =
        tokio::join!(asr("txt"), asr("vtt"), asr("srt"), asr("tsv"), asr("json"));
    let (status, headers, txt) = text_of(txt.unwrap()).await;
    assert_eq!(status, 200, "{txt}");
    assert_eq!(headers["asr-engine"], "trd");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("104_003_0019.wav.txt"));
    assert_eq!(words(&txt), expected_words);
    let vtt = vtt.unwrap().text().await.unwrap();
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    let srt = srt.unwrap().text().await.unwrap();
    assert!(srt.starts_with("1\n") && srt.contains(" --> "), "{srt}");
    let tsv = tsv.unwrap().text().await.unwrap();
    let mut tsv_lines = tsv.lines();
    assert_eq!(tsv_lines.next(), Some("start\tend\ttext"));
    let tsv_text: Vec<String> = tsv_lines
        .flat_map(|l| words(l.splitn(3, '\t').nth(2).unwrap()))
        .collect();
    assert_eq!(tsv_text, expected_words);
    let json: Value = serde_json::from_str(&json.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(json["text"].as_str().unwrap(), expected);
    assert_eq!(json["language"], "ko");
    assert!(json["segments"][0]["start"].is_number());
    // The way the service's README calls it.
    let by_curl = curl(vec![
        "-F".into(),
        format!("audio_file=@{}", clip.display()),
        "-H".into(),
        format!("Authorization: Bearer {}", app.admin_key()),
        app.url("/asr?output=txt"),
    ])
    .await;
    assert_eq!(words(&by_curl), expected_words);
    let refused = post("/asr?output=docx")
        .multipart(file_form("audio_file", &clip))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert!(
        refused["detail"].as_str().unwrap().contains("docx"),
        "{refused}"
    );
    let language: Value = post("/detect-language")
        .multipart(file_form("audio_file", &clip))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(language["language_code"], "ko", "{language}");
    assert_eq!(language["detected_language"], "korean");
    assert!(language["confidence"].is_null());
    assert!(language["note"].as_str().unwrap().contains("only"));

    // UWebASR: the audio as the body, or fetched by URL.
    let audio = std::fs::read(&clip).unwrap();
    let uwebasr = |format: &str| {
        post(&format!("/api/v2/lindat/generic/ko?format={format}"))
            .body(audio.clone())
            .send()
    };
    let (plain, json, trs) = tokio::join!(uwebasr("plaintext"), uwebasr("json"), uwebasr("trs"));
    let (status, headers, plain) = text_of(plain.unwrap()).await;
    assert_eq!(status, 200, "{plain}");
    assert_eq!(words(&plain), expected_words);
    assert_eq!(headers["speechcloud-sessionid"].len(), 24);
    assert!(headers["speechcloud-timeref"]
        .to_str()
        .unwrap()
        .ends_with(" GMT"));
    let json = json.unwrap().text().await.unwrap();
    let parsed: Value = serde_json::from_str(&json).expect("a valid JSON array");
    let heard: Vec<String> = parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["word"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(heard, expected_words);
    assert!(parsed
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["confidence"].is_number()));
    assert_eq!(
        parsed.as_array().unwrap().last().unwrap()["speech_end"],
        true
    );
    assert_eq!(
        json.lines().count(),
        heard.len() + 2,
        "one word per line: {json}"
    );
    let trs = trs.unwrap().text().await.unwrap();
    // The seed's own example: `curl -X POST -N --data-binary @file '…?format=plaintext'`.
    let by_curl = curl(vec![
        "-X".into(),
        "POST".into(),
        "--data-binary".into(),
        format!("@{}", clip.display()),
        "-H".into(),
        format!("Authorization: Bearer {}", app.admin_key()),
        app.url("/api/v2/lindat/generic/ko?format=plaintext"),
    ])
    .await;
    assert_eq!(words(&by_curl), expected_words);
    assert!(
        trs.contains("<Trans") && trs.contains(&expected_words[0]),
        "{trs}"
    );
    let url = trd_tests::receiver::serve_file(clip.clone(), None).await;
    let fetched = http
        .get(app.url(&format!("/api/v2/generic/ko?format=plaintext&url={url}")))
        .send()
        .await
        .unwrap();
    let (status, _, fetched) = text_of(fetched).await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(words(&fetched), expected_words);
    let (status, _, body) = text_of(uwebasr("docx").await.unwrap()).await;
    assert_eq!((status, body.as_str()), (400, "# 400 Unknown format\n"));
    let empty = post("/api/v2/generic/ko?format=json").send().await.unwrap();
    let (status, _, body) = text_of(empty).await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body[0]["status_code"], 400, "{body}");
    let missing = http
        .get(app.url("/api/v2/generic/ko?url=http://127.0.0.1:9/gone.wav"))
        .send()
        .await
        .unwrap();
    let (status, _, body) = text_of(missing).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("# 400 "), "{body}");

    // DeepSpeech REST: a user's JWT, both layouts, hot words as form fields.
    let credentials = serde_json::json!({"username": "forrest", "email": "f@example.com", "password": "run-forrest-run"});
    let registered = reqwest::Client::new()
        .post(app.url("/api/v1/users/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 200);
    let token: Value = reqwest::Client::new()
        .post(app.url("/api/v1/token"))
        .json(&serde_json::json!({"username": "forrest", "password": "run-forrest-run"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = token["access_token"].as_str().unwrap().to_owned();
    let user = app.client_with_key(&jwt);
    for path in ["/api/stt/http", "/api/v1/stt/http"] {
        let form = file_form("audio", &clip)
            .text(expected_words[0].clone(), "10")
            .text("paris", "-1000");
        let answer: Value = user
            .post(app.url(path))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            answer["message"].as_str().unwrap(),
            expected,
            "{path}: {answer}"
        );
        assert!(answer["time"].as_f64().unwrap() > 0.0);
    }
    // The seed's own example: curl with the JWT and a hot word.
    let by_curl = curl(vec![
        "-X".into(),
        "POST".into(),
        "-H".into(),
        format!("Authorization: Bearer {jwt}"),
        "-F".into(),
        format!("audio=@{}", clip.display()),
        "-F".into(),
        "paris=-1000".into(),
        app.url("/api/stt/http"),
    ])
    .await;
    let by_curl: Value = serde_json::from_str(&by_curl).unwrap();
    assert_eq!(by_curl["message"].as_str().unwrap(), expected);
    let missing = user
        .post(app.url("/api/stt/http"))
        .multipart(reqwest::multipart::Form::new().text("paris", "1"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let missing: Value = missing.json().await.unwrap();
    assert_eq!(missing["error"], "bad request", "{missing}");
    assert_eq!(missing["status"], 400);
    assert!(missing["exception"].is_string());
    let anonymous = reqwest::Client::new()
        .post(app.url("/api/stt/http"))
        .header("authorization", "Bearer not.a.token")
        .multipart(file_form("audio", &clip))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // Nanotrix: an ntx-token, NDJSON engine events, then the end.
    let ndjson = reqwest::Client::new()
        .post(app.url("/api/v1/file/v2t"))
        .header("ntx-token", app.admin_key())
        .multipart(file_form("file", &clip).text("channel", "downmix"))
        .send()
        .await
        .unwrap();
    assert_eq!(ndjson.status(), 200);
    let lines: Vec<Value> = ndjson
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (end, pushes) = lines.split_last().unwrap();
    assert_eq!(end, &serde_json::json!({"end": {}}));
    let items: Vec<String> = pushes
        .iter()
        .flat_map(|p| p["push"]["events"]["events"].as_array().unwrap().clone())
        .filter_map(|e| e["label"]["item"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(items, expected_words);

    // TRD's own: the result shape, and a streamed text format.
    let result: Value = post("/trd/recognize?diarization=none")
        .multipart(file_form("file", &clip))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(texts(&result["segments"]), expected, "{result}");
    assert_eq!(result["control"], "FINISHED");
    let csv = post("/trd/recognize?format=csv&diarization=none")
        .multipart(file_form("file", &clip))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("contador,canal,"), "{csv}");

    // Nothing temporary is left: only the reference batch's record.
    app.eventually(
        "temporary jobs deleted",
        Duration::from_secs(10),
        || async {
            let (files, _, _, audio) = leftovers(&app).await;
            (files == 1 && audio == 0).then_some(())
        },
    )
    .await;
}

/// Requests a client gets wrong are answered 4xx in each face's shape, promptly: a file part
/// without a name, a part that is not audio, no part at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_are_client_errors() {
    let app = spawn_app(Workers::InProcess).await;
    let http = app.admin();
    let nameless = |field: &str| {
        reqwest::multipart::Form::new().part(
            field.to_owned(),
            reqwest::multipart::Part::bytes(b"null".to_vec()),
        )
    };
    for (path, field) in [
        ("/v1/audio/transcriptions", "file"),
        ("/asr", "audio_file"),
        ("/api/stt/http", "audio"),
        ("/api/v1/file/v2t", "file"),
        ("/trd/recognize", "file"),
    ] {
        let started = Instant::now();
        let response = http
            .post(app.url(path))
            .multipart(nameless(field))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 400, "{path}: {body}");
        assert!(started.elapsed() < Duration::from_secs(20), "{path}");
        let empty = http
            .post(app.url(path))
            .multipart(reqwest::multipart::Form::new())
            .send()
            .await
            .unwrap();
        assert_eq!(empty.status(), 400, "{path}");
    }
    for body in [b"null".to_vec(), b"[]".to_vec()] {
        let response = http
            .post(app.url("/api/v2/generic/ko"))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, 400, "{text}");
        assert!(text.starts_with("# 400 "), "{text}");
    }
    // A URL outside `webhook_allow` (here a link-local metadata address) is never fetched.
    let outside = http
        .get(app.url("/api/v2/ko?format=plaintext&url=http://169.254.169.254/latest/meta-data"))
        .send()
        .await
        .unwrap();
    let status = outside.status().as_u16();
    let text = outside.text().await.unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(
        text.starts_with("# 400 ") && text.contains("169.254.169.254"),
        "{text}"
    );
    let no_url = http.get(app.url("/api/v2/0?url=")).send().await.unwrap();
    assert_eq!(no_url.status(), 404, "no model is named 0");
    let no_url = http.get(app.url("/api/v2/ko?url=")).send().await.unwrap();
    assert_eq!(no_url.status(), 400);
    app.eventually(
        "temporary jobs deleted",
        Duration::from_secs(10),
        || async { (leftovers(&app).await == (0, 0, 0, 0)).then_some(()) },
    )
    .await;
}
