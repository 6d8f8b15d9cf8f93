//! Live streams: audio streamed over a WebSocket while it is spoken, through each protocol TRD
//! speaks for it, with the real clients (`websockets` the way vosk-server's and DeepSpeech's
//! clients use it, the official `speechmatics-rt` SDK): partial results arrive during the
//! audio, final results equal TRD's batch text for the same audio, a recognizer killed with
//! `kill -9` mid-stream costs no word, and streams beyond the configured slots are refused at
//! once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use trd_tests::app::{spawn_app, spawn_app_with, worker_command, TestApp, Workers};
use trd_tests::data;
use trd_tests::fleet::Fleet;
use trd_tests::tools::python_json_async;

const CLIENTS: &str = include_str!("../../scripts/stream_clients.py");

fn clip(name: &str) -> PathBuf {
    data::path(&format!("ko/zeroth-104/{name}.wav"))
}

/// `stream_clients.py` on a blocking thread.
async fn client(args: Vec<String>) -> Value {
    python_json_async(CLIENTS, args).await
}

fn ws_url(app: &TestApp, path: &str) -> String {
    format!("ws://127.0.0.1:{}{path}", app.settings.port)
}

/// One session: `protocol` at `path` on `audio`, with the key as the bearer credential.
async fn stream(
    app: &TestApp,
    key: &str,
    protocol: &str,
    path: &str,
    audio: &Path,
    extra: &[&str],
) -> Value {
    let mut args = vec![
        protocol.to_owned(),
        ws_url(app, path),
        audio.to_string_lossy().into_owned(),
        "--bearer".to_owned(),
        key.to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    client(args).await
}

/// The text TRD's batch pipeline makes of `files` with diarization off, by file name.
async fn batch_texts(app: &TestApp, files: &[PathBuf], batch: &str) -> Vec<(String, String)> {
    app.copy_into_batch(batch, files);
    app.wait_registered(batch, files.len()).await;
    app.get_ok_with(
        &app.admin(),
        &format!("/trd/transcription/start/batch/{batch}?diarization=none"),
    )
    .await;
    let done = app.wait_batch_done(batch, Duration::from_secs(240)).await;
    let mut out = Vec::new();
    for record in done {
        let id = record["_id"].as_str().unwrap().to_owned();
        let result = app
            .get_ok_with(
                &app.admin(),
                &format!("/trd/transcription/result/audiofile/{id}"),
            )
            .await;
        let text = result["segments"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["text"].as_str())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        out.push((record["filename"].as_str().unwrap().to_owned(), text));
    }
    out.sort();
    out
}

fn batch_text_of(texts: &[(String, String)], file: &Path) -> String {
    let name = file.file_name().unwrap().to_string_lossy();
    texts
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no batch result for {name}"))
        .1
        .clone()
}

/// The stream's text is the batch text, byte for byte: a stream is cut into turns and each
/// turn heard exactly as the batch cuts and hears the file.
fn equals_batch(stream: &Value, batch: &str) {
    let text = stream["text"].as_str().unwrap();
    assert!(!batch.is_empty());
    assert_eq!(text, batch, "the stream's finals against the batch text");
}

fn no_error(report: &Value) {
    assert!(report["refused"].is_null(), "refused: {report}");
    assert!(report["error"].is_null(), "error: {report}");
}

/// Partials that arrived while the audio was still being sent.
fn partials_during_audio(report: &Value) -> usize {
    let total = report["audio_seconds"].as_f64().unwrap();
    report["partials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["audio_t"].as_f64().unwrap() < total - 0.5)
        .count()
}

/// vosk-server's protocol at real time and 10× faster: one reply per frame, partials while
/// the audio plays, the same finals at either pace, equal to the batch text; `{"reset" : 1}` gives a final result and
/// the session goes on; a reply names its word times in session time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vosk_clients_stream_and_finals_equal_the_batch_text() {
    let app = spawn_app(Workers::InProcess).await;
    let (_, key) = app.create_key(&["read", "operate"], None).await;
    let short = clip("104_003_0019");
    let dialogue = data::path("dialogues/dlg_104_109.wav");
    let batch = batch_texts(&app, &[short.clone(), dialogue.clone()], "reference").await;

    let real_time = stream(&app, &key, "vosk", "/asr/ws", &short, &[]).await;
    no_error(&real_time);
    equals_batch(&real_time, &batch_text_of(&batch, &short));
    let frames = (real_time["audio_seconds"].as_f64().unwrap() / 0.2).ceil() as u64;
    assert_eq!(
        real_time["replies"].as_u64().unwrap(),
        frames,
        "one reply per frame"
    );
    assert!(
        partials_during_audio(&real_time) > 3,
        "partials during the audio: {real_time}"
    );
    assert_eq!(real_time["close_code"], 1000);

    // Pace does not change what is heard.
    let short_fast = stream(&app, &key, "vosk", "/asr/ws", &short, &["--speed", "10"]).await;
    assert_eq!(short_fast["text"], real_time["text"]);

    let fast = stream(&app, &key, "vosk", "/asr/ws", &dialogue, &["--speed", "10"]).await;
    no_error(&fast);
    equals_batch(&fast, &batch_text_of(&batch, &dialogue));
    let finals = fast["finals"].as_array().unwrap();
    assert!(
        finals.len() > 2,
        "a dialogue ends several utterances: {fast}"
    );
    let ends: Vec<f64> = finals.iter().filter_map(|f| f["end"].as_f64()).collect();
    assert!(
        ends.windows(2).all(|w| w[0] <= w[1]),
        "session times run on: {ends:?}"
    );
    assert!(
        *ends.last().unwrap() > 60.0,
        "word times are session times: {ends:?}"
    );

    // A reset ends the utterance and the session goes on.
    let reset = stream(
        &app,
        &key,
        "vosk",
        "/asr/ws",
        &short,
        &["--speed", "5", "--reset-at", "4"],
    )
    .await;
    no_error(&reset);
    let kinds: Vec<&str> = reset["finals"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"reset") && kinds.last() == Some(&"eof"),
        "{reset}"
    );
    assert!(!reset["text"].as_str().unwrap().is_empty());
}

/// The official `speechmatics-rt` SDK, unchanged: `RecognitionStarted`, one `AudioAdded` per
/// frame, partials during the audio, `AddTranscript`s equal to the batch text with speakers
/// told apart, and `EndOfTranscript`; the `file` audio format (the SDK's default) heard as the
/// batch hears the file, with the batch diarizer's speakers; junk refused with `data_error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn speechmatics_rt_sdk_streams_unchanged() {
    let app = spawn_app(Workers::InProcess).await;
    let (_, key) = app.create_key(&["read", "operate"], None).await;
    let dialogue = data::path("dialogues/dlg_108_111_104.wav");
    let batch = batch_texts(&app, std::slice::from_ref(&dialogue), "reference").await;

    let report = stream(
        &app,
        &key,
        "speechmatics",
        "/v2",
        &dialogue,
        &["--speed", "10", "--diarization", "speaker"],
    )
    .await;
    no_error(&report);
    equals_batch(&report, &batch_text_of(&batch, &dialogue));
    assert!(report["session_id"].is_string());
    assert!(report["end_of_transcript"].is_number(), "{report}");
    let seq_nos = report["seq_nos"].as_array().unwrap();
    let frames = (report["audio_seconds"].as_f64().unwrap() / 0.2).ceil() as u64;
    assert_eq!(seq_nos.len() as u64, frames);
    assert_eq!(seq_nos.last().unwrap().as_u64(), Some(frames));
    assert!(partials_during_audio(&report) > 3, "{report}");
    assert_eq!(
        report["parse_errors"].as_array().map_or(0, Vec::len),
        0,
        "{report}"
    );

    let speakers = speakers_of(&report);
    assert!(
        speakers.iter().filter(|s| s.starts_with('S')).count() >= 2,
        "speakers told apart with diarization: speaker: {speakers:?}"
    );

    // The SDK's default audio format, `file`: the container's bytes as they are, decoded by
    // the normalizer and heard as the batch hears the file.
    let file = stream(
        &app,
        &key,
        "speechmatics",
        "/v2",
        &dialogue,
        &["--file-format", "--speed", "0"],
    )
    .await;
    no_error(&file);
    equals_batch(&file, &batch_text_of(&batch, &dialogue));
    assert!(file["end_of_transcript"].is_number(), "{file}");
    let seq_nos = file["seq_nos"].as_array().unwrap();
    assert_eq!(seq_nos.last().unwrap().as_u64(), Some(seq_nos.len() as u64));
    assert!(
        speakers_of(&file).is_empty(),
        "no speakers unless asked for"
    );

    // An MP3, with speakers: the batch diarizer's, labelled in order of appearance.
    let mp3 = stream(
        &app,
        &key,
        "speechmatics",
        "/v2",
        &data::path("dialogues/dlg_104_109.mp3"),
        &["--file-format", "--speed", "0", "--diarization", "speaker"],
    )
    .await;
    no_error(&mp3);
    assert!(!mp3["text"].as_str().unwrap().is_empty(), "{mp3}");
    assert_eq!(
        speakers_of(&mp3),
        BTreeSet::from(["S1".to_owned(), "S2".to_owned()]),
        "{mp3}"
    );
    assert_eq!(mp3["parse_errors"].as_array().map_or(0, Vec::len), 0);

    // Bytes that are no audio file: the vendor's data error, not a hang.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wav");
    std::fs::write(&junk, vec![0x5a; 64 * 1024]).unwrap();
    let refused = stream(
        &app,
        &key,
        "speechmatics",
        "/v2",
        &junk,
        &["--file-format", "--speed", "0"],
    )
    .await;
    assert_eq!(refused["error"]["type"], "data_error", "{refused}");
}

/// Every speaker label the finals carry.
fn speakers_of(report: &Value) -> BTreeSet<String> {
    report["finals"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["speakers"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// DeepSpeech's WebSockets: a whole MP3 as one frame (decoded like an upload) with hot words,
/// and the microphone stream whose last answer, after a pause, is the batch transcript.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deepspeech_sockets_answer_like_the_original_server() {
    let app = spawn_app(Workers::InProcess).await;
    let (_, key) = app.create_key(&["read", "operate"], None).await;
    let short = clip("104_003_0019");
    let batch = batch_texts(&app, std::slice::from_ref(&short), "reference").await;
    let expected = batch_text_of(&batch, &short);

    let token = format!("?token={key}");
    for path in ["/api/stt/ws", "/api/v1/stt/ws"] {
        let report = client(vec![
            "deepspeech-ws".into(),
            ws_url(&app, &format!("{path}{token}")),
            data::path("dialogues/dlg_104_110.mp3")
                .to_string_lossy()
                .into_owned(),
            "--hot-words".into(),
            r#"{"안녕": 10}"#.into(),
        ])
        .await;
        no_error(&report);
        assert!(
            report["text"].as_str().unwrap().split_whitespace().count() > 20,
            "{report}"
        );
        assert!(report["server_time"].as_f64().unwrap() > 0.0);
    }
    let mic = client(vec![
        "deepspeech-mic".into(),
        ws_url(&app, &format!("/api/v1/stt/mic{token}")),
        short.to_string_lossy().into_owned(),
        "--speed".into(),
        "5".into(),
        // A microphone left open: a turn's final result comes once a pause has shown it over.
        "--pad-seconds".into(),
        "2".into(),
    ])
    .await;
    no_error(&mic);
    let strings = mic["partials"].as_array().unwrap();
    equals_batch(&json!({"text": strings.last().unwrap()["text"]}), &expected);
    assert!(strings.len() > 10, "one answer per chunk: {mic}");
}

/// Every live route is behind the identity layer: a wrong key is refused before the upgrade
/// (401), a key without the `operate` scope too (403), whether it comes as a header or in the
/// URL for browsers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_routes_refuse_wrong_and_read_only_keys() {
    let app = spawn_app(Workers::None).await;
    let (_, reader) = app.create_key(&["read"], None).await;
    let audio = clip("104_003_0019");
    let routes = [
        ("vosk", "/asr/ws"),
        ("deepspeech-mic", "/api/stt/mic"),
        ("deepspeech-mic", "/api/v1/stt/mic"),
        ("deepspeech-ws", "/api/stt/ws"),
        ("deepspeech-ws", "/api/v1/stt/ws"),
    ];
    for (protocol, path) in routes {
        for (key, status) in [("trd_wrong", 401), (reader.as_str(), 403)] {
            let in_url = client(vec![
                protocol.into(),
                ws_url(&app, &format!("{path}?token={key}")),
                audio.to_string_lossy().into_owned(),
            ])
            .await;
            assert_eq!(in_url["refused"]["status"], status, "{path}: {in_url}");
            let in_header = stream(&app, key, protocol, path, &audio, &[]).await;
            assert_eq!(
                in_header["refused"]["status"], status,
                "{path}: {in_header}"
            );
        }
    }
    for (key, status) in [("trd_wrong", 401), (reader.as_str(), 403)] {
        let speechmatics = stream(&app, key, "speechmatics", "/v2", &audio, &[]).await;
        assert_eq!(speechmatics["refused"]["status"], status, "{speechmatics}");
        let jwt = client(vec![
            "speechmatics".into(),
            ws_url(&app, &format!("/v2?jwt={key}")),
            audio.to_string_lossy().into_owned(),
        ])
        .await;
        assert!(
            jwt["refused"].is_object() || jwt["error"].is_object(),
            "{jwt}"
        );
    }
}

/// Two recognizer processes with four slots each; four real-time streams; one recognizer is
/// killed with `kill -9` mid-stream. Every stream completes with the text of an undisturbed
/// run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_recognizer_costs_no_stream_a_word() {
    let _turn = trd_tests::turns::alone().await;
    let app = spawn_app_with(Workers::None, |s| {
        s.stream_slots = 4;
        s.lease_seconds = 5;
    })
    .await;
    let (_, key) = app.create_key(&["read", "operate"], None).await;
    let mut fleet = recognizers(&app, 2).await;
    let clips: Vec<PathBuf> = [
        "104_003_0019",
        "104_003_0193",
        "104_003_0253",
        "104_003_0280",
    ]
    .iter()
    .map(|c| clip(c))
    .collect();

    let undisturbed = four_streams(&app, &key, &clips, "10").await;
    let started = Instant::now();
    let disturbed = {
        let streams = four_streams(&app, &key, &clips, "1");
        tokio::pin!(streams);
        tokio::select! {
            reports = &mut streams => panic!("the streams ended before the kill: {reports:?}"),
            () = tokio::time::sleep(Duration::from_secs(4)) => {}
        }
        fleet.kill_and_restart(0);
        streams.await
    };
    assert!(started.elapsed() > Duration::from_secs(5));
    for ((quiet, loud), clip) in undisturbed.iter().zip(&disturbed).zip(&clips) {
        no_error(loud);
        assert!(!quiet["text"].as_str().unwrap().is_empty());
        assert_eq!(quiet["text"], loud["text"], "{}: {loud}", clip.display());
    }
    assert!(fleet.exited().is_empty());
}

/// A long call: a recognizer killed after a minute, past a rest point (a silence across the
/// 60 s mark), where the one taking over takes the stream up; its text is an undisturbed run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_stream_is_taken_up_at_its_rest_point() {
    let _turn = trd_tests::turns::alone().await;
    let app = spawn_app_with(Workers::None, |s| s.lease_seconds = 5).await;
    let (_, key) = app.create_key(&["read", "operate"], None).await;
    let mut fleet = recognizers(&app, 1).await;
    // 24 s of a dialogue, on hold until 61 s, then the rest of it: 113 s in all.
    let dir = tempfile::tempdir().unwrap();
    let call = dir.path().join("on-hold.wav");
    wav_with_hold(&data::path("dialogues/dlg_104_109.wav"), 24.0, 61.0, &call);
    let run = |speed: &'static str| {
        client(vec![
            "vosk".into(),
            ws_url(&app, "/asr/ws"),
            call.to_string_lossy().into_owned(),
            "--bearer".into(),
            key.clone(),
            "--speed".into(),
            speed.into(),
        ])
    };
    let undisturbed = run("10").await;
    no_error(&undisturbed);
    let disturbed = {
        let stream = run("4");
        tokio::pin!(stream);
        tokio::select! {
            report = &mut stream => panic!("the stream ended before the kill: {report}"),
            // 68 s of audio heard: past the rest point at 60 s.
            () = tokio::time::sleep(Duration::from_secs(17)) => {}
        }
        fleet.kill_and_restart(0);
        stream.await
    };
    no_error(&disturbed);
    assert!(undisturbed["text"].as_str().unwrap().split(' ').count() > 50);
    assert_eq!(undisturbed["text"], disturbed["text"]);
    assert!(fleet.exited().is_empty());
}

/// Writes `source` (a 16-bit mono WAV) with silence from `at` to `until` seconds and the rest
/// of the audio after it.
fn wav_with_hold(source: &Path, at: f64, until: f64, dest: &Path) {
    let bytes = std::fs::read(source).unwrap();
    let data_at = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    let pcm = &bytes[data_at..];
    let cut = (at * 16_000.0) as usize * 2;
    let mut out = pcm[..cut].to_vec();
    out.resize((until * 16_000.0) as usize * 2, 0);
    out.extend_from_slice(&pcm[cut..]);
    let mut wav = Vec::with_capacity(44 + out.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + out.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(out.len() as u32).to_le_bytes());
    wav.extend_from_slice(&out);
    std::fs::write(dest, wav).unwrap();
}

/// `n` recognizer processes, once each takes streams.
async fn recognizers(app: &TestApp, n: usize) -> Fleet {
    let mut fleet = Fleet::new();
    for _ in 0..n {
        let settings = app.settings.clone();
        fleet.add("recognizer", move || {
            worker_command(&settings, "trd-recognizer")
        });
    }
    app.eventually(
        "the recognizers take streams",
        Duration::from_secs(60),
        || async { (recognizer_consumers(app).await >= n as u32).then_some(()) },
    )
    .await;
    fleet
}

/// Consumers on the stream offer queue.
async fn recognizer_consumers(app: &TestApp) -> u32 {
    app.queue.live_offer_consumers().await.unwrap_or(0)
}

async fn four_streams(app: &TestApp, key: &str, clips: &[PathBuf], speed: &str) -> Vec<Value> {
    let runs = clips.iter().map(|c| {
        let (app_url, key, c, speed) = (
            ws_url(app, "/asr/ws"),
            key.to_owned(),
            c.to_string_lossy().into_owned(),
            speed.to_owned(),
        );
        client(vec![
            "vosk".into(),
            app_url,
            c,
            "--bearer".into(),
            key,
            "--speed".into(),
            speed,
        ])
    });
    futures::future::join_all(runs).await
}

/// Two slots and five clients: three are refused at once with 503 and `Retry-After`, two
/// complete; afterwards a new stream is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_beyond_the_slots_are_refused_at_once() {
    let app = spawn_app_with(Workers::InProcess, |s| {
        s.stream_slots = 2;
        s.stream_accept_ms = 1_000;
    })
    .await;
    let (_, key) = app.create_key(&["read", "operate"], None).await;
    let audio = clip("104_003_0019");
    let started = Instant::now();
    let runs = (0..5).map(|i| {
        let app = &app;
        let key = key.clone();
        let audio = audio.clone();
        async move {
            // The first two take the slots before the rest ask.
            tokio::time::sleep(Duration::from_millis(if i < 2 { 0 } else { 1_000 })).await;
            stream(app, &key, "vosk", "/asr/ws", &audio, &["--speed", "2"]).await
        }
    });
    let reports = futures::future::join_all(runs).await;
    let refused: Vec<&Value> = reports
        .iter()
        .filter(|r| r["refused"].is_object())
        .collect();
    let served: Vec<&Value> = reports.iter().filter(|r| r["refused"].is_null()).collect();
    assert_eq!(refused.len(), 3, "{reports:?}");
    assert_eq!(served.len(), 2, "{reports:?}");
    for r in &refused {
        assert_eq!(r["refused"]["status"], 503, "{r}");
        assert!(r["refused"]["headers"]["retry-after"].is_string(), "{r}");
    }
    for r in &served {
        no_error(r);
        assert!(!r["text"].as_str().unwrap().is_empty());
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    let again = stream(&app, &key, "vosk", "/asr/ws", &audio, &["--speed", "5"]).await;
    no_error(&again);
}

/// The session limits: a client that goes silent is closed after `stream_idle_seconds` (1001,
/// going away), and a session that reaches `stream_max_seconds` ends with its final result and
/// a normal close while the client still sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_and_overlong_sessions_end() {
    let app = spawn_app_with(Workers::InProcess, |s| {
        s.stream_idle_seconds = 2;
        s.stream_max_seconds = 4;
    })
    .await;
    let (_, key) = app.create_key(&["read", "operate"], None).await;
    let audio = clip("104_003_0019");

    let started = Instant::now();
    let silent = stream(
        &app,
        &key,
        "vosk",
        "/asr/ws",
        &audio,
        &["--silent-after", "1"],
    )
    .await;
    assert_eq!(silent["close_code"], 1001, "{silent}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(15),
        "{waited:?}"
    );

    let overlong = stream(&app, &key, "vosk", "/asr/ws", &audio, &[]).await;
    assert_eq!(overlong["close_code"], 1000, "{overlong}");
    let sent = overlong["audio_sent"].as_f64().unwrap();
    assert!(
        sent < 8.0,
        "the session ended at its length limit: {overlong}"
    );
    let finals = overlong["finals"].as_array().unwrap();
    assert!(
        finals
            .iter()
            .any(|f| !f["text"].as_str().unwrap_or_default().is_empty()),
        "what was heard comes as a final result: {overlong}"
    );
}
