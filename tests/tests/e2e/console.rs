//! The operator console (`/trd/ui`) driven in headless Chromium through a real flow, its
//! audio endpoint's Range answers, and its budget on a 1,000-file batch.

use mongodb::bson::doc;
use trd_core::domain::{Control, SegmentStatus, Status};
use trd_tests::app::{spawn_app, spawn_app_with, TestApp, Workers};
use trd_tests::data;
use trd_tests::fixtures::{an_hour_ago, insert_batch, FileSpec};
use trd_tests::tools::{artifacts_dir, python_json};

const CONSOLE_UI: &str = include_str!("../../scripts/console_ui.py");

/// The stereo dialogue (57.06 s) as AIFF, a format the normalizer decodes and no browser
/// plays.
fn unplayable_recording(dir: &std::path::Path) -> std::path::PathBuf {
    let aiff = dir.join("dlg_104_110.aiff");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(data::path("dialogues/dlg_104_110_stereo_8k_ulaw.wav"))
        .args(["-c:a", "pcm_s16be"])
        .arg(&aiff)
        .status()
        .expect("ffmpeg (installed by scripts/lib/provision-test.sh)");
    assert!(status.success());
    aiff
}

/// Samples taken while the audio played (`time`, the highlighted word's `start`, `end`):
/// at least `at_least` found a word highlighted, each the word being heard (within 0.5 s of
/// the audio's time), and the highlight moved on, never back.
fn assert_highlight_follows_the_audio(samples: &serde_json::Value, at_least: usize) {
    let samples = samples.as_array().unwrap();
    let heard: Vec<_> = samples.iter().filter(|s| !s["word"].is_null()).collect();
    assert!(heard.len() >= at_least, "{samples:?}");
    for sample in &heard {
        let (t, start, end) = (
            sample["time"].as_f64().unwrap(),
            sample["start"].as_f64().unwrap(),
            sample["end"].as_f64().unwrap(),
        );
        let off = if t < start {
            start - t
        } else {
            (t - end).max(0.0)
        };
        assert!(
            off <= 0.5,
            "word {start}–{end} highlighted at {t}: {sample}"
        );
        assert_eq!(sample["paused"], false, "{sample}");
    }
    let starts: Vec<f64> = heard.iter().map(|s| s["start"].as_f64().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    assert!(
        starts.last() > starts.first(),
        "the highlight never moved: {starts:?}"
    );
}

/// Uploads `audio` into `batch`; its record's id.
async fn upload(app: &TestApp, batch: &str, audio: &std::path::Path) -> String {
    let name = audio.file_name().unwrap().to_str().unwrap();
    let (status, body) = app.upload(batch, name, std::fs::read(audio).unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let urls: serde_json::Value = serde_json::from_str(&body).unwrap();
    let url = urls[name].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

/// The audio endpoint answers one byte range with 206 and exactly those bytes, the whole file
/// without a range, 416 past the end, and 404 to a principal that may not see the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audio_endpoint_serves_ranges_only_to_who_may_see_the_file() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::None, |s| s.trusted_networks = Vec::new()).await;
    let clip = data::path("dialogues/dlg_104_110.flac");
    let bytes = std::fs::read(&clip).unwrap();
    let id = upload(&app, "calls", &clip).await;
    let (_, reader) = app.create_key(&["read"], Some(&["calls"])).await;
    let (_, outsider) = app.create_key(&["operate"], Some(&["other"])).await;
    let reader = app.client_with_key(&reader);
    let path = app.url(&format!("/trd/audiofile/audio/{id}"));

    let whole = reader.get(&path).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-type"], "audio/flac");
    assert_eq!(whole.bytes().await.unwrap(), bytes);

    let len = bytes.len();
    for (range, from, to) in [
        ("bytes=0-1023", 0, 1023),
        ("bytes=1000-", 1000, len - 1),
        ("bytes=-500", len - 500, len - 1),
        (
            &format!("bytes={}-{}", len / 2, len / 2 + 77_777) as &str,
            len / 2,
            len / 2 + 77_777,
        ),
    ] {
        let part = reader
            .get(&path)
            .header("Range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206, "{range}");
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes {from}-{to}/{len}").as_str(),
            "{range}"
        );
        assert_eq!(
            part.headers()["content-length"],
            (to - from + 1).to_string().as_str()
        );
        assert_eq!(part.bytes().await.unwrap(), bytes[from..=to], "{range}");
    }
    let past = reader
        .get(&path)
        .header("Range", format!("bytes={len}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{len}").as_str()
    );

    // The credential in the query, as the console's <audio> element sends it.
    let key_in_url = reqwest::Client::new()
        .get(format!("{path}?auth_token={}", app.admin_key()))
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(key_in_url.status(), 206);
    assert_eq!(key_in_url.bytes().await.unwrap(), bytes[..10]);

    for client in [app.client_with_key(&outsider), reqwest::Client::new()] {
        let refused = client
            .get(&path)
            .header("Range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert!(
            [401, 404].contains(&refused.status().as_u16()),
            "{}",
            refused.status()
        );
    }
    let outsider = app.client_with_key(&outsider);
    assert_eq!(outsider.get(&path).send().await.unwrap().status(), 404);
    // Nor does the console show it the batch.
    let listed = app.get_ok_with(&outsider, "/trd/console/batches").await;
    assert_eq!(listed, serde_json::json!([]));
    let rows = outsider
        .get(app.url("/trd/console/batch/calls/files"))
        .send()
        .await
        .unwrap();
    assert_eq!(rows.status(), 404);
    let rows = app
        .get_ok_with(&reader, "/trd/console/batch/calls/files")
        .await;
    assert_eq!(rows[0]["filename"], "dlg_104_110.flac", "{rows}");

    // A copy browsers play: 16-bit PCM WAV at the service's rate, every channel, in ranges too.
    let staging = tempfile::tempdir().unwrap();
    let odd = upload(&app, "calls", &unplayable_recording(staging.path())).await;
    let copy_path = app.url(&format!("/trd/audiofile/audio/{odd}?format=wav"));
    let copy = reader.get(&copy_path).send().await.unwrap();
    assert_eq!(copy.status(), 200);
    assert_eq!(copy.headers()["content-type"], "audio/wav");
    let wav = copy.bytes().await.unwrap();
    assert_eq!((&wav[..4], &wav[8..12]), (&b"RIFF"[..], &b"WAVE"[..]));
    let channels = u16::from_le_bytes([wav[22], wav[23]]);
    let rate = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
    assert_eq!((channels, rate), (2, 16_000));
    let seconds = (wav.len() - 44) as f64 / (2.0 * 2.0 * 16_000.0);
    assert!((seconds - 57.06).abs() < 0.1, "{seconds} s");
    let part = reader
        .get(&copy_path)
        .header("Range", "bytes=44-1043")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), wav[44..1044]);
    let unknown = reader
        .get(app.url(&format!("/trd/audiofile/audio/{odd}?format=mp3")))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);

    // The record outlives its audio: the answer is a 404 that says so, not a 500.
    std::fs::remove_file(app.workdir().join("calls/dlg_104_110.flac")).unwrap();
    let gone = reader.get(&path).send().await.unwrap();
    assert_eq!(gone.status(), 404);
}

/// An operator's whole session in Chromium: sign in, upload two files into a new batch by the
/// file input, start, stop, reset and start again with the buttons, watch the bars reach 100 %,
/// open a file, play it with the space bar and follow the highlighted word, click a word and
/// hear it from there, download the SRT; then a read-only key sees no button that changes
/// anything. Screenshots of each page are kept in `var/test-artifacts/ui/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_runs_a_batch_and_follows_a_transcript_in_chromium() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::InProcess, |s| s.trusted_networks = Vec::new()).await;
    let (_, operator) = app.create_key(&["operate"], None).await;
    let (_, reader) = app.create_key(&["read"], None).await;
    let registered = app
        .admin()
        .post(app.url("/users"))
        .json(&serde_json::json!({
            "username": "listener", "password": "a long enough passphrase",
            "scopes": ["read"], "batches": ["elsewhere"],
        }))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{}", registered.status());
    let staging = tempfile::tempdir().unwrap();
    let odd = upload(&app, "odd", &unplayable_recording(staging.path())).await;
    let shots = artifacts_dir("ui");
    let downloads = tempfile::tempdir().unwrap();
    let files = [
        data::path("dialogues/dlg_104_109.flac"),
        data::path("ko/zeroth-104/104_003_0019.wav"),
    ];
    // Chromium's file input takes canonical paths only.
    let files: Vec<String> = files
        .iter()
        .map(|f| f.canonicalize().unwrap().display().to_string())
        .collect();
    let (shots_arg, downloads_arg) = (
        shots.display().to_string(),
        downloads.path().display().to_string(),
    );
    let mut args = vec![
        "flow",
        app.base.as_str(),
        operator.as_str(),
        reader.as_str(),
        "listener",
        "a long enough passphrase",
        "console",
        shots_arg.as_str(),
        downloads_arg.as_str(),
        odd.as_str(),
    ];
    args.extend(files.iter().map(String::as_str));
    let seen = tokio::task::block_in_place(|| python_json(CONSOLE_UI, &args));
    eprintln!("console: {seen}");

    assert!(seen["who"].as_str().unwrap().contains("operate"), "{seen}");
    assert_eq!(
        seen["uploaded"],
        serde_json::json!({"dlg_104_109.flac": "uploaded", "104_003_0019.wav": "uploaded"})
    );
    // Stop paused what was running; reset brought the paused files back to IDLE.
    assert!(seen["stopped"].get("RUNNING").is_none(), "{seen}");
    assert!(
        seen["reset"]
            .as_object()
            .unwrap()
            .keys()
            .all(|c| c == "IDLE" || c == "FINISHED"),
        "{seen}"
    );
    // The bars moved, and ended full. (Overall progress weighs files by their audio, which is
    // known once they are normalized: it may step back a little when a long file's is.)
    let overall: Vec<f64> = seen["overall"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(overall.len() >= 3 && overall[0] < 1.0, "{overall:?}");
    assert_eq!(overall.last(), Some(&1.0), "{overall:?}");
    for (stage, value) in seen["bars_at_end"].as_object().unwrap() {
        assert_eq!(value.as_f64(), Some(1.0), "{stage}: {seen}");
    }
    assert_eq!(
        seen["controls_at_end"],
        serde_json::json!({"FINISHED": "FINISHED 2"})
    );
    assert_eq!(seen["rows"].as_array().unwrap().len(), 2);

    // Playing: the highlighted word advances with the audio and is the word being heard.
    assert_highlight_follows_the_audio(&seen["playing"], 4);
    let times: Vec<f64> = seen["playing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_f64().unwrap())
        .collect();
    assert!(times.last().unwrap() - times[0] > 2.5, "{times:?}");
    assert_eq!(seen["paused_by_space"], true);
    // A click on a word seeks to it.
    let clicked = &seen["clicked"];
    let (start, time) = (
        clicked["start"].as_f64().unwrap(),
        clicked["time"].as_f64().unwrap(),
    );
    assert!(start > 5.0 && (time - start).abs() < 0.5, "{clicked}");
    // → goes to the next segment's start.
    let arrow = &seen["arrow"];
    let after = arrow["after"].as_f64().unwrap();
    let next = arrow["starts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .find(|s| *s > arrow["before"].as_f64().unwrap() + 0.05)
        .expect("a later segment");
    // (The clicked word left the audio playing: it went on from there for a moment.)
    assert!(after >= next - 0.05 && after < next + 0.8, "{arrow}");

    // The SRT downloaded is the file's SRT.
    let srt = seen["srt"]["text"].as_str().expect("an SRT was downloaded");
    let id = app
        .store
        .database()
        .collection::<mongodb::bson::Document>("audiofiles")
        .find_one(doc! {"batch": "console", "filename": "dlg_104_109.flac"})
        .await
        .unwrap()
        .unwrap()
        .get_object_id("_id")
        .unwrap();
    let served = app
        .admin()
        .get(app.url(&format!(
            "/trd/transcription/result/audiofile/{id}?format=srt"
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(srt.contains(" --> "), "{srt}");
    assert_eq!(srt, served);

    // The AIFF recording played from its WAV copy, whole.
    let odd = &seen["odd"];
    assert!(odd["src"].as_str().unwrap().contains("format=wav"), "{odd}");
    assert!(
        (odd["duration"].as_f64().unwrap() - 57.06).abs() < 0.1,
        "{odd}"
    );

    assert!(seen["health"]["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d.as_str().unwrap().starts_with("up")));
    assert!(!seen["health"]["queues"].as_array().unwrap().is_empty());

    // The read-only key: no buttons, no upload, downloads still there.
    assert!(seen["reader"].as_str().unwrap().contains("read"), "{seen}");
    assert_eq!(seen["reader_batches_buttons"], 0);
    assert_eq!(seen["reader_batch_buttons"], 0);
    assert_eq!(seen["reader_upload_link_shown"], false);
    assert!(seen["reader_downloads"].as_u64().unwrap() >= 3);
    assert!(seen["phone_overflow"].as_i64().unwrap() <= 0, "{seen}");

    // The user signed in with name and password; limited to other batches, they do not see
    // this one, and its page answers as for a batch that does not exist.
    assert!(
        seen["user"].as_str().unwrap().starts_with("user:listener"),
        "{seen}"
    );
    assert_eq!(seen["user_batches"], serde_json::json!([]), "{seen}");
    assert!(
        seen["user_batch_page"]
            .as_str()
            .unwrap()
            .contains("no batch"),
        "{seen}"
    );

    // Every state change the console made is in the audit trail, as the operator's key.
    let audit = app.get_ok_with(&app.admin(), "/trd/audit?limit=200").await;
    let actions: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["principal"].as_str().unwrap_or("").starts_with("key:"))
        .map(|e| e["action"].as_str().unwrap_or("").to_owned())
        .collect();
    for action in ["start", "stop", "reset", "upload"] {
        assert!(
            actions.iter().any(|a| a.contains(action)),
            "{action} in {actions:?}"
        );
    }
    for shot in seen["screens"].as_array().unwrap() {
        let png = std::fs::read(shot.as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{shot}");
    }
}

/// The console in Firefox (Debian's ESR, through geckodriver): the bars, the table, and a
/// transcript followed as it plays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_works_in_firefox() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let id = upload(&app, "calls", &data::path("dialogues/dlg_104_110.flac")).await;
    app.get_ok("/trd/transcription/start/batch/calls").await;
    app.wait_batch_done("calls", std::time::Duration::from_secs(300))
        .await;
    let (_, reader) = app.create_key(&["read"], None).await;
    let shots = artifacts_dir("ui").display().to_string();
    let geckodriver = trd_tests::tools::geckodriver().display().to_string();
    let seen = tokio::task::block_in_place(|| {
        python_json(
            CONSOLE_UI,
            &[
                "firefox",
                &app.base,
                &reader,
                "calls",
                &id,
                &shots,
                &geckodriver,
            ],
        )
    });
    eprintln!("firefox: {seen}");
    assert!(seen["who"].as_str().unwrap().contains("read"), "{seen}");
    for (stage, value) in seen["bars"].as_object().unwrap() {
        assert_eq!(value.as_f64(), Some(1.0), "{stage}: {seen}");
    }
    assert_eq!(seen["buttons"], 0);
    assert_eq!(seen["rows"].as_array().unwrap().len(), 1, "{seen}");
    assert_highlight_follows_the_audio(&seen["playing"], 3);
    let clicked = &seen["clicked"];
    let (start, time) = (
        clicked["start"].as_f64().unwrap(),
        clicked["time"].as_f64().unwrap(),
    );
    assert!((time - start).abs() < 0.5, "{clicked}");
}

/// The page of a 1,000-file batch draws its table within a second of the navigation in
/// headless Chromium, and everything it loads (page, script, style, figures, rows) is under
/// 500 kB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_file_batch_page_renders_in_a_second_and_under_500_kb() {
    // A measurement: nothing else runs beside it.
    let _turn = trd_tests::turns::alone().await;
    let app = spawn_app(Workers::None).await;
    let files: Vec<FileSpec> = (0..1000)
        .map(|i| {
            let (control, status) = match i % 10 {
                0 => (Control::Failed, Status::Normalizing),
                1..=3 => (Control::Running, Status::Recognizing),
                _ => (Control::Finished, Status::Recognized),
            };
            let mut spec = FileSpec::new(&format!("call-{i:04}.wav"), control, status, 480_000)
                .channels(&[30.0 + f64::from(i % 60)]);
            if status != Status::Normalizing {
                spec = spec.segments(&[
                    (0.5, 8.0, SegmentStatus::Recognized),
                    (9.0, 17.5, SegmentStatus::Recognized),
                    (18.0, 26.0, SegmentStatus::Processing),
                ]);
            }
            spec
        })
        .collect();
    insert_batch(&app.store, "big", &files, an_hour_ago()).await;
    let (_, reader) = app.create_key(&["read"], None).await;
    let shots = artifacts_dir("ui").display().to_string();
    let measured = tokio::task::block_in_place(|| {
        python_json(CONSOLE_UI, &["budget", &app.base, &reader, "big", &shots])
    });
    eprintln!("1,000-file batch page: {measured}");
    println!(
        "1,000-file batch page: drawn at {} ms, {} bytes",
        measured["rendered_ms"], measured["transferred"]
    );
    assert_eq!(measured["rows"], 1000, "{measured}");
    let rendered = measured["rendered_ms"].as_f64().unwrap();
    let transferred = measured["transferred"].as_f64().unwrap();
    assert!(rendered < 1000.0, "drawn after {rendered} ms");
    assert!(transferred < 500_000.0, "{transferred} bytes: {measured}");
    assert!(
        transferred > 10_000.0,
        "the transfer was not measured: {measured}"
    );
    // The table filters by name and by control, shows why files failed, and sorts.
    assert_eq!(measured["filtered_by_name"], 100, "{measured}");
    assert_eq!(measured["filtered_by_control"], 100, "{measured}");
    let problems = measured["failed_problems"].as_array().unwrap();
    assert!(
        problems.iter().all(|p| p == "synthetic failure"),
        "{problems:?}"
    );
    assert_eq!(measured["sorted"], "descending");
    // Durations run 30–89 s: sorted descending, the first rows are the 89 s files.
    let durations = measured["durations"].as_array().unwrap();
    assert!(durations.iter().all(|d| d == "1:29.0"), "{durations:?}");
}
