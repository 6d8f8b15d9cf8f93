//! Hostile paths: links planted in the work directory, or swapped in after registration,
//! never make TRD register, transcribe, store into or delete anything outside it; names no
//! file system takes are refused with 400, not a 500 at the hard link. Empty recordings, a
//! stage queue deleted behind the service's back, and data nobody needs any more.

use std::os::unix::fs::symlink;
use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId};
use trd_core::store::{PcmWriter, CHUNK_SAMPLES};
use trd_tests::app::{spawn_app, spawn_app_with, TestApp, Workers};
use trd_tests::data;

/// Uploads a clip as `name` into `batch`: the status and the body.
async fn upload(app: &TestApp, batch: &str, name: &str) -> (u16, String) {
    let audio = std::fs::read(data::path("ko/zeroth-104/104_003_0019.wav")).unwrap();
    app.upload(batch, name, audio).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn links_never_lead_out_of_the_work_directory() {
    let app = spawn_app(Workers::InProcess).await;
    let clip = data::path("ko/zeroth-104/104_003_0019.wav");
    let clip_name = "104_003_0019.wav";
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.wav");
    std::fs::copy(&clip, &secret).unwrap();
    let elsewhere = outside.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::copy(&clip, elsewhere.join("a.wav")).unwrap();
    let wd = app.workdir().to_path_buf();

    // Planted: a link to a file outside, and a batch folder linked outside, beside a good file.
    app.copy_into_batch("calls", std::slice::from_ref(&clip));
    symlink(&secret, wd.join("calls/link.wav")).unwrap();
    symlink(&elsewhere, wd.join("linked")).unwrap();
    app.wait_registered("calls", 1).await;
    // Several rescans later, still no record of either.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = app.get_ok("/trd/audiofile/list/batch/calls").await;
    assert_eq!(calls.as_array().unwrap().len(), 1, "{calls}");
    assert_eq!(calls[0]["filename"], clip_name);
    let all = app.get_ok("/trd/audiofile/list").await.to_string();
    assert!(!all.contains("link") && !all.contains("a.wav"), "{all}");

    // Asked for by name: 400, whether the link is the file or a folder on the way.
    for path in [
        "/trd/audiofile/create/calls/link.wav",
        "/trd/audiofile/create/linked/a.wav",
        "/trd/audiofile/create/batch/linked",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.to_string().contains("symbolic link"), "{path}: {body}");
    }
    // An upload into the linked batch folder is refused and lands nowhere.
    let (status, body) = upload(&app, "linked", "new.wav").await;
    assert_eq!(status, 400, "{body}");
    assert!(!elsewhere.join("new.wav").exists());

    // Swapped for a link after registration: the normalizer refuses it, the rest finishes.
    app.copy_into_batch("swapped", std::slice::from_ref(&clip));
    app.wait_registered("swapped", 1).await;
    let swap = wd.join("swapped/.swap");
    symlink(&secret, &swap).unwrap();
    std::fs::rename(&swap, wd.join("swapped").join(clip_name)).unwrap();
    app.get_ok("/trd/transcription/start/batch/swapped").await;
    app.get_ok("/trd/transcription/start/batch/calls").await;
    let swapped = app
        .wait_batch_done("swapped", Duration::from_secs(120))
        .await;
    assert_eq!(swapped[0]["control"], "FAILED", "{}", swapped[0]);
    assert!(
        swapped[0]["error"].to_string().contains("symbolic link"),
        "{}",
        swapped[0]
    );
    let calls = app.wait_batch_done("calls", Duration::from_secs(120)).await;
    assert_eq!(calls[0]["control"], "FINISHED", "{}", calls[0]);

    // A batch folder swapped for a link: deleting with deleteOnDisk leaves the file outside.
    app.copy_into_batch("moved", std::slice::from_ref(&clip));
    let moved = app.wait_registered("moved", 1).await;
    let target = outside.path().join("moved-target");
    std::fs::create_dir(&target).unwrap();
    std::fs::copy(&clip, target.join(clip_name)).unwrap();
    std::fs::remove_dir_all(wd.join("moved")).unwrap();
    symlink(&target, wd.join("moved")).unwrap();
    let id = moved[0]["_id"].as_str().unwrap();
    let deleted = app
        .admin()
        .delete(app.url(&format!("/trd/audiofile/delete/{id}?deleteOnDisk=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(
        target.join(clip_name).exists(),
        "the file outside was deleted"
    );
    assert!(secret.exists() && elsewhere.join("a.wav").exists());
    let (status, _) = app.get(&format!("/trd/audiofile/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn names_no_file_system_takes_are_refused() {
    let app = spawn_app(Workers::None).await;
    let long = format!("{}.wav", "x".repeat(296));
    let (status, body) = upload(&app, "long", &long).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("255 bytes"), "{body}");
    let (status, body) = app.get(&format!("/trd/audiofile/create/{long}")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .get(&format!("/trd/audiofile/create/batch/{}", "b".repeat(300)))
        .await;
    assert_eq!(status, 400, "{body}");
    // The longest name a file system takes is accepted.
    let longest = format!("{}.wav", "y".repeat(251));
    let (status, body) = upload(&app, "long", &longest).await;
    assert_eq!(status, 200, "{body}");
}

/// A recorder's empty export among broken and good files: every one is registered, the empty
/// one ends FAILED saying so, the broken ones FAILED, the good ones FINISHED.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_recording_is_registered_and_fails_with_its_reason() {
    let app = spawn_app(Workers::InProcess).await;
    let dir = app.workdir().join("exports");
    std::fs::create_dir_all(&dir).unwrap();
    let good = ["104_003_0019", "104_003_0193", "104_003_0253"];
    let clips: Vec<_> = good
        .iter()
        .map(|c| data::path(&format!("ko/zeroth-104/{c}.wav")))
        .collect();
    app.copy_into_batch("exports", &clips);
    for i in 0..5 {
        let junk: Vec<u8> = (0..4_000u32).map(|b| (b * 7919 + i) as u8).collect();
        std::fs::write(dir.join(format!("broken-{i}.wav")), junk).unwrap();
    }
    std::fs::write(dir.join("empty.wav"), b"").unwrap();
    let records = app.wait_registered("exports", 9).await;
    let empty = records
        .iter()
        .find(|r| r["filename"] == "empty.wav")
        .unwrap();
    assert_eq!(empty["size"], 0, "{empty}");
    app.get_ok("/trd/transcription/start/batch/exports").await;
    let done = app
        .wait_batch_done("exports", Duration::from_secs(180))
        .await;
    for record in &done {
        let name = record["filename"].as_str().unwrap();
        let expected = if good.iter().any(|g| name.starts_with(g)) {
            "FINISHED"
        } else {
            "FAILED"
        };
        assert_eq!(record["control"], expected, "{record}");
        if name == "empty.wav" {
            assert!(record["error"].to_string().contains("empty"), "{record}");
        }
    }
}

/// A stage queue deleted behind the service's back (an operator's slip, a broker reset): the
/// start's message is not dropped by the broker while the start answers 200. Publishes are
/// mandatory and confirmed, so the missing queue shows; it is declared again, the message sent
/// once more, and the batch finishes; the worker whose queue vanished consumes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_stage_queue_loses_no_start() {
    let app = spawn_app(Workers::Processes).await;
    app.copy_into_batch("calls", &[data::path("ko/zeroth-104/104_003_0019.wav")]);
    app.wait_registered("calls", 1).await;
    let connection = lapin::Connection::connect(&app.settings.amqp_uri, Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let normalize = app.queue.queue_name(trd_core::domain::Stage::Normalize);
    channel
        .queue_delete(normalize.as_str().into(), Default::default())
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
    // The broker tells a deleted quorum queue's consumers so a moment later; a queue declared
    // again before that kept a consumer that was never served (seen here with RabbitMQ), so
    // the start comes once the worker has been told.
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.get_ok("/trd/transcription/start/batch/calls").await;
    let done = app.wait_batch_done("calls", Duration::from_secs(60)).await;
    assert_eq!(done[0]["control"], "FINISHED", "{}", done[0]);
    assert_eq!(done[0]["status"], "RECOGNIZED", "{}", done[0]);
}

/// The records of a finished batch, by id.
fn ids_of(records: &[serde_json::Value]) -> Vec<ObjectId> {
    records
        .iter()
        .map(|r| ObjectId::parse_str(r["_id"].as_str().unwrap()).unwrap())
        .collect()
}

/// Normalized audio goes as a file finishes; what a delete interrupted between its two writes
/// left behind (segments of a record that is gone, audio of a record that never came back) goes
/// at the next sweep, and the results of the files that remain stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finished_files_keep_no_normalized_audio_and_orphans_are_swept() {
    let app = spawn_app(Workers::InProcess).await;
    let clips = [
        data::path("ko/zeroth-104/104_003_0019.wav"),
        data::path("ko/zeroth-104/104_003_0193.wav"),
    ];
    app.copy_into_batch("calls", &clips);
    app.wait_registered("calls", 2).await;
    app.get_ok("/trd/transcription/start/batch/calls").await;
    let done = app.wait_batch_done("calls", Duration::from_secs(240)).await;
    let ids = ids_of(&done);
    for (record, id) in done.iter().zip(&ids) {
        assert_eq!(record["control"], "FINISHED", "{record}");
        app.eventually(
            "a finished file's normalized audio is dropped",
            Duration::from_secs(20),
            || async { (app.store.count_pcm_chunks(*id).await.unwrap() == 0).then_some(()) },
        )
        .await;
        assert!(!app.store.segments_of(*id).await.unwrap().is_empty());
    }

    // The API killed between the two writes of a delete: the record went, its data stayed.
    let victim = ids[0];
    app.store
        .database()
        .collection::<mongodb::bson::Document>("audiofiles")
        .delete_one(doc! {"_id": victim})
        .await
        .unwrap();
    let orphan = ObjectId::new();
    let mut writer = PcmWriter::new(&app.store, orphan, 1);
    writer
        .write(&vec![7_i16; 2 * CHUNK_SAMPLES as usize])
        .await
        .unwrap();
    writer.finish().await.unwrap();
    assert!(!app.store.segments_of(victim).await.unwrap().is_empty());
    assert!(app.store.count_pcm_chunks(orphan).await.unwrap() > 0);
    app.eventually(
        "one sweep removes the orphans",
        Duration::from_secs(20),
        || async {
            let segments = app.store.segments_of(victim).await.unwrap();
            let pcm = app.store.count_pcm_chunks(orphan).await.unwrap();
            (segments.is_empty() && pcm == 0).then_some(())
        },
    )
    .await;
    assert!(
        !app.store.segments_of(ids[1]).await.unwrap().is_empty(),
        "a remaining file keeps its results"
    );
}

/// With a retention time, a finished file's normalized audio outlives several sweeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn normalized_audio_is_kept_for_its_retention_time() {
    let app = spawn_app_with(Workers::InProcess, |s| s.pcm_retention_seconds = 3_600).await;
    app.copy_into_batch("calls", &[data::path("ko/zeroth-104/104_003_0019.wav")]);
    app.wait_registered("calls", 1).await;
    app.get_ok("/trd/transcription/start/batch/calls").await;
    let done = app.wait_batch_done("calls", Duration::from_secs(240)).await;
    assert_eq!(done[0]["control"], "FINISHED", "{}", done[0]);
    let id = ids_of(&done)[0];
    // The sweep runs every quarter lease (15 s here): two of them.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(app.store.count_pcm_chunks(id).await.unwrap() > 0);
}

/// A start whose message never reached a worker (published, then lost with the broker's
/// queue contents): the file would wait RUNNING/INITIAL for ever. With the stage's queue empty
/// and the file unclaimed for longer than a lease, the workers' sweep publishes it again and
/// the file finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_start_whose_message_was_lost_is_sent_again() {
    let app = spawn_app_with(Workers::None, |s| s.lease_seconds = 5).await;
    app.copy_into_batch("calls", &[data::path("ko/zeroth-104/104_003_0019.wav")]);
    app.wait_registered("calls", 1).await;
    app.get_ok("/trd/transcription/start/batch/calls").await;
    let connection = lapin::Connection::connect(&app.settings.amqp_uri, Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let normalize = app.queue.queue_name(trd_core::domain::Stage::Normalize);
    let purged = channel
        .queue_purge(normalize.as_str().into(), Default::default())
        .await
        .unwrap();
    assert_eq!(
        purged, 1,
        "the start's message was in the queue, and is gone"
    );
    let _ = connection.close(200, "done".into()).await;

    app.spawn_worker(trd_normalizer::Normalizer).await;
    app.spawn_worker(trd_diarizer::Diarizer).await;
    app.spawn_worker(trd_recognizer::Recognizer).await;
    let done = app.wait_batch_done("calls", Duration::from_secs(90)).await;
    assert_eq!(done[0]["control"], "FINISHED", "{}", done[0]);
    assert_eq!(done[0]["status"], "RECOGNIZED", "{}", done[0]);
}

/// Every route that takes audio in its body: the work directory's upload, the Speechmatics
/// submit and each recognize-now face.
const AUDIO_ROUTES: [&str; 8] = [
    "/trd/audiofile/upload",
    "/v2/jobs",
    "/trd/recognize",
    "/v1/audio/transcriptions",
    "/asr",
    "/api/v2/lindat/generic/ko",
    "/api/v1/stt/http",
    "/api/v1/file/v2t",
];

/// A client that sends an upload's head to `path` and then trickles its body.
async fn trickling_upload(base: &str, key: &str, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket
}

/// 200 clients trickle a byte a second into every route that takes audio. They hold neither
/// the upload slots nor the recognition slots (`interactive_in_flight`, 8), so an honest
/// upload and an honest recognize-now request are served meanwhile; every trickler gets 408
/// once its start time is up, and nothing of theirs is left spooled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_slow_clients_do_not_stop_an_upload() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const START_SECONDS: u64 = 4;
    let app = spawn_app_with(Workers::InProcess, |s| {
        s.upload_start_seconds = START_SECONDS;
        // This is about slots, not request rates.
        s.rate_limit_per_second = 0;
    })
    .await;
    let key = app.admin_key();
    let trickling: Vec<_> = (0..200)
        .map(|i| {
            let (base, key) = (app.base.clone(), key.clone());
            let path = AUDIO_ROUTES[i % AUDIO_ROUTES.len()];
            tokio::spawn(async move {
                let mut socket = trickling_upload(&base, &key, path).await;
                // A byte a second until the service answers (or 30 s: it never did).
                let mut answer = Vec::new();
                let mut buffer = [0u8; 1024];
                for _ in 0..30 {
                    let _ = socket.write_all(b"-").await;
                    match tokio::time::timeout(Duration::from_secs(1), socket.read(&mut buffer))
                        .await
                    {
                        Ok(Ok(0)) | Ok(Err(_)) => break,
                        Ok(Ok(n)) => {
                            answer.extend_from_slice(&buffer[..n]);
                            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                        Err(_) => {}
                    }
                }
                (path, String::from_utf8_lossy(&answer).into_owned())
            })
        })
        .collect();
    // Every slow client is connected and sending before the honest ones arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = std::time::Instant::now();
    let (status, body) = upload(&app, "calls", "honest.wav").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(START_SECONDS),
        "the honest upload waited {:?}: it must not wait for the slow ones",
        asked.elapsed()
    );
    let records = app.get_ok("/trd/audiofile/list/batch/calls").await;
    assert_eq!(records.as_array().unwrap().len(), 1, "{records}");
    let clip = data::path("ko/zeroth-104/104_003_0019.wav");
    let form = reqwest::multipart::Form::new()
        .text("model", "whisper-1")
        .text("response_format", "json")
        .part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(&clip).unwrap()).file_name("honest.wav"),
        );
    let response = app
        .admin()
        .post(app.url("/v1/audio/transcriptions"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let transcript: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status, 200, "a recognition slot was free: {transcript}");
    assert!(
        !transcript["text"].as_str().unwrap_or("").trim().is_empty(),
        "{transcript}"
    );

    // The slow ones are answered 408 once their start time is up, and none was stored.
    for answer in futures::future::join_all(trickling).await {
        let (path, answer) = answer.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer:?}");
    }
    let spooled = std::fs::read_dir(app.workdir().join(".trd-uploads"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(spooled, 0, "nothing of the slow uploads is left spooled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listings_are_paged_with_limit_and_skip() {
    let app = spawn_app(Workers::None).await;
    let clips: Vec<_> = data::references("ko/zeroth-104")
        .keys()
        .take(5)
        .map(|f| data::path("ko/zeroth-104").join(f))
        .collect();
    app.copy_into_batch("paged", &clips);
    app.wait_registered("paged", 5).await;
    let whole = app.get_ok("/trd/audiofile/list/batch/paged").await;
    let whole = whole.as_array().unwrap().clone();
    assert_eq!(whole.len(), 5);
    let names = |records: &[serde_json::Value]| -> Vec<String> {
        records
            .iter()
            .map(|r| r["filename"].as_str().unwrap().to_owned())
            .collect()
    };

    // Pages of two, one after the other, are the whole listing in its order.
    let mut paged = Vec::new();
    for skip in [0, 2, 4] {
        let page = app
            .get_ok(&format!(
                "/trd/audiofile/list/batch/paged?limit=2&skip={skip}"
            ))
            .await;
        paged.extend(page.as_array().unwrap().clone());
    }
    assert_eq!(names(&paged), names(&whole));
    let everything = app.get_ok("/trd/audiofile/list?limit=3&skip=1").await;
    assert_eq!(everything.as_array().unwrap().len(), 3, "{everything}");

    // The query pages in `_id` order.
    let lines = |body: String| -> Vec<serde_json::Value> {
        body.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let query = |suffix: &str| {
        let url = app.url(&format!(
            "/trd/query/collection/audiofiles?batch=paged&project=filename{suffix}"
        ));
        let client = app.admin();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, all) = query("").await;
    assert_eq!(status, 200, "{all}");
    let all = lines(all);
    assert_eq!(all.len(), 5);
    let (status, middle) = query("&limit=2&skip=1").await;
    assert_eq!(status, 200, "{middle}");
    assert_eq!(lines(middle), all[1..3].to_vec());

    for bad in [
        "limit=0",
        "limit=ten",
        "skip=-1",
        "limit=10001",
        "skip=9223372036854775808",
    ] {
        let (status, body) = app
            .get(&format!("/trd/audiofile/list/batch/paged?{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        let (status, body) = query(&format!("&{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

/// The most a process has held in memory so far (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    trd_tests::procfs::memory_kb(pid, "status", "VmHWM").unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decompression_bombs_fail_alone_and_cheaply() {
    // Long enough for any clip here; what a bomb may cost is counted against it below.
    const MAX_AUDIO_SECONDS: u64 = 120;
    const CHANNELS: u64 = 8;
    let mut app = spawn_app_with(Workers::None, |s| {
        s.max_audio_seconds = MAX_AUDIO_SECONDS;
        s.worker_concurrency = 2;
    })
    .await;
    assert_eq!(
        app.settings.max_delivery_attempts,
        trd_core::config::Settings::default().max_delivery_attempts
    );
    app.start_worker_process("trd-normalizer");
    let diarizer = app.start_worker_process("trd-diarizer");
    app.start_worker_process("trd-recognizer");

    let clips: Vec<_> = data::references("ko/zeroth-104")
        .keys()
        .take(10)
        .map(|f| data::path("ko/zeroth-104").join(f))
        .collect();
    app.copy_into_batch("mixed", &clips);
    // 48 hours of 8-channel silence: one whose header says so, one whose header does not.
    let dir = app.workdir().join("mixed");
    let declared = trd_tests::bombs::silent_flac(48 * 3600, CHANNELS as u8, 16_000, true);
    assert!(declared.len() < 4 << 20);
    std::fs::write(dir.join("bomb-declared.flac"), &declared).unwrap();
    let hidden = trd_tests::bombs::silent_flac(48 * 3600, CHANNELS as u8, 16_000, false);
    std::fs::write(dir.join("bomb-hidden.flac"), &hidden).unwrap();
    app.wait_registered("mixed", 12).await;
    let records = app.get_ok("/trd/audiofile/list/batch/mixed").await;
    let bombs: Vec<ObjectId> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["filename"].as_str().unwrap().starts_with("bomb"))
        .map(|r| ObjectId::parse_str(r["_id"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(bombs.len(), 2);
    app.get_ok("/trd/transcription/start/batch/mixed").await;

    // While the batch runs, the bombs' stored audio never passes the limit's worth.
    let pcm = app
        .store
        .database()
        .collection::<mongodb::bson::Document>("pcm_chunks");
    let bound = CHANNELS * (MAX_AUDIO_SECONDS * 16_000).div_ceil(CHUNK_SAMPLES) + CHANNELS;
    let mut most = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let done = loop {
        let held = pcm
            .count_documents(doc! {"audiofile_id": {"$in": &bombs}})
            .await
            .unwrap();
        most = most.max(held);
        let records = app.get_ok("/trd/audiofile/list/batch/mixed").await;
        let records = records.as_array().unwrap().clone();
        if records
            .iter()
            .all(|r| r["control"] == "FINISHED" || r["control"] == "FAILED")
        {
            break records;
        }
        assert!(std::time::Instant::now() < deadline, "{records:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        most <= bound,
        "{most} chunks of the bombs were stored at once (bound {bound})"
    );
    for record in &done {
        if record["filename"].as_str().unwrap().starts_with("bomb") {
            assert_eq!(record["control"], "FAILED", "{record}");
            assert!(
                record["error"].to_string().contains("max_audio_seconds"),
                "{record}"
            );
        } else {
            assert_eq!(record["control"], "FINISHED", "{record}");
            assert_eq!(record["status"], "RECOGNIZED", "{record}");
        }
    }
    let left = pcm
        .count_documents(doc! {"audiofile_id": {"$in": &bombs}})
        .await
        .unwrap();
    assert_eq!(left, 0, "a failed bomb keeps no audio");
    // The diarizer never saw more than the clips: well under what one bomb would have cost.
    let diarizer_peak = peak_rss(diarizer);
    assert!(
        diarizer_peak < 1 << 30,
        "the diarizer peaked at {} MiB",
        diarizer_peak >> 20
    );
}

/// Writes `bytes` over the file at `path` in place, as a recorder reusing a name does.
fn rewrite(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
}

fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rewritten_file_becomes_a_new_record_and_the_old_keeps_its_results() {
    let app = spawn_app(Workers::InProcess).await;
    let first = std::fs::read(data::path("ko/zeroth-104/104_003_0019.wav")).unwrap();
    let second = std::fs::read(data::path("ko/zeroth-104/104_003_0193.wav")).unwrap();
    let dir = app.workdir().join("reused");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".call.wav.part"), &first).unwrap();
    std::fs::rename(dir.join(".call.wav.part"), dir.join("call.wav")).unwrap();
    app.wait_registered("reused", 1).await;
    app.get_ok("/trd/transcription/start/batch/reused").await;
    let done = app
        .wait_batch_done("reused", Duration::from_secs(120))
        .await;
    assert_eq!(done[0]["control"], "FINISHED", "{}", done[0]);
    let old_id = done[0]["_id"].as_str().unwrap().to_owned();
    assert_eq!(done[0]["md5"], md5_hex(&first));

    rewrite(&dir.join("call.wav"), &second);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let fresh = loop {
        let list = app.get_ok("/trd/audiofile/list/batch/reused").await;
        let list = list.as_array().unwrap().clone();
        if list.len() == 1 && list[0]["_id"] != old_id.as_str() {
            break list[0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{list:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(fresh["md5"], md5_hex(&second), "{fresh}");
    assert_eq!(fresh["size"], second.len() as u64, "{fresh}");
    assert_eq!(fresh["control"], "IDLE", "{fresh}");
    let fresh_id = fresh["_id"].as_str().unwrap().to_owned();

    // The old record keeps its results, says what happened and names its successor.
    let old = app.get_ok(&format!("/trd/audiofile/{old_id}")).await;
    assert_eq!(old["control"], "FINISHED", "{old}");
    assert_eq!(old["md5"], md5_hex(&first), "{old}");
    assert!(old["warnings"].to_string().contains(&fresh_id), "{old}");
    let (status, _) = app
        .get(&format!("/trd/transcription/result/audiofile/{old_id}"))
        .await;
    assert_eq!(status, 200);

    // Touched without a change: no new record.
    let file = std::fs::File::options()
        .write(true)
        .open(dir.join("call.wav"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    drop(file);
    tokio::time::sleep(Duration::from_millis(
        3 * app.settings.rescan_interval_ms + app.settings.settle_ms,
    ))
    .await;
    let list = app.get_ok("/trd/audiofile/list/batch/reused").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["_id"], fresh_id.as_str(), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audio_rewritten_unseen_before_normalizing_fails_its_record() {
    let app = spawn_app(Workers::None).await;
    let first = std::fs::read(data::path("ko/zeroth-104/104_003_0019.wav")).unwrap();
    let dir = app.workdir().join("unseen");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".call.wav.part"), &first).unwrap();
    std::fs::rename(dir.join(".call.wav.part"), dir.join("call.wav")).unwrap();
    app.wait_registered("unseen", 1).await;
    app.get_ok("/trd/transcription/start/batch/unseen").await;

    // Same size, same time, other audio (the header kept, the samples reversed): nothing a
    // look at the file's metadata can tell.
    let path = dir.join("call.wav");
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut other = first.clone();
    other[44..].reverse();
    rewrite(&path, &other);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();

    app.spawn_worker(trd_normalizer::Normalizer).await;
    app.spawn_worker(trd_diarizer::Diarizer).await;
    app.spawn_worker(trd_recognizer::Recognizer).await;
    let done = app
        .wait_batch_done("unseen", Duration::from_secs(120))
        .await;
    assert_eq!(done[0]["control"], "FAILED", "{}", done[0]);
    assert!(
        done[0]["error"].to_string().contains("changed on disk"),
        "{}",
        done[0]
    );
    assert_eq!(done[0]["md5"], md5_hex(&first));
}

/// A file system mounted on a folder for the length of a test, which the test can take away
/// and bring back: another folder bound over it, or a small tmpfs.
struct Mount {
    /// What `mount` is given before the target.
    how: Vec<std::ffi::OsString>,
    target: std::path::PathBuf,
}

impl Mount {
    /// `source` bound over `target`. None where this machine does not let the tests mount (no
    /// `CAP_SYS_ADMIN`).
    fn bind(source: &std::path::Path, target: &std::path::Path) -> Option<Self> {
        Self::new(vec!["--bind".into(), source.into()], target)
    }

    /// A tmpfs of `megabytes` on `target`.
    fn tmpfs(megabytes: u64, target: &std::path::Path) -> Option<Self> {
        let how = ["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"];
        Self::new(how.iter().map(Into::into).collect(), target)
    }

    fn new(how: Vec<std::ffi::OsString>, target: &std::path::Path) -> Option<Self> {
        let mount = Self {
            how,
            target: target.to_owned(),
        };
        mount.attach().then_some(mount)
    }

    fn attach(&self) -> bool {
        std::process::Command::new("mount")
            .args(&self.how)
            .arg(&self.target)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Lazily: the mount goes at once, whatever still has files open in it.
    fn detach(&self) {
        let status = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.target)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.target)
            .status();
    }
}

const NEED_MOUNT: &str = "the tests need to mount (root with CAP_SYS_ADMIN, as scripts/test runs)";

/// Fills the file system `dir` is on with one file until it has no space left; the file.
fn fill_up(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 1 << 20];
    loop {
        match file.write_all(&block) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling {}: {e}", dir.display()),
        }
    }
    let _ = file.sync_all();
    path
}

/// MongoDB's storage fills up mid-batch. The storage engine refuses writes, or gives up
/// altogether (WiredTiger panics, as `mongod` aborts) and answers nothing but errors until
/// space is freed and the server restarted: meanwhile a write through the API answers 503
/// naming MongoDB and the workers hold their files.
/// After the restart every file finishes with the text of a batch that never met a full disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_database_disk_fails_no_file() {
    let root = tempfile::tempdir().unwrap();
    let disk = root.path().join("mongo");
    std::fs::create_dir_all(&disk).unwrap();
    let Some(_mount) = Mount::tmpfs(256, &disk) else {
        panic!("{NEED_MOUNT}");
    };
    let mongo = trd_tests::services::PrivateMongo::start_with_small_journal_files(&disk);
    let app = spawn_app_with(Workers::InProcess, |s| {
        s.mongodb_uri = mongo.uri();
        s.lease_seconds = 10;
    })
    .await;
    let clips: Vec<_> = data::references("ko/zeroth-104")
        .keys()
        .map(|f| data::path("ko/zeroth-104").join(f))
        .chain([data::path("dialogues/dlg_104_109.flac")])
        .collect();
    app.copy_into_batch("calls", &clips);
    app.wait_registered("calls", clips.len()).await;
    app.get_ok("/trd/transcription/start/batch/calls").await;
    // The disk is full while the normalizer writes the batch's audio into the database.
    let filler = fill_up(&disk);
    // The server keeps some journal allocated ahead; what a busy database writes meets the
    // full disk at once, whatever the pace of the batch on a loaded machine.
    let scratch = app
        .store
        .database()
        .collection::<mongodb::bson::Document>("test_filler");
    let block = mongodb::bson::Binary {
        subtype: mongodb::bson::spec::BinarySubtype::Generic,
        bytes: vec![7u8; 1 << 20],
    };
    let mut refusal = None;
    for _ in 0..256 {
        if let Err(e) = scratch.insert_one(doc! {"block": block.clone()}).await {
            refusal = Some(e);
            break;
        }
    }
    let refusal = refusal.expect("the database took 256 MB more on a full disk");
    // Whether the storage engine gives up at once (WiredTiger panics when its journal cannot
    // be written) or refuses only the writes that need new space depends on which write meets
    // the full disk first. Either way an API call is answered, or refused with 503 naming
    // MongoDB: never a 500, and no file fails (checked at the end).
    let (status, body) = upload(&app, "probe", "while-full.wav").await;
    assert!(
        status == 200 || (status == 503 && body.contains("MongoDB")),
        "an upload while full ({refusal}): {status} {body}"
    );
    if status != 200 {
        assert!(!app.workdir().join("probe/while-full.wav").exists());
    }
    for _ in 0..20 {
        let (status, body) = app.get("/trd/audiofile/list/batch/calls").await;
        assert!(
            status == 200 || (status == 503 && body.to_string().contains("MongoDB")),
            "a listing while full: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Space is freed and the database restarted, as an operator does.
    std::fs::remove_file(filler).unwrap();
    mongo.kill();
    mongo.start_again();
    let done = app.wait_batch_done("calls", Duration::from_secs(300)).await;
    app.assert_finished_as_undisturbed(&done, &clips).await;
}

/// The database refuses the record after the upload's file took its name (here a unique index
/// the test adds on `md5`, so the second upload of the same audio is refused): the name is
/// freed again, so the client's retry once the database accepts it is a 200, not a 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_the_database_refuses_leaves_its_name_free() {
    let app = spawn_app(Workers::None).await;
    let (status, body) = upload(&app, "calls", "first.wav").await;
    assert_eq!(status, 200, "{body}");
    let audiofiles = app
        .store
        .database()
        .collection::<mongodb::bson::Document>("audiofiles");
    let unique_md5 = mongodb::IndexModel::builder()
        .keys(doc! {"md5": 1})
        .options(
            mongodb::options::IndexOptions::builder()
                .unique(true)
                .name("test_unique_md5".to_owned())
                .build(),
        )
        .build();
    audiofiles.create_index(unique_md5).await.unwrap();

    let (status, body) = upload(&app, "calls", "second.wav").await;
    assert!(
        status >= 500,
        "the database refused the record: {status} {body}"
    );
    let placed = app.workdir().join("calls/second.wav");
    assert!(!placed.exists(), "the refused upload left its file behind");
    let listed = app.get_ok("/trd/audiofile/list/batch/calls").await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    audiofiles.drop_index("test_unique_md5").await.unwrap();
    let (status, body) = upload(&app, "calls", "second.wav").await;
    assert_eq!(status, 200, "the retry: {body}");
    assert!(placed.exists());
    let listed = app.get_ok("/trd/audiofile/list/batch/calls").await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unmounted_work_directory_holds_its_files_until_it_is_back() {
    let root = tempfile::tempdir().unwrap();
    let (disk, workdir) = (root.path().join("disk"), root.path().join("work"));
    std::fs::create_dir_all(&disk).unwrap();
    std::fs::create_dir_all(&workdir).unwrap();
    let Some(mount) = Mount::bind(&disk, &workdir) else {
        panic!("{NEED_MOUNT}");
    };
    let state = root.path().join("state");
    let app = spawn_app_with(Workers::None, |s| {
        s.workdir = workdir.clone();
        s.state_dir = state.clone();
    })
    .await;
    let clips: Vec<_> = data::references("ko/zeroth-104")
        .keys()
        .take(3)
        .map(|f| data::path("ko/zeroth-104").join(f))
        .collect();
    app.copy_into_batch("calls", &clips);
    app.wait_registered("calls", 3).await;
    app.get_ok("/trd/transcription/start/batch/calls").await;

    // Gone before the normalizer reads a file; the folder left behind is empty.
    mount.detach();
    assert!(!workdir.join(".trd-workdir").exists());
    app.spawn_worker(trd_normalizer::Normalizer).await;
    app.spawn_worker(trd_diarizer::Diarizer).await;
    app.spawn_worker(trd_recognizer::Recognizer).await;
    let (status, body) = upload(&app, "calls", "more.wav").await;
    assert_eq!(status, 503, "{body}");
    // Registering a file in place is refused the same way: the storage is away, not the file.
    let (status, body) = app.get("/trd/audiofile/create/calls/more.wav").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.to_string()
            .contains("the work directory is unavailable"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let held = app.get_ok("/trd/audiofile/list/batch/calls").await;
    for record in held.as_array().unwrap() {
        assert_eq!(record["control"], "RUNNING", "{record}");
        assert_ne!(record["status"], "RECOGNIZED", "{record}");
    }
    assert!(
        std::fs::read_dir(&workdir).unwrap().next().is_none(),
        "nothing was written where the work directory was"
    );

    // Back: every file finishes, as the same clips do in a batch that never lost its disk.
    assert!(mount.attach());
    let done = app.wait_batch_done("calls", Duration::from_secs(120)).await;
    app.assert_finished_as_undisturbed(&done, &clips).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_normalizer_stopped_for_ninety_seconds_costs_no_file() {
    let _turn = trd_tests::turns::alone().await;
    let mut app = spawn_app_with(Workers::None, |s| s.worker_concurrency = 1).await;
    let normalizer = app.start_worker_process("trd-normalizer");
    app.start_worker_process("trd-diarizer");
    app.start_worker_process("trd-recognizer");
    let clips: Vec<_> = data::references("ko/zeroth-104")
        .keys()
        .map(|f| data::path("ko/zeroth-104").join(f))
        .collect();
    app.copy_into_batch("stopped", &clips);
    app.wait_registered("stopped", clips.len()).await;
    app.get_ok("/trd/transcription/start/batch/stopped").await;

    // Frozen mid-batch, longer than its lease and its broker heartbeat, then thawed.
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(normalizer.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("STOP");
    tokio::time::sleep(Duration::from_secs(90)).await;
    signal("CONT");

    let done = app
        .wait_batch_done("stopped", Duration::from_secs(300))
        .await;
    app.assert_finished_as_undisturbed(&done, &clips).await;
}
