//! Identity (issue "Identity"): every route of the OpenAPI document needs the right
//! credential, tenants see only their batches, browsers cannot make another site's page change
//! state, the DeepSpeech and Nanotrix token flows work, secrets are never stored or logged in
//! the clear, every state change is audited, and the rate and upload limits answer 429.

use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, Document};
use reqwest::Method;
use serde_json::{json, Value};
use trd_core::domain::{Control, SegmentStatus, Status};
use trd_tests::app::{
    bin_dir, configured_command, spawn_app_with, wait_until_answering, TestApp, Workers,
};
use trd_tests::fixtures::{an_hour_ago, insert_batch, FileSpec};

/// What a route of the document needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Log-ins: open to anyone.
    Public,
    /// Registration: an admin unless `open_registration` is set.
    Registration,
    /// A task token needs an access token, not a key.
    AccessToken,
    Read,
    Operate,
    Admin,
}

/// The table: every route of the OpenAPI document and what it needs. A route the table does
/// not know fails the test, so a new route cannot slip in unclassified.
fn need(method: &str, path: &str) -> Need {
    let changes = ["/start/", "/stop/", "/reset/", "/create/", "/validate/"];
    match (method, path) {
        ("post", "/token" | "/api/v1/token" | "/login/access-token") => Need::Public,
        ("post", "/token/refresh" | "/api/v1/token/refresh") => Need::Public,
        ("post", "/users" | "/api/v1/users/register") => Need::Registration,
        ("post", "/store/ntx-token") => Need::AccessToken,
        (_, p) if p.starts_with("/trd/auth/") || p == "/trd/audit" => Need::Admin,
        ("get", p) if p.starts_with("/trd/") && changes.iter().any(|c| p.contains(c)) => {
            Need::Operate
        }
        ("get", p) if p.starts_with("/trd/") => Need::Read,
        ("post" | "delete", p) if p.starts_with("/trd/") => Need::Operate,
        // The Speechmatics jobs API: reading jobs, and submitting or deleting them.
        ("get", p) if p.starts_with("/v2/jobs") || p.starts_with("/{version}/user/") => Need::Read,
        ("post" | "delete", p)
            if p.starts_with("/v2/jobs") || p.starts_with("/{version}/user/") =>
        {
            Need::Operate
        }
        // The recognize-now faces: listing models reads; recognizing (even by GET, UWebASR's
        // `?url=`) does work.
        ("get", "/v1/models") => Need::Read,
        ("post", "/v1/audio/transcriptions" | "/asr" | "/detect-language") => Need::Operate,
        ("post", "/api/stt/http" | "/api/v1/stt/http" | "/api/v1/file/v2t") => Need::Operate,
        ("get" | "post", "/api/v2/{app_id}") => Need::Operate,
        _ => panic!("the identity table does not know {method} {path}"),
    }
}

/// Every operation of the served document, with its path parameters filled in.
async fn operations(app: &TestApp) -> Vec<(Method, String, Need)> {
    let doc: Value = app.get_ok("/trd/openapi.json").await;
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            let need = need(method, path);
            let mut concrete = path
                .replace("{id}", &ObjectId::new().to_hex())
                .replace("{batch}", "A")
                .replace("{filename}", "f.wav")
                .replace("{host}", "127.0.0.1")
                .replace("{port}", "9")
                .replace("{collection}", "audiofiles")
                .replace("{name}", "nobody")
                .replace("{version}", "v1")
                .replace("{user_id}", "1")
                .replace("{app_id}", "generic/ko");
            if concrete.contains("/validate/") {
                concrete.push_str("?timeout=0.2");
            }
            out.push((method.to_uppercase().parse().unwrap(), concrete, need));
        }
    }
    assert!(out.len() >= 30, "{} operations", out.len());
    out
}

async fn status_of(client: &reqwest::Client, app: &TestApp, method: &Method, path: &str) -> u16 {
    client
        .request(method.clone(), app.url(path))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_the_right_credential() {
    let _turn = trd_tests::turns::shared().await;
    // No trusted network: an anonymous request is an outsider's.
    let app = spawn_app_with(Workers::None, |s| s.trusted_networks = Vec::new()).await;
    let ops = operations(&app).await;
    let (_, read) = app.create_key(&["read"], None).await;
    let (_, operate) = app.create_key(&["operate"], None).await;
    let (reader, operator) = (app.client_with_key(&read), app.client_with_key(&operate));
    let anonymous = reqwest::Client::new();

    for (method, path, need) in &ops {
        let nobody = status_of(&anonymous, &app, method, path).await;
        let by_reader = status_of(&reader, &app, method, path).await;
        let by_operator = status_of(&operator, &app, method, path).await;
        let what = format!("{method} {path} ({need:?}): anonymous {nobody}, read {by_reader}, operate {by_operator}");
        match need {
            Need::Public => assert!(
                ![401, 403].contains(&nobody) || path.contains("refresh"),
                "{what}"
            ),
            Need::AccessToken => {
                assert_eq!(nobody, 401, "{what}");
                assert_eq!(by_reader, 401, "a key is not an access token: {what}");
            }
            Need::Registration => {
                assert_eq!(nobody, 401, "{what}");
                assert_eq!(by_reader, 403, "{what}");
                assert_eq!(by_operator, 403, "{what}");
            }
            Need::Read => {
                assert_eq!(nobody, 401, "{what}");
                assert!(![401, 403].contains(&by_reader), "{what}");
                assert!(![401, 403].contains(&by_operator), "{what}");
            }
            Need::Operate => {
                assert_eq!(nobody, 401, "{what}");
                assert_eq!(by_reader, 403, "{what}");
                assert!(![401, 403].contains(&by_operator), "{what}");
            }
            Need::Admin => {
                assert_eq!(nobody, 401, "{what}");
                assert_eq!(by_reader, 403, "{what}");
                assert_eq!(by_operator, 403, "{what}");
            }
        }
    }

    // Deleting audio on disk and hard resets are an admin's.
    let ids = insert_batch(
        &app.store,
        "A",
        &[FileSpec::new(
            "a.wav",
            Control::Finished,
            Status::Recognized,
            1_000,
        )],
        an_hour_ago(),
    )
    .await;
    let id = ids[0].to_hex();
    for (method, path) in [
        (
            Method::DELETE,
            format!("/trd/audiofile/delete/{id}?deleteOnDisk=true"),
        ),
        (
            Method::DELETE,
            "/trd/audiofile/delete/batch/A?deleteOnDisk=true".to_owned(),
        ),
        (
            Method::GET,
            "/trd/transcription/reset/batch/A?hard=true".to_owned(),
        ),
    ] {
        assert_eq!(
            status_of(&operator, &app, &method, &path).await,
            403,
            "{path}"
        );
    }
    let record = app
        .get_ok_with(&operator, &format!("/trd/audiofile/{id}"))
        .await;
    assert_eq!(
        record["control"], "FINISHED",
        "nothing was reset or deleted"
    );
    let hard = status_of(
        &app.admin(),
        &app,
        &Method::GET,
        "/trd/transcription/reset/batch/A?hard=true",
    )
    .await;
    assert_eq!(hard, 200);

    // Every way of presenting a key works; a wrong or revoked one is 401.
    for path in [
        format!("/trd/audiofile/list?auth_token={read}"),
        format!("/trd/audiofile/list?token={read}"),
    ] {
        assert_eq!(
            status_of(&anonymous, &app, &Method::GET, &path).await,
            200,
            "{path}"
        );
    }
    let with_ntx = anonymous
        .get(app.url("/trd/audiofile/list"))
        .header("ntx-token", &read)
        .send()
        .await
        .unwrap();
    assert_eq!(with_ntx.status(), 200);
    let wrong = format!("{}0", &read[..read.len() - 1]);
    let wrong = if wrong == read {
        read.replace('a', "b")
    } else {
        wrong
    };
    let resp = app
        .client_with_key(&wrong)
        .get(app.url("/trd/audiofile/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_limited_to_a_batch_sees_nothing_else() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::None, |_| {}).await;
    let spec = |name: &str| {
        FileSpec::new(name, Control::Finished, Status::Recognized, 32_000)
            .channels(&[4.0])
            .segments(&[(0.5, 3.0, SegmentStatus::Recognized)])
    };
    let a = insert_batch(&app.store, "A", &[spec("a.wav")], an_hour_ago()).await[0].to_hex();
    let b = insert_batch(&app.store, "B", &[spec("b.wav")], an_hour_ago()).await[0].to_hex();
    let (_, key) = app.create_key(&["operate"], Some(&["A"])).await;
    let tenant = app.client_with_key(&key);

    for path in [
        format!("/trd/audiofile/{b}"),
        "/trd/audiofile/list/batch/B".to_owned(),
        "/trd/transcription/status/batch/B".to_owned(),
        format!("/trd/transcription/status/audiofile/{b}"),
        format!("/trd/transcription/result/audiofile/{b}"),
        "/trd/transcription/result/batch/B".to_owned(),
        format!("/trd/transcription/start/audiofile/{b}"),
        "/trd/transcription/start/batch/B".to_owned(),
        format!("/trd/transcription/reset/audiofile/{b}"),
        "/trd/audiofile/create/batch/B".to_owned(),
    ] {
        assert_eq!(
            status_of(&tenant, &app, &Method::GET, &path).await,
            404,
            "{path}"
        );
    }
    let delete = status_of(
        &tenant,
        &app,
        &Method::DELETE,
        &format!("/trd/audiofile/delete/{b}"),
    )
    .await;
    assert_eq!(delete, 404);
    // Its own batch works.
    for path in [
        format!("/trd/audiofile/{a}"),
        "/trd/transcription/status/batch/A".to_owned(),
        format!("/trd/transcription/result/audiofile/{a}"),
        "/trd/transcription/result/batch/A".to_owned(),
    ] {
        assert_eq!(
            status_of(&tenant, &app, &Method::GET, &path).await,
            200,
            "{path}"
        );
    }
    let listed = app.get_ok_with(&tenant, "/trd/audiofile/list").await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.as_str()]);
    // Query rows: only A's records and A's segments.
    for (collection, field) in [("audiofiles", "_id"), ("segments", "audiofile_id")] {
        let text = tenant
            .get(app.url(&format!("/trd/query/collection/{collection}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let rows: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(!rows.is_empty(), "{collection}");
        assert!(
            rows.iter().all(|r| r[field] == json!(a)),
            "{collection}: {text}"
        );
    }
    // An upload into another batch is refused, and nothing of B changed.
    let form = reqwest::multipart::Form::new().text("batch", "B").part(
        "files",
        reqwest::multipart::Part::bytes(vec![0u8; 64]).file_name("x.wav"),
    );
    let upload = tenant
        .post(app.url("/trd/audiofile/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 404);
    let record = app.get_ok(&format!("/trd/audiofile/{b}")).await;
    assert_eq!(record["control"], "FINISHED");
    // A tenant cannot hand out more than it has.
    let (_, admin_of_a) = app.create_key(&["admin"], Some(&["A"])).await;
    let wider = app
        .client_with_key(&admin_of_a)
        .post(app.url("/trd/auth/keys"))
        .json(&json!({"name": "wider", "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(wider.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_change_nothing_and_foreign_hosts_are_misdirected() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::None, |_| {}).await;
    let ids = insert_batch(
        &app.store,
        "calls",
        &[
            FileSpec::new("idle.wav", Control::Idle, Status::Initial, 1_000),
            FileSpec::new("done.wav", Control::Finished, Status::Recognized, 1_000),
        ],
        an_hour_ago(),
    )
    .await;
    let (idle, done) = (ids[0].to_hex(), ids[1].to_hex());
    let http = &app.http;
    let attempts = [
        (
            Method::GET,
            format!("/trd/transcription/start/audiofile/{idle}"),
            "Sec-Fetch-Site",
            "cross-site".to_owned(),
        ),
        (
            Method::GET,
            "/trd/transcription/start/batch/calls".to_owned(),
            "Sec-Fetch-Site",
            "same-site".to_owned(),
        ),
        (
            Method::GET,
            "/trd/transcription/reset/batch/calls".to_owned(),
            "Origin",
            "http://evil.example".to_owned(),
        ),
        (
            Method::GET,
            format!("/trd/transcription/reset/audiofile/{done}"),
            "Origin",
            "null".to_owned(),
        ),
        (
            Method::DELETE,
            format!("/trd/audiofile/delete/{done}"),
            "Sec-Fetch-Site",
            "cross-site".to_owned(),
        ),
        (
            Method::DELETE,
            "/trd/audiofile/delete/batch/calls".to_owned(),
            "Origin",
            "http://127.0.0.1.evil.example:80".to_owned(),
        ),
    ];
    for (method, path, header, value) in &attempts {
        let resp = http
            .request(method.clone(), app.url(path))
            .header(*header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{method} {path} with {header}: {value}");
    }
    let records = app.get_ok("/trd/audiofile/list/batch/calls").await;
    let states: Vec<(&str, &str)> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["_id"].as_str().unwrap(), r["control"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&(idle.as_str(), "IDLE")), "{states:?}");
    assert!(states.contains(&(done.as_str(), "FINISHED")), "{states:?}");
    assert_eq!(states.len(), 2);

    // The service's own pages (same origin) and tools that send no browser headers work.
    let own = format!("http://127.0.0.1:{}", app.settings.port);
    let resp = http
        .get(app.url(&format!("/trd/transcription/start/audiofile/{idle}")))
        .header("Origin", &own)
        .header("Sec-Fetch-Site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A browser reading (no state change) from elsewhere is not refused by this check.
    let read = http
        .get(app.url("/trd/audiofile/list"))
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);

    // A rebound DNS name: 421 on every kind of route, the documentation included.
    for path in [
        "/trd/audiofile/list",
        "/trd/transcription/reset/batch/calls?hard=true",
        "/trd/openapi.json",
    ] {
        let resp = http
            .get(app.url(path))
            .header("Host", "rebound.example:80")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 421, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["status"], 421);
    }
    let resp = http
        .get(app.url("/trd/audiofile/list"))
        .header("Host", format!("localhost:{}", app.settings.port))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deepspeech_and_nanotrix_clients_log_in_with_tokens() {
    let _turn = trd_tests::turns::shared().await;
    let secret = "a-test-signing-key-of-some-length";
    let app = spawn_app_with(Workers::None, |s| {
        s.trusted_networks = Vec::new();
        s.open_registration = true;
        s.jwt_secret = Some(secret.to_owned());
    })
    .await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(app.url(path)).json(&body).send();

    // The original layout.
    let resp = post("/users", json!({"username": "forrestgump", "email": "fgump@example.com", "password": "yourpassword"})).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "User forrestgump is successfully created.");
    let again = post(
        "/users",
        json!({"username": "forrestgump", "password": "yourpassword"}),
    )
    .await
    .unwrap();
    assert_eq!(again.status(), 400, "a taken name");
    let wrong = post(
        "/token",
        json!({"username": "forrestgump", "password": "nope-nope"}),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 401);
    let tokens: Value = post(
        "/token",
        json!({"username": "forrestgump", "password": "yourpassword"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let as_user = app.client_with_key(&access);
    assert_eq!(
        status_of(&as_user, &app, &Method::GET, "/trd/audiofile/list").await,
        200
    );
    assert_eq!(
        status_of(&http, &app, &Method::GET, "/trd/audiofile/list").await,
        401
    );
    // A self-registered user is a tenant of its own batch.
    assert_eq!(
        status_of(
            &as_user,
            &app,
            &Method::GET,
            "/trd/transcription/status/batch/other"
        )
        .await,
        404
    );

    // Refresh: new tokens; the spent refresh token is refused.
    let renewed = http
        .post(app.url("/token/refresh"))
        .bearer_auth(&access)
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.unwrap();
    let new_access = renewed["access_token"].as_str().unwrap();
    assert_eq!(
        status_of(
            &app.client_with_key(new_access),
            &app,
            &Method::GET,
            "/trd/audiofile/list"
        )
        .await,
        200
    );
    let replay = post("/token/refresh", json!({"refresh_token": refresh}))
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);

    // An expired access token is 401.
    let signer = trd_api::identity::tokens::Signer::new(secret);
    let now = chrono_now();
    let expired = signer.sign(&trd_api::identity::tokens::Claims {
        iss: "trd".into(),
        sub: "forrestgump".into(),
        iat: now - 7200,
        exp: now - 3600,
        aud: vec![app.base.clone()],
        kind: trd_api::identity::tokens::TokenKind::Access,
        task: None,
    });
    let resp = app
        .client_with_key(&expired)
        .get(app.url("/trd/audiofile/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    // A token signed with another key is 401.
    let forged = trd_api::identity::tokens::Signer::new("another-key").sign(
        &trd_api::identity::tokens::Claims {
            exp: now + 600,
            ..serde_json::from_value(
                serde_json::to_value(
                    trd_api::identity::tokens::Signer::new(secret)
                        .verify(new_access)
                        .unwrap(),
                )
                .unwrap(),
            )
            .unwrap()
        },
    );
    assert_eq!(
        status_of(
            &app.client_with_key(&forged),
            &app,
            &Method::GET,
            "/trd/audiofile/list"
        )
        .await,
        401
    );

    // The current layout.
    let resp = post(
        "/api/v1/users/register",
        json!({"username": "jenny", "email": "j@example.com", "password": "run-forrest-run"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["username"], "jenny");
    assert!(body["created_at"].is_string());
    let tokens: Value = post(
        "/api/v1/token",
        json!({"username": "jenny", "password": "run-forrest-run"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(tokens["access_token"].as_str().unwrap().split('.').count() == 3);

    // Nanotrix: log in, extend into a task token, call with it (header and query).
    let login = post(
        "/login/access-token",
        json!({"username": "jenny", "password": "run-forrest-run"}),
    )
    .await
    .unwrap();
    assert_eq!(login.status(), 200);
    let login: Value = login.json().await.unwrap();
    let access = login["accessToken"].as_str().unwrap();
    assert!(login["expiresAt"].as_i64().unwrap() > now);
    let task = http
        .post(app.url("/store/ntx-token"))
        .header("ntx-token", access)
        .json(&json!({"id": "ntx.v2t.engine.EngineService/cz/t-broadcast/v2t", "label": "vad+v2t+ppc+pnc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(task.status(), 200);
    let task: Value = task.json().await.unwrap();
    let ntx = task["ntxToken"].as_str().unwrap();
    assert_eq!(
        task["expiresAt"], login["expiresAt"],
        "a task token expires with its access token"
    );
    let claims = signer.verify(ntx).unwrap();
    assert_eq!(claims.task.unwrap().label, "vad+v2t+ppc+pnc");
    assert_eq!(claims.aud, std::slice::from_ref(&app.base));
    let with_header = http
        .get(app.url("/trd/audiofile/list"))
        .header("ntx-token", ntx)
        .send()
        .await
        .unwrap();
    assert_eq!(with_header.status(), 200);
    assert_eq!(
        status_of(
            &http,
            &app,
            &Method::GET,
            &format!("/trd/audiofile/list?ntx-token={ntx}")
        )
        .await,
        200
    );

    // A removed user's tokens stop working at once.
    let removed = app
        .admin()
        .delete(app.url("/trd/auth/users/jenny"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    assert_eq!(
        status_of(
            &http,
            &app,
            &Method::GET,
            &format!("/trd/audiofile/list?ntx-token={ntx}")
        )
        .await,
        401
    );
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_never_stored_or_logged_in_the_clear() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::None, |s| s.open_registration = true).await;
    // A second API process of the same service, logging at debug level to a file.
    let mut settings = app.settings.clone();
    settings.port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    settings.trusted_networks = Vec::new();
    let log_path = app.workdir().join(".api.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = configured_command(&bin_dir().join("trd-api"), &settings);
    command
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut api = command
        .spawn()
        .expect("the trd-api binary (build the workspace first)");
    let base = format!("http://127.0.0.1:{}", settings.port);
    let http = reqwest::Client::new();
    wait_until_answering(&http, &base, Duration::from_secs(30)).await;

    let (_, key) = app.create_key(&["read"], None).await;
    let password = "correct-horse-battery-staple";
    let resp = http
        .post(format!("{base}/api/v1/users/register"))
        .json(&json!({"username": "operator1", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tokens: Value = http
        .post(format!("{base}/api/v1/token"))
        .json(&json!({"username": "operator1", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    for url in [
        format!("{base}/trd/audiofile/list?auth_token={key}"),
        format!("{base}/trd/audiofile/list?token={key}&batch=x"),
        format!("{base}/trd/query/collection/audiofiles?token={key}"),
        format!("{base}/trd/no/such/route?auth_token={key}"),
        format!("{base}/trd/audiofile/list?auth_token={key}x"),
    ] {
        let status = http.get(&url).send().await.unwrap().status().as_u16();
        assert!([200, 401, 404].contains(&status), "{status}");
    }
    let ok = http
        .get(format!("{base}/trd/audiofile/list"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    api.kill().ok();
    api.wait().ok();

    let secret_part = key.rsplit('_').next().unwrap().to_owned();
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(logged.lines().count() > 3, "the API logged: {logged}");
    for (which, secret) in [
        ("key", key.as_str()),
        ("key secret", secret_part.as_str()),
        ("password", password),
        ("refresh token", refresh.as_str()),
    ] {
        let line = logged
            .lines()
            .find(|l| l.contains(secret))
            .map(|l| l.replace(secret, "<SECRET>"));
        assert!(line.is_none(), "the {which} is in the log: {line:?}");
    }

    // A dump of the credential collections holds digests and hashes only.
    for name in trd_core::store::identity::CREDENTIAL_COLLECTIONS {
        let docs: Vec<Document> = {
            use futures::TryStreamExt;
            app.store
                .database()
                .collection::<Document>(name)
                .find(doc! {})
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap()
        };
        assert!(!docs.is_empty(), "{name} has documents");
        let dump = format!("{docs:?}");
        for secret in [
            key.as_str(),
            secret_part.as_str(),
            password,
            refresh.as_str(),
        ] {
            assert!(!dump.contains(secret), "{name} holds a secret in the clear");
        }
    }
    let user = app.store.find_user("operator1").await.unwrap().unwrap();
    assert!(
        user.password_hash.starts_with("$argon2id$"),
        "{}",
        user.password_hash
    );
    // Keys are shown once: the listing has no secret.
    let listing = app
        .admin()
        .get(app.url("/trd/auth/keys"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listing.contains(&secret_part));
    assert!(listing.contains("\"scopes\""));

    // The generated admin key's file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(app.settings.state_dir.join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_change_is_audited_once_with_its_principal() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::None, |_| {}).await;
    let (key_id, key) = app.create_key(&["operate"], None).await;
    let keyed = app.client_with_key(&key);
    let http = &app.http;

    let form = reqwest::multipart::Form::new()
        .text("batch", "audited")
        .part(
            "files",
            reqwest::multipart::Part::bytes(
                std::fs::read(trd_tests::data::path("ko/zeroth-104/104_003_0294.wav")).unwrap(),
            )
            .file_name("a.wav"),
        );
    let upload = keyed
        .post(app.url("/trd/audiofile/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 200);
    let id = app.get_ok("/trd/audiofile/list/batch/audited").await[0]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        status_of(
            http,
            &app,
            &Method::GET,
            &format!("/trd/transcription/start/audiofile/{id}")
        )
        .await,
        200
    );
    assert_eq!(
        status_of(
            &keyed,
            &app,
            &Method::GET,
            &format!("/trd/transcription/stop/audiofile/{id}")
        )
        .await,
        200
    );
    let reset: Value = keyed
        .get(app.url(&format!("/trd/transcription/reset/audiofile/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_id = reset["_id"].as_str().unwrap().to_owned();
    assert_eq!(
        status_of(
            http,
            &app,
            &Method::DELETE,
            &format!("/trd/audiofile/delete/{new_id}?deleteOnDisk=true")
        )
        .await,
        403
    );
    assert_eq!(
        status_of(
            http,
            &app,
            &Method::DELETE,
            &format!("/trd/audiofile/delete/{new_id}")
        )
        .await,
        200
    );
    assert_eq!(
        status_of(
            http,
            &app,
            &Method::GET,
            "/trd/webhook/validate/127.0.0.1/9?timeout=0.2"
        )
        .await,
        200
    );
    let revoked = app
        .admin()
        .delete(app.url(&format!("/trd/auth/keys/{key_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    // Revocation takes effect at once.
    assert_eq!(
        status_of(&keyed, &app, &Method::GET, "/trd/audiofile/list").await,
        401
    );
    // Reads are not state changes.
    app.get_ok("/trd/audiofile/list").await;

    let admin_label = {
        let keys: Value = app
            .admin()
            .get(app.url("/trd/auth/keys"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let generated = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["created_by"] == "first start")
            .unwrap();
        format!("key:{}", generated["id"].as_str().unwrap())
    };
    let entries: Value = app
        .admin()
        .get(app.url("/trd/audit?limit=1000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = entries.as_array().unwrap();
    let anonymous = "anonymous@127.0.0.1".to_owned();
    let keyed_label = format!("key:{key_id}");
    let expected = [
        ("create_key", admin_label.clone(), 201),
        ("upload", keyed_label.clone(), 200),
        ("start_one", anonymous.clone(), 200),
        ("stop_one", keyed_label.clone(), 200),
        ("reset_one", keyed_label.clone(), 200),
        ("delete_file", anonymous.clone(), 403),
        ("delete_file", anonymous.clone(), 200),
        ("validate_get", anonymous.clone(), 200),
        ("revoke_key", admin_label.clone(), 200),
    ];
    for (action, principal, outcome) in &expected {
        let matching = entries
            .iter()
            .filter(|e| {
                e["action"] == *action && e["principal"] == *principal && e["outcome"] == *outcome
            })
            .count();
        assert_eq!(
            matching, 1,
            "{action} by {principal} ({outcome}) in {entries:#?}"
        );
    }
    assert_eq!(
        entries.len(),
        expected.len(),
        "only state changes: {entries:#?}"
    );
    assert!(entries
        .iter()
        .all(|e| !e["target"].as_str().unwrap().contains("token")));
    // Newest first.
    assert_eq!(entries[0]["action"], "revoke_key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_beyond_the_limits_get_429_and_nothing_else_breaks() {
    let _turn = trd_tests::turns::shared().await;
    let app = spawn_app_with(Workers::None, |s| {
        s.rate_limit_per_second = 2;
        s.rate_limit_burst = 5;
        s.max_concurrent_uploads = 1;
    })
    .await;
    let (_, noisy) = app.create_key(&["read"], None).await;
    let (_, quiet) = app.create_key(&["read"], None).await;
    let noisy = app.client_with_key(&noisy);
    let burst = futures::future::join_all(
        (0..20).map(|_| noisy.get(app.url("/trd/audiofile/list")).send()),
    )
    .await;
    let refused: Vec<_> = burst
        .iter()
        .map(|r| r.as_ref().unwrap())
        .filter(|r| r.status() == 429)
        .collect();
    assert!(refused.len() >= 10, "{} of 20 refused", refused.len());
    let ok = burst
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == 200)
        .count();
    assert!(ok >= 3, "the burst allowance was served ({ok})");
    let wait: u64 = refused[0].headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&wait), "Retry-After {wait}");
    // Another principal is not slowed down.
    let other = app
        .client_with_key(&quiet)
        .get(app.url("/trd/audiofile/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(
        noisy
            .get(app.url("/trd/audiofile/list"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Lists a start takes are bounded.
    let ids = insert_batch(
        &app.store,
        "bounded",
        &[FileSpec::new(
            "a.wav",
            Control::Idle,
            Status::Initial,
            1_000,
        )],
        an_hour_ago(),
    )
    .await;
    let start = format!("/trd/transcription/start/audiofile/{}", ids[0].to_hex());
    let webhooks: Vec<String> = (0..11)
        .map(|i| format!("webhook=http://127.0.0.1:9/{i}"))
        .collect();
    let words = vec!["word"; 1_001].join(",");
    for query in [webhooks.join("&"), format!("hints.words={words}")] {
        let (status, body) = app.get(&format!("{start}?{query}")).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("at most"),
            "{body}"
        );
    }

    // One upload at a time: a second while the first is still sending is 429. (An upload
    // holds its slot once its first 512 bytes are in.)
    let audio = std::fs::read(trd_tests::data::path("ko/zeroth-104/104_003_0294.wav")).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let boundary = "XyZ";
    let slow = app
        .admin()
        .post(app.url("/trd/audiofile/upload"))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap_stream(tokio_stream_from(rx)))
        .send();
    let slow = tokio::spawn(slow);
    let mut head = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"slow.wav\"\r\nContent-Type: audio/wav\r\n\r\n").into_bytes();
    head.extend_from_slice(&audio[..1024]);
    tx.send(Ok(head)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(vec![1u8; 16]).file_name("fast.wav"),
    );
    let second = app
        .admin()
        .post(app.url("/trd/audiofile/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    tx.send(Ok(audio[1024..].to_vec())).await.unwrap();
    tx.send(Ok(format!("\r\n--{boundary}--\r\n").into_bytes()))
        .await
        .unwrap();
    drop(tx);
    let first = slow.await.unwrap().unwrap();
    assert_eq!(first.status(), 200, "{:?}", first.text().await);
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(
            std::fs::read(trd_tests::data::path("ko/zeroth-104/104_003_0294.wav")).unwrap(),
        )
        .file_name("after.wav"),
    );
    let after = app
        .admin()
        .post(app.url("/trd/audiofile/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200, "the slot is free again");
}

/// A stream of the chunks sent on `rx`.
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_admin_token_is_the_bootstrap_credential() {
    let _turn = trd_tests::turns::shared().await;
    let token = "a-configured-admin-token-0123456789";
    let app = spawn_app_with(Workers::None, |s| {
        s.admin_token = Some(token.to_owned());
        s.trusted_networks = Vec::new();
    })
    .await;
    assert!(
        !app.settings.state_dir.join("admin-token").exists(),
        "nothing generated"
    );
    let admin = app.client_with_key(token);
    assert_eq!(
        status_of(&admin, &app, &Method::GET, "/trd/auth/keys").await,
        200
    );
    let created = admin
        .post(app.url("/trd/auth/keys"))
        .json(&json!({"name": "ops", "scopes": ["read", "operate"], "batches": ["calls"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["batches"], json!(["calls"]));
    assert!(created["key"].as_str().unwrap().starts_with("trd_"));
    let bad = admin
        .post(app.url("/trd/auth/keys"))
        .json(&json!({"name": "x", "scopes": ["root"]}))
        .send()
        .await
        .unwrap();
    assert!(
        bad.status().is_client_error() && bad.status() != 401,
        "{}",
        bad.status()
    );
    // Registration is closed by default: anonymous 401, the admin may.
    let anonymous = reqwest::Client::new()
        .post(app.url("/users"))
        .json(&json!({"username": "someone", "password": "long-enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let by_admin = admin
        .post(app.url("/users"))
        .json(&json!({"username": "someone", "password": "long-enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_admin.status(), 200);
}
