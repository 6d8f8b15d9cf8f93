//! The Speechmatics batch jobs API, driven by the vendor's own clients as installed from PyPI
//! (`speechmatics-python`'s CLI and `speechmatics-batch`'s SDK), unchanged, against a running
//! TRD: transcripts in every format, speakers and channels, vocabulary, notifications, the
//! job list and deletion, the appliance's v1 paths, and one principal's jobs hidden from
//! another.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use trd_tests::app::{spawn_app, TestApp, Workers};
use trd_tests::data;
use trd_tests::receiver::{serve_file, Receiver};
use trd_tests::tools::{python_json, tool};

const SDK: &str = include_str!("../../scripts/speechmatics_sdk.py");

fn clip() -> PathBuf {
    data::path("ko/zeroth-104/104_003_0019.wav")
}

/// `speechmatics_sdk.py transcribe` on a blocking thread, so several run at once.
async fn sdk_transcribe(app: &TestApp, key: &str, file: PathBuf, config: Value) -> Value {
    let url = format!("{}/v2", app.base);
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        python_json(
            SDK,
            &[
                "transcribe",
                &url,
                &key,
                file.to_str().unwrap(),
                &config.to_string(),
            ],
        )
    })
    .await
    .unwrap()
}

/// The words of TRD's own result for a record, read through the TRD face.
async fn trd_words(app: &TestApp, id: &str) -> Vec<String> {
    let result = app
        .get_ok_with(
            &app.admin(),
            &format!("/trd/transcription/result/audiofile/{id}"),
        )
        .await;
    result["segments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["words"].as_array().unwrap().clone())
        .map(|w| w["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// Polls the job at `url` until the status at `pointer` says `done`.
async fn until_done(app: &TestApp, client: &reqwest::Client, url: &str, pointer: &str) -> Value {
    app.eventually(
        &format!("{url} to be done"),
        Duration::from_secs(120),
        || async {
            let job = get_json(client, url).await;
            (job.pointer(pointer) == Some(&json!("done"))).then_some(job)
        },
    )
    .await
}

/// Words of a text, without the sentence ends.
fn words_of(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_end_matches('.').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// What the CLI printed between its own framing lines (`Job submission successful … Waiting
/// for completion` before, a `=====` rule after): the transcript.
fn printed_transcript(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|l| !l.contains("Waiting for completion"))
        .skip(1)
        .take_while(|l| !l.starts_with("=========="))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Acceptance: the CLI prints the transcript in txt, json-v2 and srt; the new SDK's
/// `transcribe` flow returns a transcript whose text is TRD's own result; a notification
/// arrives with `id` and `status`; list and delete behave as the SDK expects; another key
/// cannot see the jobs; folder-batch listings do not show them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_vendor_clients_transcribe_list_and_delete_unchanged() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let receiver = Receiver::start("127.0.0.1:0").await;
    let (_, key) = app.create_key(&["operate"], None).await;
    let (_, other_key) = app.create_key(&["operate"], None).await;

    let notified = json!({
        "type": "transcription",
        "transcription_config": {"language": "ko"},
        "notification_config": [{
            "url": receiver.url("/done"),
            "contents": ["transcript.txt"],
            "auth_headers": ["Authorization: Bearer callback-secret"],
        }],
    });
    let sdk = sdk_transcribe(&app, &key, clip(), notified);
    let clis = ["txt", "json-v2", "srt"].map(|format| {
        let (app_base, key, file) = (app.base.clone(), key.clone(), clip());
        let home = app.workdir().to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(tool("speechmatics"))
                .args(["batch", "transcribe", "--url"])
                .arg(format!("{app_base}/v2"))
                .args([
                    "--auth-token",
                    &key,
                    "--lang",
                    "ko",
                    "--output-format",
                    format,
                ])
                .arg(&file)
                .env("HOME", home)
                .output()
                .expect("the speechmatics CLI runs")
        })
    });
    let sdk = sdk.await;
    let mut printed = Vec::new();
    for (format, run) in ["txt", "json-v2", "srt"].into_iter().zip(clis) {
        let out = run.await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "CLI --output-format {format}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push(printed_transcript(&stdout));
    }

    // The SDK's transcript is TRD's own result, word for word.
    let id = sdk["id"].as_str().unwrap();
    let own = trd_words(&app, id).await;
    assert!(!own.is_empty(), "TRD heard nothing in the clip");
    assert_eq!(sdk["status"], "done", "{sdk}");
    assert_eq!(sdk["transcript_type"], "Transcript");
    assert_eq!(sdk["data_name"], "104_003_0019.wav");
    assert!(sdk["duration"].as_f64().unwrap() > 1.0, "{sdk}");
    let sdk_words: Vec<String> = serde_json::from_value(sdk["words"].clone()).unwrap();
    assert_eq!(sdk_words, own);
    assert_eq!(words_of(sdk["transcript_text"].as_str().unwrap()), own);
    assert_eq!(words_of(sdk["txt"].as_str().unwrap()), own);
    assert!(sdk["srt"].as_str().unwrap().contains(" --> "), "{sdk}");
    assert_eq!(sdk["speakers"], json!(["UU"]), "no diarization asked for");

    // The CLI printed the same transcript in each format.
    assert_eq!(words_of(&printed[0]), own, "txt: {}", printed[0]);
    let json_v2: Value = serde_json::from_str(printed[1].trim()).expect("json-v2 is JSON");
    assert_eq!(json_v2["format"], "2.9");
    let cli_words: Vec<&str> = json_v2["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "word")
        .map(|r| r["alternatives"][0]["content"].as_str().unwrap())
        .collect();
    assert_eq!(cli_words, own);
    assert!(printed[2].starts_with("1\n"), "srt: {}", printed[2]);
    assert!(printed[2].contains(" --> "), "srt: {}", printed[2]);

    // The notification: the job's id and status, the vendor's user agent, the caller's
    // header, and the transcript asked for.
    let callback = app
        .eventually("the notification", Duration::from_secs(30), || async {
            receiver
                .requests()
                .into_iter()
                .find(|r| r.path.starts_with("/done"))
        })
        .await;
    assert_eq!(callback.method, "POST");
    assert_eq!(callback.path, format!("/done?id={id}&status=success"));
    assert_eq!(callback.header("user-agent"), Some("Speechmatics-API/2.0"));
    assert_eq!(
        callback.header("authorization"),
        Some("Bearer callback-secret")
    );
    assert!(callback
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(words_of(&String::from_utf8_lossy(&callback.raw_body)), own);

    // Another key's view: the job does not exist, in the vendor's error shape.
    let other = app.client_with_key(&other_key);
    let hidden = other
        .get(app.url(&format!("/v2/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), 404);
    let error: Value = hidden.json().await.unwrap();
    assert_eq!(error["code"], 404, "{error}");
    assert!(error["error"].is_string() && error["detail"].is_string());
    let theirs = get_json(&other, &app.url("/v2/jobs?sm-sdk=python-cli-5.0.0")).await;
    assert_eq!(theirs["jobs"], json!([]));
    // The jobs are in a private batch, not among the folder batches.
    let listed = app.get_ok_with(&app.admin(), "/trd/audiofile/list").await;
    assert_eq!(listed, json!([]), "{listed}");
    let record = app
        .get_ok_with(&app.admin(), &format!("/trd/audiofile/{id}"))
        .await;
    assert_eq!(record["control"], "FINISHED");

    // List and delete as the SDK does them: newest first, `limit`, a running job kept
    // without `force` and deleted with it, then unknown.
    let url = format!("{}/v2", app.base);
    let file = clip();
    let life = tokio::task::spawn_blocking(move || {
        python_json(SDK, &["lifecycle", &url, &key, file.to_str().unwrap()])
    })
    .await
    .unwrap();
    let submitted = life["submitted"].as_array().unwrap();
    assert_eq!(life["listed"][0], submitted[1], "newest first: {life}");
    assert_eq!(life["listed"][1], submitted[0], "{life}");
    assert_eq!(life["listed"].as_array().unwrap().len(), 6, "{life}");
    assert_eq!(life["limited"], json!([submitted[1]]));
    assert_eq!(life["config_language"], "ko", "the config is echoed");
    assert!(
        life["unforced"].as_str().unwrap().contains("still running"),
        "{life}"
    );
    assert!(
        life["after_delete"].as_str().unwrap().contains("404"),
        "{life}"
    );
    assert!(!life["listed_after"]
        .as_array()
        .unwrap()
        .contains(&submitted[1]));
}

/// The appliance's v1 paths (`?auth_token=`, `model=`, exactly 200, the v1 job shape) and
/// the errors a client must be able to act on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_v1_paths_and_refusals_speak_the_vendors_shapes() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let (_, key) = app.create_key(&["operate"], None).await;
    let anonymous = reqwest::Client::new();
    let form = |fields: &[(&str, &str)]| {
        let mut form = reqwest::multipart::Form::new().part(
            "data_file",
            reqwest::multipart::Part::bytes(std::fs::read(clip()).unwrap())
                .file_name("example.wav"),
        );
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        form
    };

    let submitted = app
        .http
        .post(app.url(&format!("/v1.0/user/7/jobs/?auth_token={key}")))
        .multipart(form(&[("model", "ko"), ("meta", "asset-id=29309231123")]))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 200);
    let submitted: Value = submitted.json().await.unwrap();
    assert_eq!(submitted["balance"], 0);
    assert_eq!(submitted["cost"], 0);
    assert!(submitted["check_wait"].as_u64().unwrap() > 0);
    let id = submitted["id"].as_str().unwrap().to_owned();
    let job_url = app.url(&format!("/v1/user/7/jobs/{id}/?auth_token={key}"));
    let job = until_done(&app, &anonymous, &job_url, "/job/job_status").await;
    let job = &job["job"];
    assert_eq!(job["user_id"], 7);
    assert_eq!(job["lang"], "ko");
    assert_eq!(job["name"], "example.wav");
    assert_eq!(job["meta"], "asset-id=29309231123");
    assert_eq!(job["job_type"], "transcription");
    assert!(job["check_wait"].is_null());
    let text = anonymous
        .get(app.url(&format!(
            "/v1/user/7/jobs/{id}/transcript?format=txt&auth_token={key}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 200);
    assert_eq!(
        words_of(&text.text().await.unwrap()),
        trd_words(&app, &id).await
    );

    // `fetch_data`: the audio downloaded from the caller's URL, with the caller's header.
    let fetched_url = serve_file(clip(), Some("Bearer fetch-secret")).await;
    let fetch = |headers: Value| {
        let config = json!({"type": "transcription", "transcription_config": {"language": "ko"},
            "fetch_data": {"url": fetched_url, "auth_headers": headers}});
        let form = reqwest::multipart::Form::new().text("config", config.to_string());
        app.client_with_key(&key)
            .post(app.url("/v2/jobs"))
            .multipart(form)
            .send()
    };
    let created = fetch(json!(["Authorization: Bearer fetch-secret"]))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let fetched_id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused_fetch = fetch(json!([])).await.unwrap();
    assert_eq!(refused_fetch.status(), 400, "the server answered 403");
    // Targets outside the webhook allow-list (loopback only by default) are refused before
    // anything is stored: audio to fetch, and notifications to send; so is audio given twice.
    for (config, with_audio) in [
        (
            json!({"type": "transcription", "transcription_config": {"language": "ko"},
                "fetch_data": {"url": "http://10.255.0.1/call.wav"}}),
            false,
        ),
        (
            json!({"type": "transcription", "transcription_config": {"language": "ko"},
                "notification_config": [{"url": "http://169.254.169.254/latest"}]}),
            true,
        ),
        // Audio twice over: which one would be transcribed?
        (
            json!({"type": "transcription", "transcription_config": {"language": "ko"},
                "fetch_data": {"url": fetched_url}}),
            true,
        ),
    ] {
        let text = config.to_string();
        let multipart = if with_audio {
            form(&[("config", &text)])
        } else {
            reqwest::multipart::Form::new().text("config", text)
        };
        let outside = app
            .client_with_key(&key)
            .post(app.url("/v2/jobs"))
            .multipart(multipart)
            .send()
            .await
            .unwrap();
        assert_eq!(outside.status(), 400, "{config}");
        let body: Value = outside.json().await.unwrap();
        assert_eq!(body["code"], 400, "{body}");
    }

    // Refusals, each in the vendor's error shape.
    let bearer = app.client_with_key(&key);
    let refused = |config: Value| {
        bearer
            .post(app.url("/v2/jobs"))
            .multipart(form(&[("config", &config.to_string())]))
            .send()
    };
    let unsupported = refused(json!({"type": "transcription",
        "transcription_config": {"language": "ko"},
        "translation_config": {"target_languages": ["en"]}}))
    .await
    .unwrap();
    assert_eq!(unsupported.status(), 501);
    let body: Value = unsupported.json().await.unwrap();
    assert_eq!(body["code"], 501);
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("translation_config"));
    let unknown_language = refused(json!({"type": "transcription",
        "transcription_config": {"language": "xx"}}))
    .await
    .unwrap();
    assert_eq!(unknown_language.status(), 400);
    let body: Value = unknown_language.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("ko"), "{body}");
    let not_json = bearer
        .post(app.url("/v2/jobs"))
        .multipart(form(&[("config", "{not json")]))
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let alignment = bearer
        .post(app.url("/v2/jobs"))
        .multipart(form(&[("model", "ko")]).part(
            "text_file",
            reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("text.txt"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(alignment.status(), 501);
    let unauthenticated = reqwest::Client::new()
        .get(app.url("/v2/jobs?auth_token=trd_nope_nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let unknown = bearer
        .get(app.url("/v2/jobs/0123456789abcdef01234567/transcript"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // Nothing was stored for the refused jobs.
    let jobs = get_json(&bearer, &app.url("/v2/jobs")).await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2, "{jobs}");
    let fetched_url = app.url(&format!("/v2/jobs/{fetched_id}"));
    let fetched = until_done(&app, &bearer, &fetched_url, "/job/status").await;
    assert_eq!(fetched["job"]["data_name"], "104_003_0019.wav");
    assert_eq!(
        trd_words(&app, &fetched_id).await,
        trd_words(&app, &id).await,
        "the same audio, fetched"
    );
}

/// Acceptance: a dialogue with `diarization: speaker` has its two speakers; channel mode on a
/// stereo call labels each word with the caller's labels; `additional_vocab` changes a word
/// for the better, written as the caller spells it, and a word the model cannot write is
/// reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn speakers_channels_and_vocabulary_come_through_the_sdk() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::InProcess).await;
    let (_, key) = app.create_key(&["operate"], None).await;
    let config = |transcription: Value| json!({"type": "transcription", "transcription_config": transcription});
    let (speakers, channels, plain, hinted) = tokio::join!(
        sdk_transcribe(
            &app,
            &key,
            data::path("dialogues/dlg_104_110.wav"),
            config(json!({"language": "ko", "diarization": "speaker"})),
        ),
        sdk_transcribe(
            &app,
            &key,
            data::path("dialogues/dlg_104_110_stereo.wav"),
            config(json!({"language": "ko", "diarization": "channel",
                "channel_diarization_labels": ["agent", "caller"]})),
        ),
        sdk_transcribe(&app, &key, clip(), config(json!({"language": "ko"}))),
        sdk_transcribe(
            &app,
            &key,
            clip(),
            config(json!({"language": "ko", "additional_vocab": [
                "동료",
                {"content": "KAEBAL", "sounds_like": ["개발"]},
            ]})),
        ),
    );
    assert_eq!(speakers["speakers"], json!(["S1", "S2"]), "{speakers}");
    assert!(speakers["txt"].as_str().unwrap().contains("SPEAKER: S2"));
    assert_eq!(
        channels["channels"],
        json!(["agent", "caller"]),
        "{channels}"
    );

    let plain_words: Vec<String> = serde_json::from_value(plain["words"].clone()).unwrap();
    let hinted_words: Vec<String> = serde_json::from_value(hinted["words"].clone()).unwrap();
    assert!(!plain_words.iter().any(|w| w == "개발"), "{plain_words:?}");
    assert!(
        hinted_words.iter().any(|w| w == "KAEBAL"),
        "the hinted reading, written as spelled: {hinted_words:?}"
    );
    // The content itself is no word of the model's: the job says so.
    let details = get_json(
        &app.client_with_key(&key),
        &app.url(&format!("/v2/jobs/{}", hinted["id"].as_str().unwrap())),
    )
    .await;
    let warnings = details["job"]["warnings"].to_string();
    assert!(warnings.contains("KAEBAL"), "{details}");
}
