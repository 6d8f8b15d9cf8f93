//! Reliability acceptance 5: HTTP input fuzzing of every endpoint. A generated corpus of
//! malformed ids, batch and file names with `..`, `%2e%2e`, NUL and very long strings, bad
//! query values and malformed or truncated multipart bodies, sent over raw TCP (so nothing is
//! normalised on the way): no answer may be a 5xx, every request must be answered, and no
//! file outside the work directory may be created, changed or removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trd_tests::app::{spawn_app_with, Workers};
use trd_tests::data;

struct Request {
    method: &'static str,
    target: Vec<u8>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn get(target: impl Into<Vec<u8>>) -> Self {
        Self::new("GET", target)
    }

    fn new(method: &'static str, target: impl Into<Vec<u8>>) -> Self {
        Self {
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn bytes(&self, port: u16) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(
            format!(
                " HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
                self.body.len()
            )
            .as_bytes(),
        );
        for (k, v) in &self.headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Sends one request and returns the status code, or `None` if the server closed the
/// connection without answering; panics if it does not answer within the time limit.
async fn send(port: u16, request: &Request) -> Option<u16> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream.write_all(&request.bytes(port)).await.ok()?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let line = answer.split(|&b| b == b'\r').next()?;
        let line = String::from_utf8_lossy(line);
        line.split(' ').nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no answer within 20 s to {} {}",
                request.method,
                String::from_utf8_lossy(&request.target)
            )
        })
}

/// Hostile path segments; `{m}` is replaced by a marker that must never appear outside the
/// work directory.
fn segments(marker: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "..",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "...",
        ".",
        "..%2f..%2f{m}",
        "..%2F..%2Ftmp%2F{m}.wav",
        "%2e%2e%2f%2e%2e%2f{m}.wav",
        "..%5c..%5c{m}",
        "%c0%ae%c0%ae",
        "%00",
        "a%00b.wav",
        "%2500",
        "%ff%fe%fd",
        "%e2%80%ae{m}.wav",
        "%0d%0aX-Injected:%201",
        "%20",
        "+",
        ".trd-uploads",
        "%2etrd-uploads",
        "{m}",
        "{m}.wav",
        "con",
        "%24where",
        "%7B%22%24gt%22%3A%22%22%7D",
        "000000000000000000000000",
        "ffffffffffffffffffffffff",
        "zzzzzzzzzzzzzzzzzzzzzzzz",
        "-1",
        "1e999",
        "null",
        "audiofiles",
        "segments",
        "pcm_chunks",
        "system.users",
    ]
    .iter()
    .map(|s| s.replace("{m}", marker))
    .collect();
    v.push("a".repeat(300));
    v.push("%2e".repeat(2000));
    v.push("x".repeat(20_000));
    v
}

fn query_values() -> Vec<String> {
    [
        "",
        "-1",
        "0",
        "1",
        "99999999999999999999999",
        "abc",
        "%00",
        "1e3",
        "true",
        "maybe",
        "..",
        "%2e%2e%2f",
        "%ff",
        "[]",
        "json",
        "json-array",
        "csv",
        "srt",
        "vtt",
        "trs",
        "txt",
        "docx",
        "%24ne",
        "a,b,,c",
        "http://169.254.169.254/",
        "ftp://x",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([("9".repeat(5000))])
    .collect()
}

fn multipart(boundary: &str, batch: Option<&[u8]>, filename: &[u8], content: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(batch) = batch {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"batch\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(batch);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"")
            .as_bytes(),
    );
    body.extend_from_slice(filename);
    body.extend_from_slice(b"\"\r\nContent-Type: audio/wav\r\n\r\n");
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

fn upload(content_type: &str, body: Vec<u8>) -> Request {
    let mut r = Request::new("POST", "/trd/audiofile/upload");
    r.headers.push(("Content-Type".into(), content_type.into()));
    r.body = body;
    r
}

fn corpus(marker: &str, id: &str, batch: &str, audio: &[u8]) -> Vec<Request> {
    let mut out = Vec::new();
    let segs = segments(marker);
    for s in &segs {
        out.push(Request::get(format!("/trd/audiofile/{s}")));
        out.push(Request::get(format!("/trd/audiofile/list/batch/{s}")));
        out.push(Request::get(format!("/trd/audiofile/create/{s}")));
        out.push(Request::get(format!("/trd/audiofile/create/{s}/{s}")));
        out.push(Request::get(format!("/trd/audiofile/create/{batch}/{s}")));
        out.push(Request::get(format!("/trd/audiofile/create/batch/{s}")));
        out.push(Request::new(
            "DELETE",
            format!("/trd/audiofile/delete/{s}?deleteOnDisk=true"),
        ));
        out.push(Request::new(
            "DELETE",
            format!("/trd/audiofile/delete/batch/{s}?deleteOnDisk=true"),
        ));
        for op in ["start", "stop", "reset", "status", "result"] {
            out.push(Request::get(format!(
                "/trd/transcription/{op}/audiofile/{s}"
            )));
            out.push(Request::get(format!("/trd/transcription/{op}/batch/{s}")));
        }
        out.push(Request::get(format!("/trd/query/collection/{s}")));
        out.push(Request::get(format!(
            "/trd/query/collection/audiofiles?{s}={s}"
        )));
        out.push(Request::get(format!("/trd/audiofile/list?{s}")));
    }
    // A few hostile hosts for the outbound check (each costs a connection attempt).
    for host in [
        "..",
        "%00",
        "169.254.169.254",
        "localhost%2f..",
        &"h".repeat(300),
    ] {
        for port in ["0", "-1", "99999", "abc", "1"] {
            out.push(Request::get(format!(
                "/trd/webhook/validate/{host}/{port}?timeout=1&retries=0"
            )));
        }
    }
    for q in query_values() {
        for path in [
            format!("/trd/transcription/result/audiofile/{id}?format={q}&max_line_length={q}&max_lines={q}"),
            format!("/trd/transcription/result/audiofile/{id}?format=srt&max_line_length={q}"),
            format!("/trd/transcription/result/batch/{batch}?format={q}"),
            format!("/trd/transcription/result/batch/{batch}?format=vtt&max_lines={q}"),
            format!("/trd/transcription/reset/batch/nosuch?hard={q}"),
            format!("/trd/transcription/start/audiofile/000000000000000000000000?lm.uri={q}&diarization={q}&speakers={q}&min_speakers={q}&max_speakers={q}&webhook={q}&hints.words={q}"),
            format!("/trd/query/collection/audiofiles?status={q}&size={q}&_id={q}&fields={q}"),
            format!("/trd/query/collection/segments?channel={q}&start={q}&audiofile_id={q}"),
            format!("/trd/webhook/validate/127.0.0.1/1?timeout={q}&retries={q}"),
            format!("/trd/audiofile/list/batch/{batch}?{q}={q}"),
        ] {
            out.push(Request::get(path));
        }
        out.push(Request::new(
            "DELETE",
            format!("/trd/audiofile/delete/000000000000000000000000?deleteOnDisk={q}"),
        ));
    }
    // Uploads: hostile names and batches, then malformed and truncated bodies.
    let b = "fuzzboundary";
    let ct = format!("multipart/form-data; boundary={b}");
    let names: Vec<Vec<u8>> = [
        format!("../../{marker}.wav"),
        format!("..%2f..%2f{marker}.wav"),
        format!("/tmp/{marker}.wav"),
        format!("..\\..\\{marker}.wav"),
        format!("{marker}\0.wav"),
        format!("{marker}.wav\0.txt"),
        ".wav".into(),
        "..".into(),
        "".into(),
        format!(".trd-uploads/{marker}.wav"),
        format!("{}.wav", "n".repeat(5000)),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    for name in &names {
        out.push(upload(&ct, multipart(b, None, name, audio)));
    }
    let batches: Vec<Vec<u8>> = [
        "..".to_string(),
        "%2e%2e".into(),
        format!("../{marker}"),
        format!("a/../../{marker}"),
        "a\0b".into(),
        "/abs".into(),
        ".hidden".into(),
        "b".repeat(5000),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    for batch in &batches {
        out.push(upload(
            &ct,
            multipart(b, Some(batch), format!("{marker}.wav").as_bytes(), audio),
        ));
    }
    let whole = multipart(b, Some(b"fuzz"), format!("{marker}.wav").as_bytes(), audio);
    for cut in [
        0,
        1,
        10,
        40,
        80,
        120,
        200,
        whole.len() / 2,
        whole.len() - 10,
        whole.len() - 2,
    ] {
        out.push(upload(&ct, whole[..cut].to_vec()));
    }
    for content_type in [
        "multipart/form-data".to_string(),
        "multipart/form-data; boundary=".into(),
        "multipart/form-data; boundary=other".into(),
        format!("multipart/form-data; boundary={}", "z".repeat(5000)),
        "application/json".into(),
        "text/plain".into(),
    ] {
        out.push(upload(&content_type, whole.clone()));
    }
    out.push(upload(
        &ct,
        b"--fuzzboundary\r\nContent-Disposition: form-data\r\n\r\nx\r\n--fuzzboundary--\r\n"
            .to_vec(),
    ));
    out.push(upload(
        &ct,
        format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"files\"\r\n\r\nabc\r\n--{b}--\r\n"
        )
        .into_bytes(),
    ));
    out
}

/// Every path under `root`, with its size and modification time.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    out
}

fn names_with(dir: &Path, marker: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(marker))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fuzzed_requests_never_fail_the_server_nor_touch_files_outside_the_work_directory() {
    let _turn = trd_tests::turns::alone().await;
    // The work directory sits inside a folder whose other contents must stay untouched.
    let outside = tempfile::tempdir().unwrap();
    let workdir = outside.path().join("work");
    std::fs::create_dir_all(outside.path().join("victim/batch")).unwrap();
    let clip = data::path("ko/zeroth-104/104_003_0294.wav");
    std::fs::copy(&clip, outside.path().join("victim/batch/keep.wav")).unwrap();
    std::fs::copy(&clip, outside.path().join("keep.wav")).unwrap();
    let app = spawn_app_with(Workers::None, |s| s.workdir = workdir.clone()).await;
    let marker = format!(
        "fuzzmark{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );

    // One real batch and file, so ids and batches that exist are fuzzed too.
    std::fs::create_dir_all(workdir.join("real")).unwrap();
    std::fs::copy(&clip, workdir.join("real/a.wav")).unwrap();
    let id = app
        .eventually("registration", Duration::from_secs(30), || async {
            let list = app.get_ok("/trd/audiofile/list/batch/real").await;
            list[0]["_id"].as_str().map(str::to_owned)
        })
        .await;
    // Links planted in the work directory, to a file and to a folder outside it: every
    // request below that names them must leave what they point at alone.
    std::os::unix::fs::symlink(
        outside.path().join("keep.wav"),
        workdir.join("real/link.wav"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path().join("keep.wav"), workdir.join("link.wav")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("victim/batch"), workdir.join("linked"))
        .unwrap();
    let before = snapshot(outside.path());
    let outside_before: Vec<_> = before
        .iter()
        .filter(|(p, _)| !p.starts_with(&workdir))
        .map(|(p, m)| (p.clone(), *m))
        .collect();

    let audio = std::fs::read(&clip).unwrap();
    let mut requests = corpus(&marker, &id, "real", &audio[..4096]);
    for target in [
        "/trd/audiofile/create/link.wav",
        "/trd/audiofile/create/linked/keep.wav",
        "/trd/audiofile/create/batch/linked",
        "/trd/audiofile/create/batch/real",
        "/trd/audiofile/list/batch/linked",
        "/trd/transcription/start/batch/linked",
    ] {
        requests.push(Request::get(target));
    }
    for target in [
        "/trd/audiofile/delete/batch/linked?deleteOnDisk=true",
        "/trd/audiofile/delete/linked/keep.wav?deleteOnDisk=true",
    ] {
        requests.push(Request::new("DELETE", target));
    }
    let port = app.settings.port;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut unanswered = Vec::new();
    let started = std::time::Instant::now();
    for chunk in requests.chunks(8) {
        let answers = futures::future::join_all(chunk.iter().map(|r| send(port, r))).await;
        for (request, status) in chunk.iter().zip(answers) {
            match status {
                Some(code) => {
                    *statuses.entry(code).or_default() += 1;
                    if code >= 500 {
                        failures.push(format!(
                            "{code} for {} {}",
                            request.method,
                            String::from_utf8_lossy(&request.target)
                        ));
                    }
                }
                None => unanswered.push(format!(
                    "{} {}",
                    request.method,
                    String::from_utf8_lossy(&request.target)
                )),
            }
        }
    }
    println!(
        "fuzzed {} requests in {:.1} s: statuses {statuses:?}",
        requests.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        unanswered.is_empty(),
        "connections closed without an answer:\n{}",
        unanswered.join("\n")
    );
    assert!(
        failures.is_empty(),
        "server errors:\n{}",
        failures.join("\n")
    );
    assert!(requests.len() >= 1000, "the corpus covers every endpoint");

    // Nothing outside the work directory changed, and the marker appears nowhere outside it.
    let after = snapshot(outside.path());
    let outside_after: Vec<_> = after
        .iter()
        .filter(|(p, _)| !p.starts_with(&workdir))
        .map(|(p, m)| (p.clone(), *m))
        .collect();
    assert_eq!(
        outside_before, outside_after,
        "files outside the work directory changed"
    );
    let parent = outside.path().parent().unwrap();
    for dir in [
        parent.to_path_buf(),
        std::env::current_dir().unwrap(),
        PathBuf::from("/"),
    ] {
        assert!(
            names_with(&dir, &marker).is_empty(),
            "{marker} appeared in {}",
            dir.display()
        );
    }
    // The real file survived every hostile delete and reset, and no link became a record.
    assert!(workdir.join("real/a.wav").is_file());
    let real = app.get_ok("/trd/audiofile/list/batch/real").await;
    let names: Vec<&str> = real
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["filename"].as_str())
        .collect();
    assert!(!names.contains(&"link.wav"), "{real}");
    let linked = app.get_ok("/trd/audiofile/list/batch/linked").await;
    assert_eq!(linked.as_array().map(Vec::len), Some(0), "{linked}");
    let (code, _) = app.get("/trd/audiofile/list").await;
    assert_eq!(code, 200, "the API still answers");
}
