//! File management and webhooks as the vendor's client library uses them (contract sections
//! 2, 3 and 6), with a real HTTP server receiving the callbacks.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use trd_tests::app::{spawn_app, spawn_app_with, TestApp, Workers};
use trd_tests::data;
use trd_tests::receiver::{Received, Receiver};

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
    trd_tests::procfs::memory_kb("self", "status", "VmRSS").unwrap() * 1024
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

/// Registers the clip in a batch of its own, starts it with `webhooks` (no workers: it stays
/// RUNNING) and deletes it, which queues one DELETED delivery per webhook, due at once.
/// Returns the file's id and when the delete was asked for.
async fn deleted_with_webhooks(
    app: &TestApp,
    batch: &str,
    webhooks: &[String],
) -> (String, Instant) {
    app.copy_into_batch(batch, &[clip()]);
    let records = app.wait_registered(batch, 1).await;
    let id = records[0]["_id"].as_str().unwrap().to_owned();
    let query: Vec<String> = webhooks.iter().map(|w| format!("webhook={w}")).collect();
    app.get_ok(&format!(
        "/trd/transcription/start/audiofile/{id}?{}",
        query.join("&")
    ))
    .await;
    let asked = Instant::now();
    let deleted = app
        .http
        .delete(app.url(&format!("/trd/audiofile/delete/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    (id, asked)
}

/// The first request the receiver got at `path`.
async fn callback_at(app: &TestApp, receiver: &Receiver, path: &str) -> Received {
    app.eventually(path, Duration::from_secs(30), || async {
        receiver.requests().into_iter().find(|r| r.path == path)
    })
    .await
}

/// The README's verification recipe: HMAC-SHA256 over "<timestamp>.<raw body>", compared in
/// constant time, and a timestamp at most 5 minutes off.
fn signature_verifies(secret: &str, request: &Received) -> bool {
    let (Some(timestamp), Some(signature)) = (
        request.header("X-TRD-Timestamp"),
        request.header("X-TRD-Signature"),
    ) else {
        return false;
    };
    let Some(hex_digest) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.raw_body);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fresh = timestamp
        .parse::<u64>()
        .is_ok_and(|t| t.abs_diff(now) <= 300);
    fresh && mac.verify_slice(&digest).is_ok()
}

/// A generated secret is kept owner-only and survives a restart; every delivery verifies
/// against it with the documented recipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_with_the_kept_secret() {
    let _turn = trd_tests::turns::shared().await;
    let mut app = spawn_app(Workers::None).await;
    let path = app.settings.state_dir.join("webhook-secret");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    let kept = std::fs::read_to_string(&path).unwrap();
    let secret = kept.trim();
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));

    let receiver = Receiver::start("127.0.0.1:0").await;
    let (id, _) = deleted_with_webhooks(&app, "signed", &[receiver.url("/signed")]).await;
    let hit = callback_at(&app, &receiver, &format!("/signed/{id}")).await;
    assert_eq!(hit.body["event"], "DELETED");
    assert!(signature_verifies(secret, &hit), "{:?}", hit.headers);
    assert!(!signature_verifies(
        "another secret, 64 characters or not",
        &hit
    ));
    let mut tampered = hit.clone();
    tampered.raw_body.push(b' ');
    assert!(!signature_verifies(secret, &tampered));

    // A later start signs with the secret it finds.
    app.restart_api().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), kept);
    let (id, _) = deleted_with_webhooks(&app, "signed-again", &[receiver.url("/again")]).await;
    let hit = callback_at(&app, &receiver, &format!("/again/{id}")).await;
    assert!(signature_verifies(secret, &hit), "{:?}", hit.headers);
}

/// An IPv6 address carrying an IPv4 one is the IPv4 host it reaches: the metadata endpoint and
/// private networks stay out, whatever IPv6 the allow-list admits, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_addresses_written_as_ipv6_are_judged_as_ipv4() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;
    for (host, why) in [
        ("::ffff:169.254.169.254", "link-local"),
        ("[::ffff:a9fe:a9fe]", "link-local"),
        ("::ffff:10.0.0.1", "allow-list"),
        ("::ffff:192.168.1.1", "allow-list"),
    ] {
        let (status, body) = app.get(&format!("/trd/webhook/validate/{host}/80")).await;
        assert_eq!(status, 403, "{host}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{host}: {message}");
    }
    app.copy_into_batch("mapped", &[clip()]);
    let records = app.wait_registered("mapped", 1).await;
    let id = records[0]["_id"].as_str().unwrap();
    let (status, body) = app
        .get(&format!(
            "/trd/transcription/start/audiofile/{id}?webhook=http://[::ffff:10.0.0.1]/x"
        ))
        .await;
    assert_eq!(status, 400, "{body}");

    // Every IPv6 address allowed, but of IPv4 only 127.0.0.1: 127.0.0.2 written as IPv6 is
    // still 127.0.0.2, and is never contacted.
    let wide = spawn_app_with(Workers::None, |s| {
        s.webhook_allow = vec!["127.0.0.1/32".into(), "::/0".into()]
    })
    .await;
    let outsider = Receiver::start("127.0.0.2:0").await;
    let port = outsider.addr.port();
    let (status, body) = wide
        .get(&format!("/trd/webhook/validate/::ffff:127.0.0.2/{port}"))
        .await;
    assert_eq!(status, 403, "{body}");
    let posted = wide
        .http
        .post(wide.url(&format!("/trd/webhook/validate/::ffff:127.0.0.2/{port}")))
        .json(&serde_json::json!({"token": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 403);
    let (status, _) = wide
        .get("/trd/webhook/validate/::ffff:169.254.169.254/80")
        .await;
    assert_eq!(status, 403);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(outsider.connections(), 0, "a refused target was contacted");
}

/// Only a POST with a body sets a target's token: a GET validate (or a POST without a body)
/// checks and leaves the token the next delivery carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_validate_keeps_the_token_a_post_set() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app(Workers::None).await;
    let receiver = Receiver::start("127.0.0.1:0").await;
    let validate = app.url(&format!(
        "/trd/webhook/validate/127.0.0.1/{}",
        receiver.addr.port()
    ));
    let posted = app
        .http
        .post(&validate)
        .json(&serde_json::json!({"crt": "", "token": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.json::<Value>().await.unwrap(), Value::Bool(true));
    let got = app.http.get(&validate).send().await.unwrap();
    assert_eq!(got.json::<Value>().await.unwrap(), Value::Bool(true));
    let bare = app.http.post(&validate).send().await.unwrap();
    assert_eq!(bare.json::<Value>().await.unwrap(), Value::Bool(true));

    let (id, _) = deleted_with_webhooks(&app, "tokened", &[receiver.url("/t")]).await;
    let hit = callback_at(&app, &receiver, &format!("/t/{id}")).await;
    assert_eq!(hit.body["token"], "kept", "{}", hit.body);
}

/// A host that accepts connections and never answers; it holds every socket it accepts.
struct SilentHost {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl SilentHost {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Self { addr, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// 50 deliveries to a host that never answers take its two slots and wait their turn; a
/// delivery to a good host goes out at once beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_that_never_answers_delays_no_one_else() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::None, |s| s.webhook_timeout_ms = 60_000).await;
    let per_host = app.settings.webhook_per_host;
    let silent = SilentHost::start().await;
    // 50 deliveries: five files, each started with ten webhooks (the most one start takes).
    for file in 0..5 {
        let hung: Vec<String> = (0..10)
            .map(|i| format!("http://{}/hang/{file}/{i}", silent.addr))
            .collect();
        deleted_with_webhooks(&app, &format!("hung{file}"), &hung).await;
    }
    app.eventually(
        "the silent host's slots taken",
        Duration::from_secs(10),
        || async { (silent.accepted() >= per_host).then_some(()) },
    )
    .await;

    let receiver = Receiver::start("127.0.0.1:0").await;
    let (id, due) = deleted_with_webhooks(&app, "good", &[receiver.url("/good")]).await;
    let hit = callback_at(&app, &receiver, &format!("/good/{id}")).await;
    let waited = hit.at.duration_since(due);
    println!("the good host's callback arrived {waited:?} after it was due");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert_eq!(
        silent.accepted(),
        per_host,
        "at most webhook_per_host connections to one host"
    );
}
