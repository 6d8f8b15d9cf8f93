//! Reliability acceptance 1: a batch of 30 files in several formats is processed by separate
//! worker processes while the test kills (`kill -9`) a worker every few seconds — each stage at
//! least three times, and at least once while it holds a file mid-write — and restarts it.
//! Every file must end FINISHED with exactly the segments and the results (JSON and CSV, byte
//! for byte apart from ids and dates) of a clean run of the same files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use serde_json::Value;
use trd_core::Settings;
use trd_tests::app::{spawn_app_with, worker_command, TestApp, Workers};
use trd_tests::data;
use trd_tests::fleet::Fleet;

const STAGES: [&str; 3] = ["normalize", "diarize", "recognize"];

/// 30 files: the 15 zeroth-104 clips as WAV, 14 of them again as FLAC, MP3 or Ogg Vorbis (made
/// with ffmpeg), and one dialogue as M4A (AAC).
fn chaos_files(dir: &Path) -> Vec<PathBuf> {
    let clips_dir = data::path("ko/zeroth-104");
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&clips_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    clips.sort();
    let mut files = clips.clone();
    for (i, clip) in clips.iter().take(14).enumerate() {
        let ext = ["flac", "mp3", "ogg"][i % 3];
        let target = dir.join(clip.with_extension(ext).file_name().unwrap());
        let ok = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-i"])
            .arg(clip)
            .arg(&target)
            .status()
            .expect("ffmpeg (installed by scripts/lib/provision-test.sh)");
        assert!(ok.success());
        files.push(target);
    }
    files.push(data::path("dialogues/dlg_104_110.m4a"));
    assert_eq!(files.len(), 30);
    files
}

fn chaos_settings(s: &mut Settings) {
    s.lease_seconds = 5;
    s.worker_concurrency = 1;
    // At the default `max_delivery_attempts`: a file is killed in at most `SPARED_AFTER` times
    // per stage, so it is delivered at most that many times plus the one that succeeds.
    assert!(SPARED_AFTER < s.max_delivery_attempts as usize);
    // Short segments: most files get several, so a recognizer is often caught with some of a
    // file's segments stored and another in hand (a mid-write kill), not only between files.
    s.max_segment_seconds = 4.0;
}

/// Kills a file may take (mid-write or not) before it is spared, so every file gets through
/// within its `max_delivery_attempts`.
const SPARED_AFTER: usize = 3;

/// The files whose work at `stage` the worker `pid` holds under a live lease.
async fn held_by(app: &TestApp, stage: &str, pid: u32) -> Vec<ObjectId> {
    let (collection, status, file_field) = match stage {
        "normalize" => ("audiofiles", "NORMALIZING", "_id"),
        "diarize" => ("audiofiles", "DIARIZING", "_id"),
        _ => ("segments", "PROCESSING", "audiofile_id"),
    };
    let Some(leased) = leased(app.store.database(), collection, status).await else {
        return Vec::new();
    };
    let mut files: Vec<ObjectId> = leased
        .iter()
        .filter(|d| owner_pid(d) == Some(pid))
        .filter_map(|d| d.get_object_id(file_field).ok())
        .collect();
    files.dedup();
    files
}

/// Two worker processes per stage.
fn start_fleet(settings: &Settings) -> Fleet {
    let mut fleet = Fleet::new();
    for stage in STAGES {
        for _ in 0..2 {
            let settings = settings.clone();
            let binary = format!("trd-{stage}r");
            fleet.add(stage, move || worker_command(&settings, &binary));
        }
    }
    fleet
}

/// Each file's result as JSON (the per-run id and dates left out) and as CSV, by file name.
async fn results(app: &TestApp, records: &[Value]) -> BTreeMap<String, (Value, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for r in records {
        let id = r["_id"].as_str().unwrap();
        let mut json = app
            .get_ok(&format!("/trd/transcription/result/audiofile/{id}"))
            .await;
        // Per run by contract: the record's id and dates, and the dates of the copied file.
        for key in ["_id", "create_date", "last_update"] {
            json.as_object_mut().unwrap().remove(key);
        }
        if let Some(info) = json["info"].as_object_mut() {
            info.remove("FileCreatedDate");
            info.remove("FileModifiedDate");
        }
        let csv = app
            .http
            .get(app.url(&format!(
                "/trd/transcription/result/audiofile/{id}?format=csv"
            )))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        out.insert(r["filename"].as_str().unwrap().to_owned(), (json, csv));
    }
    out
}

async fn run_batch(app: &TestApp, files: &[PathBuf]) -> Instant {
    app.copy_into_batch("chaos", files);
    app.wait_registered("chaos", files.len()).await;
    let started = Instant::now();
    app.get_ok("/trd/transcription/start/batch/chaos").await;
    started
}

/// The pid inside a lease owner (`host:pid:tag`).
fn owner_pid(doc: &Document) -> Option<u32> {
    let owner = doc.get_document("lease").ok()?.get_str("owner").ok()?;
    owner.split(':').nth(1)?.parse().ok()
}

/// A worker of `stage` caught mid-write: its pid and file, if one holds a live lease with part of
/// its output already stored (normalize: PCM chunks; recognize: some of the file's segments
/// recognized; diarize: the stage in hand, since it writes its segments in one go). Files hit
/// `SPARED_AFTER` times already are spared, so every file still gets through.
async fn mid_write(
    app: &TestApp,
    stage: &str,
    hits: &HashMap<ObjectId, usize>,
) -> Option<(u32, ObjectId)> {
    let spared = |id: &ObjectId| hits.get(id).is_some_and(|n| *n >= SPARED_AFTER);
    let db = app.store.database();
    match stage {
        "normalize" | "diarize" => {
            let status = if stage == "normalize" {
                "NORMALIZING"
            } else {
                "DIARIZING"
            };
            for file in leased(db, "audiofiles", status).await? {
                let id = file.get_object_id("_id").ok()?;
                if spared(&id) {
                    continue;
                }
                let written = db
                    .collection::<Document>("pcm_chunks")
                    .count_documents(doc! {"audiofile_id": id})
                    .await
                    .ok()?;
                if stage == "diarize" || written > 0 {
                    return Some((owner_pid(&file)?, id));
                }
            }
            None
        }
        _ => {
            for segment in leased(db, "segments", "PROCESSING").await? {
                let file = segment.get_object_id("audiofile_id").ok()?;
                if spared(&file) {
                    continue;
                }
                let done = db
                    .collection::<Document>("segments")
                    .count_documents(doc! {"audiofile_id": file, "status": {"$ne": "PROCESSING"}})
                    .await
                    .ok()?;
                if done > 0 {
                    return Some((owner_pid(&segment)?, file));
                }
            }
            None
        }
    }
}

/// The documents of `collection` in `status` whose lease is still live.
async fn leased(db: &mongodb::Database, collection: &str, status: &str) -> Option<Vec<Document>> {
    db.collection::<Document>(collection)
        .find(doc! {"status": status, "lease.until": {"$gt": DateTime::now()}})
        .await
        .ok()?
        .try_collect()
        .await
        .ok()
}

async fn batch_done(app: &TestApp) -> bool {
    let list = app.get_ok("/trd/audiofile/list/batch/chaos").await;
    list.as_array()
        .unwrap()
        .iter()
        .all(|r| matches!(r["control"].as_str(), Some("FINISHED" | "FAILED")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_workers_change_nothing_in_the_results() {
    let _turn = trd_tests::turns::alone().await;
    let scratch = tempfile::tempdir().unwrap();
    let files = chaos_files(scratch.path());

    // The clean run: the same files, the same worker layout, no kills.
    let clean = spawn_app_with(Workers::None, chaos_settings).await;
    let fleet = start_fleet(&clean.settings);
    let started = run_batch(&clean, &files).await;
    let clean_done = clean
        .wait_batch_done("chaos", Duration::from_secs(400))
        .await;
    println!("clean run: {:.1} s", started.elapsed().as_secs_f64());
    drop(fleet);
    let expected = results(&clean, &clean_done).await;
    drop(clean);

    // The chaos run.
    let app = spawn_app_with(Workers::None, chaos_settings).await;
    let mut fleet = start_fleet(&app.settings);
    let started = run_batch(&app, &files).await;
    // Every 0.75 s one worker, the stages in turn: preferably one caught mid-write,
    // otherwise any of that stage's. Between those, a stage not yet caught mid-write is
    // watched closely so it is, as soon as the chance arises.
    let mut kills: BTreeMap<&str, (usize, usize)> = STAGES.iter().map(|s| (*s, (0, 0))).collect();
    let mut next_kill = Instant::now() + Duration::from_secs(2);
    let mut hits: HashMap<ObjectId, usize> = HashMap::new();
    let mut turn = 0;
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let deadline = Instant::now() + Duration::from_secs(500);
    while !batch_done(&app).await {
        assert!(
            Instant::now() < deadline,
            "the chaos batch did not finish: {kills:?}"
        );
        let turn_stage = (Instant::now() >= next_kill).then(|| STAGES[turn % STAGES.len()]);
        if turn_stage.is_some() {
            turn += 1;
            next_kill = Instant::now() + Duration::from_millis(750);
        }
        for stage in STAGES {
            let caught = kills[stage].1 > 0;
            let its_turn = turn_stage == Some(stage);
            if caught && !its_turn {
                continue;
            }
            let member = match mid_write(&app, stage, &hits).await {
                Some((pid, file)) => {
                    *hits.entry(file).or_default() += 1;
                    (0..fleet.len())
                        .find(|&i| fleet.pid(i) == pid)
                        .map(|i| (i, true))
                }
                None if its_turn => {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Any of the stage's workers, but never one holding a spared file: the
                    // kills a file takes stay well below its delivery attempts, whatever the
                    // machine's speed.
                    let mut of_stage = Vec::new();
                    for i in (0..fleet.len()).filter(|&i| fleet.name(i) == stage) {
                        let held = held_by(&app, stage, fleet.pid(i)).await;
                        if held
                            .iter()
                            .all(|f| hits.get(f).is_none_or(|n| *n < SPARED_AFTER))
                        {
                            of_stage.push((i, held));
                        }
                    }
                    (!of_stage.is_empty()).then(|| {
                        let (i, held) =
                            of_stage.swap_remove((rng % of_stage.len() as u64) as usize);
                        for file in held {
                            *hits.entry(file).or_default() += 1;
                        }
                        (i, false)
                    })
                }
                None => None,
            };
            if let Some((i, mid)) = member {
                fleet.kill_and_restart(i);
                let k = kills.get_mut(stage).unwrap();
                k.0 += 1;
                k.1 += usize::from(mid);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("chaos run: {seconds:.1} s; kills per stage (all, mid-write): {kills:?}");
    assert!(fleet.exited().is_empty(), "workers exited by themselves");

    let done = app.wait_batch_done("chaos", Duration::from_secs(10)).await;
    for record in &done {
        assert_eq!(record["control"], "FINISHED", "{record}");
    }
    let actual = results(&app, &done).await;
    assert_eq!(actual.len(), expected.len());
    let mut segments = 0;
    for (name, (json, csv)) in &expected {
        let (chaos_json, chaos_csv) = &actual[name];
        let n = json["segments"].as_array().unwrap().len();
        assert_eq!(
            chaos_json["segments"].as_array().unwrap().len(),
            n,
            "{name}: segment count"
        );
        assert_eq!(
            chaos_json, json,
            "{name}: JSON result differs from the clean run"
        );
        assert_eq!(
            chaos_csv, csv,
            "{name}: CSV result differs from the clean run"
        );
        segments += n;
    }
    // No duplicate segments stored: the store holds exactly what the results show.
    let stored = app
        .store
        .database()
        .collection::<Document>("segments")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(stored as usize, segments, "segments stored twice");
    println!(
        "{} files FINISHED, {segments} segments, results identical to the clean run",
        done.len()
    );
    for (stage, (all, mid)) in &kills {
        assert!(*all >= 3, "{stage} killed only {all} times");
        assert!(*mid >= 1, "{stage} never killed mid-write");
    }
}
