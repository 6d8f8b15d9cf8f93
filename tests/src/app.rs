//! `spawn_app()`: a whole TRD instance for one test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use trd_core::worker::{run_stage, StageWorker, WorkerContext};
use trd_core::{Queue, Settings, Store};

use crate::settings_file;

/// How the pipeline workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// Tokio tasks in the test process.
    InProcess,
    /// The same binaries `scripts/run` starts, as child processes.
    Processes,
    /// None: the test drives or inspects the queues itself.
    None,
}

pub struct TestApp {
    pub base: String,
    pub settings: Settings,
    pub store: Store,
    pub queue: Queue,
    pub http: reqwest::Client,
    /// Kept for its lifetime: the temporary folder is removed when the app is dropped.
    _scratch: tempfile::TempDir,
    shutdown: CancellationToken,
    api: ApiHandle,
    children: Vec<Child>,
}

/// The running API: its own cancellation (watcher, webhook sender) and Rocket's shutdown.
struct ApiHandle {
    cancel: CancellationToken,
    rocket: rocket::Shutdown,
    task: tokio::task::JoinHandle<()>,
}

async fn launch_api(settings: &Settings, cancel: CancellationToken) -> ApiHandle {
    let rocket = trd_api::build(settings.clone(), cancel.clone())
        .await
        .expect("the API builds (are MongoDB and RabbitMQ running? use scripts/test)")
        .ignite()
        .await
        .expect("the API ignites");
    let handle = rocket.shutdown();
    let task = tokio::spawn(async move {
        if let Err(e) = rocket.launch().await {
            eprintln!("API stopped: {e}");
        }
    });
    ApiHandle {
        cancel,
        rocket: handle,
        task,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Settings for a test: private database and queue prefix, quick rescans.
pub fn test_settings(workdir: &Path) -> Settings {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    Settings {
        mongodb_uri: std::env::var("TRD_TEST_MONGODB_URI")
            .unwrap_or_else(|_| "mongodb://127.0.0.1:27117".into()),
        amqp_uri: std::env::var("TRD_TEST_AMQP_URI")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5673/%2f".into()),
        database: format!("trd_test_{tag}"),
        queue_prefix: format!("test.{tag}."),
        workdir: workdir.to_path_buf(),
        // Hidden: the watcher skips it.
        state_dir: workdir.join(".trd-state"),
        port: free_port(),
        rescan_interval_ms: 300,
        settle_ms: 300,
        lease_seconds: 15,
        worker_concurrency: 2,
        // Tests hammer the API from one address; the rate-limit test turns it on.
        rate_limit_per_second: 0,
        ..Settings::default()
    }
}

/// Where the workspace's binaries are: beside the running executable, which is either a test
/// (in target/<profile>/deps) or one of the workspace's own binaries (in target/<profile>).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target/<profile>").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A command for one of the workspace's binaries, configured by a file holding the test's
/// whole settings (never the repository's `Rocket.toml`): its database, queues, lease,
/// concurrency and every other setting the test chose.
pub fn configured_command(binary: &Path, settings: &Settings) -> Command {
    let mut command = Command::new(binary);
    settings_file::configure(&mut command, settings);
    command.env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
    );
    command
}

/// A worker binary's command for the given settings.
pub fn worker_command(settings: &Settings, name: &str) -> Command {
    configured_command(&bin_dir().join(name), settings)
}

pub async fn spawn_app(workers: Workers) -> TestApp {
    spawn_app_with(workers, |_| {}).await
}

pub async fn spawn_app_with(workers: Workers, customise: impl FnOnce(&mut Settings)) -> TestApp {
    let workdir = tempfile::tempdir().expect("a temporary work directory");
    let mut settings = test_settings(workdir.path());
    customise(&mut settings);
    let shutdown = CancellationToken::new();
    let api = launch_api(&settings, shutdown.child_token()).await;
    let store = Store::connect(&settings).await.expect("MongoDB");
    let queue = Queue::connect(&settings).await.expect("RabbitMQ");
    let mut app = TestApp {
        base: format!("http://127.0.0.1:{}", settings.port),
        settings,
        store,
        queue,
        http: reqwest::Client::new(),
        _scratch: workdir,
        shutdown,
        api,
        children: Vec::new(),
    };
    match workers {
        Workers::InProcess => {
            app.spawn_worker(trd_normalizer::Normalizer).await;
            app.spawn_worker(trd_diarizer::Diarizer).await;
            app.spawn_worker(trd_recognizer::Recognizer).await;
        }
        Workers::Processes => {
            for name in ["trd-normalizer", "trd-diarizer", "trd-recognizer"] {
                let child = app.worker_process(name);
                app.children.push(child);
            }
        }
        Workers::None => {}
    }
    app.wait_api_up().await;
    app
}

/// Waits until the API at `base` answers HTTP (any status: a refusal is an answer too).
pub async fn wait_until_answering(http: &reqwest::Client, base: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while http
        .get(format!("{base}/trd/openapi.json"))
        .send()
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the API at {base} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestApp {
    async fn wait_api_up(&self) {
        wait_until_answering(&self.http, &self.url(""), Duration::from_secs(20)).await;
    }

    /// Stops the API process's work (HTTP, watcher, webhook sender) and starts it again on the
    /// same port and database, as a restart of the API process would.
    pub async fn restart_api(&mut self) {
        self.api.cancel.cancel();
        self.api.rocket.clone().notify();
        let _ = tokio::time::timeout(Duration::from_secs(15), &mut self.api.task).await;
        self.api = launch_api(&self.settings, self.shutdown.child_token()).await;
        self.wait_api_up().await;
    }

    /// The admin key the API generated at its first start (`<state_dir>/admin-token`).
    pub fn admin_key(&self) -> String {
        let path = self.settings.state_dir.join("admin-token");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_owned()
    }

    /// A client that presents the admin key on every request.
    /// Uploads `audio` as `name` into `batch` (as the admin): the answer's status and body.
    pub async fn upload(&self, batch: &str, name: &str, audio: Vec<u8>) -> (u16, String) {
        let form = reqwest::multipart::Form::new()
            .text("batch", batch.to_owned())
            .part(
                "files",
                reqwest::multipart::Part::bytes(audio).file_name(name.to_owned()),
            );
        let response = self
            .admin()
            .post(self.url("/trd/audiofile/upload"))
            .multipart(form)
            .send()
            .await
            .expect("request");
        (
            response.status().as_u16(),
            response.text().await.expect("a body"),
        )
    }

    pub fn admin(&self) -> reqwest::Client {
        self.client_with_key(&self.admin_key())
    }

    /// Creates a key (as the admin) with these scopes, limited to `batches` if given; returns
    /// its id and the key itself.
    pub async fn create_key(&self, scopes: &[&str], batches: Option<&[&str]>) -> (String, String) {
        let mut body = serde_json::json!({"name": format!("{scopes:?}"), "scopes": scopes});
        if let Some(b) = batches {
            body["batches"] = serde_json::json!(b);
        }
        let resp = self
            .admin()
            .post(self.url("/trd/auth/keys"))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 201, "key creation");
        let created: Value = resp.json().await.expect("JSON");
        assert_eq!(created["scopes"], serde_json::json!(scopes));
        (
            created["id"].as_str().expect("an id").to_owned(),
            created["key"].as_str().expect("a key").to_owned(),
        )
    }

    /// A client that presents `key` as `Authorization: Bearer` on every request.
    pub fn client_with_key(&self, key: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            .expect("a key is a valid header value");
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("an HTTP client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A finished file's recognized text: its segments' texts, joined by spaces.
    pub async fn result_text(&self, id: &str) -> String {
        let result = self
            .get_ok(&format!("/trd/transcription/result/audiofile/{id}"))
            .await;
        let texts: Vec<&str> = result["segments"]
            .as_array()
            .expect("a result has segments")
            .iter()
            .map(|s| s["text"].as_str().expect("a segment has text"))
            .collect();
        texts.join(" ")
    }

    /// The records of `files` copied into a new batch, run undisturbed, once finished: what a
    /// disturbed run of the same files is compared with.
    pub async fn clean_run(&self, batch: &str, files: &[PathBuf]) -> Vec<serde_json::Value> {
        self.copy_into_batch(batch, files);
        self.wait_registered(batch, files.len()).await;
        self.get_ok(&format!("/trd/transcription/start/batch/{batch}"))
            .await;
        self.wait_batch_done(batch, Duration::from_secs(300)).await
    }

    /// Asserts that every record of a disturbed batch (`done`) FINISHED with the text a batch of
    /// the same `files` gets undisturbed, byte for byte.
    pub async fn assert_finished_as_undisturbed(
        &self,
        done: &[serde_json::Value],
        files: &[PathBuf],
    ) {
        let unfinished: Vec<String> = done
            .iter()
            .filter(|r| r["control"] != "FINISHED")
            .map(|r| {
                format!(
                    "{} {} {}: {}",
                    r["filename"], r["control"], r["status"], r["error"]
                )
            })
            .collect();
        assert!(unfinished.is_empty(), "not FINISHED: {unfinished:#?}");
        let clean = self.clean_run("clean", files).await;
        let (disturbed, undisturbed) = (
            self.texts_by_name(done).await,
            self.texts_by_name(&clean).await,
        );
        let differing: Vec<_> = disturbed
            .iter()
            .zip(&undisturbed)
            .filter(|(a, b)| a != b)
            .collect();
        assert!(
            differing.is_empty() && disturbed.len() == undisturbed.len(),
            "{} of {} files differ from an undisturbed batch ({} files): (disturbed, undisturbed) {differing:#?}",
            differing.len(),
            disturbed.len(),
            undisturbed.len()
        );
    }

    /// The recognized text of each of `records` (finished files), by file name, sorted.
    pub async fn texts_by_name(&self, records: &[serde_json::Value]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for record in records {
            let text = self.result_text(record["_id"].as_str().unwrap()).await;
            out.push((record["filename"].as_str().unwrap().to_owned(), text));
        }
        out.sort();
        out
    }

    /// The work directory the service watches (the test's temporary one unless the test
    /// chose another).
    pub fn workdir(&self) -> &Path {
        &self.settings.workdir
    }

    pub async fn spawn_worker<W: StageWorker>(&self, worker: W) {
        let ctx = WorkerContext::connect(self.settings.clone(), self.shutdown.clone())
            .await
            .expect("worker connects");
        tokio::spawn(async move {
            if let Err(e) = run_stage(Arc::new(worker), ctx).await {
                eprintln!("worker stopped: {e}");
            }
        });
    }

    /// Starts a worker binary configured for this test's database and queues.
    pub fn worker_process(&self, name: &str) -> Child {
        self.worker_command(name).spawn().unwrap_or_else(|e| {
            panic!("cannot start {name} (build the workspace binaries first): {e}")
        })
    }

    /// Starts a worker binary that lives as long as the app; its process id.
    pub fn start_worker_process(&mut self, name: &str) -> u32 {
        let child = self.worker_process(name);
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// The command that starts a worker binary for this test, for callers that add their own
    /// environment.
    pub fn worker_command(&self, name: &str) -> Command {
        worker_command(&self.settings, name)
    }

    /// Copies shared test audio into a batch folder (through a hidden temporary name, the
    /// way a careful user would, so the watcher never sees a half-written file).
    pub fn copy_into_batch(&self, batch: &str, sources: &[PathBuf]) {
        let dir = self.workdir().join(batch);
        std::fs::create_dir_all(&dir).unwrap();
        for src in sources {
            let name = src.file_name().unwrap().to_string_lossy().to_string();
            let tmp = dir.join(format!(".{name}.part"));
            std::fs::copy(src, &tmp).unwrap();
            std::fs::rename(&tmp, dir.join(&name)).unwrap();
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(self.url(path)).send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET path` with `client` (one presenting a key), which must answer 200 with JSON.
    pub async fn get_ok_with(&self, client: &reqwest::Client, path: &str) -> Value {
        let resp = client.get(self.url(path)).send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Polls `check` until it returns `Some`, or panics after `timeout`.
    pub async fn eventually<T, F, Fut>(&self, what: &str, timeout: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until the batch has `n` registered files; returns the records.
    pub async fn wait_registered(&self, batch: &str, n: usize) -> Vec<Value> {
        self.eventually("registration", Duration::from_secs(30), || async {
            let list = self
                .get_ok(&format!("/trd/audiofile/list/batch/{batch}"))
                .await;
            let records = list.as_array().cloned().unwrap_or_default();
            (records.len() == n).then_some(records)
        })
        .await
    }

    /// Waits until no file of the batch is IDLE, PAUSED or RUNNING; returns the records.
    pub async fn wait_batch_done(&self, batch: &str, timeout: Duration) -> Vec<Value> {
        self.eventually("the batch to finish", timeout, || async {
            let list = self
                .get_ok(&format!("/trd/audiofile/list/batch/{batch}"))
                .await;
            let records = list.as_array().cloned().unwrap_or_default();
            let done = records
                .iter()
                .all(|r| matches!(r["control"].as_str(), Some("FINISHED") | Some("FAILED")));
            done.then_some(records)
        })
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Leave no queues or databases behind on the shared test broker and server.
        let queue = self.queue.clone();
        let db = self.store.database().clone();
        let cleanup = async move {
            let _ = queue.delete_all().await;
            let _ = db.drop().await;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let _ = std::thread::spawn(move || handle.block_on(cleanup)).join();
        }
    }
}
