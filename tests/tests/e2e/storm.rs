//! Reliability acceptance 3: a storm of concurrent clients issuing random start, stop, reset
//! and delete calls on one batch while the worker processes run. Afterwards every record is in
//! a legal state, no segments or stored PCM belong to a record that no longer exists, and a
//! final start finishes every file.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Document};
use serde_json::Value;
use trd_core::domain::Status;
use trd_tests::app::{spawn_app_with, TestApp, Workers};
use trd_tests::data;

const CLIENTS: usize = 8;
const STORM: Duration = Duration::from_secs(30);

/// A small deterministic generator, seeded per client so a failing run can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

async fn ids_in(app: &TestApp, collection: &str) -> HashSet<ObjectId> {
    let docs: Vec<Document> = app
        .store
        .database()
        .collection::<Document>(collection)
        .find(doc! {})
        .projection(doc! {"audiofile_id": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    docs.iter()
        .filter_map(|d| d.get_object_id("audiofile_id").ok())
        .collect()
}

fn legal(record: &Value) -> Result<(), String> {
    let control = record["control"].as_str().unwrap_or("");
    let status = record["status"].as_str().unwrap_or("");
    if !Status::ALL.iter().any(|s| s.as_str() == status) {
        return Err(format!("unknown status {status}"));
    }
    match control {
        "IDLE" if status == "INITIAL" => Ok(()),
        "RUNNING" | "PAUSED" if status != "RECOGNIZED" => Ok(()),
        "FINISHED" if status == "RECOGNIZED" => Ok(()),
        "FAILED"
            if record["error"]["reason"]
                .as_str()
                .is_some_and(|r| !r.is_empty()) =>
        {
            Ok(())
        }
        _ => Err(format!("{control}/{status} is not a legal state")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_random_controls_leave_legal_states_and_no_orphans() {
    let _turn = trd_tests::turns::alone().await;
    let app = Arc::new(spawn_app_with(Workers::Processes, |s| s.lease_seconds = 6).await);
    let files: Vec<_> = data::references("ko/zeroth-104")
        .keys()
        .take(8)
        .map(|f| data::path("ko/zeroth-104").join(f))
        .collect();
    app.copy_into_batch("storm", &files);
    app.wait_registered("storm", files.len()).await;

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("storm seed {seed}");
    let outcomes: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let deadline = Instant::now() + STORM;
    let clients: Vec<_> = (0..CLIENTS as u64)
        .map(|c| {
            let app = app.clone();
            let outcomes = outcomes.clone();
            tokio::spawn(async move {
                let mut rng = XorShift(seed.wrapping_mul(c * 2 + 1) | 1);
                let mut errors = Vec::new();
                while Instant::now() < deadline {
                    let list = app.get_ok("/trd/audiofile/list/batch/storm").await;
                    let records = list.as_array().cloned().unwrap_or_default();
                    // Deleted records stay deleted until someone registers the file again.
                    let (op, path) = match (rng.below(13), records.is_empty()) {
                        (0, _) => (
                            "start-batch",
                            "/trd/transcription/start/batch/storm".to_owned(),
                        ),
                        (1, _) => (
                            "stop-batch",
                            "/trd/transcription/stop/batch/storm".to_owned(),
                        ),
                        (2, _) | (_, true) => (
                            "create-batch",
                            "/trd/audiofile/create/batch/storm".to_owned(),
                        ),
                        (n, false) => {
                            let id = records[rng.below(records.len())]["_id"]
                                .as_str()
                                .unwrap()
                                .to_owned();
                            match n {
                                3..=6 => {
                                    ("start", format!("/trd/transcription/start/audiofile/{id}"))
                                }
                                7..=9 => {
                                    ("stop", format!("/trd/transcription/stop/audiofile/{id}"))
                                }
                                10 | 11 => {
                                    ("reset", format!("/trd/transcription/reset/audiofile/{id}"))
                                }
                                _ => ("delete", format!("/trd/audiofile/delete/{id}")),
                            }
                        }
                    };
                    let request = if op == "delete" {
                        app.http.delete(app.url(&path))
                    } else {
                        app.http.get(app.url(&path))
                    };
                    let response = tokio::time::timeout(Duration::from_secs(20), request.send())
                        .await
                        .expect("the API answers within 20 s")
                        .expect("the API answers");
                    let code = response.status().as_u16();
                    if code >= 500 {
                        errors.push(format!(
                            "{code} for {op} {path}: {}",
                            response.text().await.unwrap_or_default()
                        ));
                    }
                    *outcomes
                        .lock()
                        .unwrap()
                        .entry(format!("{op} {code}"))
                        .or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(rng.below(150) as u64)).await;
                }
                errors
            })
        })
        .collect();
    let mut errors = Vec::new();
    for client in clients {
        errors.extend(client.await.unwrap());
    }
    let outcomes = outcomes.lock().unwrap().clone();
    println!(
        "storm: {} requests from {CLIENTS} clients: {outcomes:?}",
        outcomes.values().sum::<usize>()
    );
    assert!(errors.is_empty(), "server errors:\n{}", errors.join("\n"));
    // A storm in which every call was refused would prove nothing: each kind of transition
    // must have happened, several times for those on single files.
    let succeeded = |op: &str| -> usize {
        outcomes
            .iter()
            .filter(|(k, _)| {
                k.rsplit_once(' ')
                    .is_some_and(|(o, code)| o == op && code.starts_with('2'))
            })
            .map(|(_, n)| n)
            .sum()
    };
    for (op, least) in [
        ("start", 10),
        ("stop", 5),
        ("reset", 5),
        ("delete", 3),
        ("start-batch", 1),
        ("stop-batch", 1),
        ("create-batch", 1),
    ] {
        assert!(
            succeeded(op) >= least,
            "only {} successful {op} calls (at least {least} expected): {outcomes:?}",
            succeeded(op)
        );
    }

    // Right after the storm: every record is in a legal state.
    app.get_ok("/trd/audiofile/create/batch/storm").await;
    app.wait_registered("storm", files.len()).await;
    let list = app.get_ok("/trd/audiofile/list/batch/storm").await;
    let records = list.as_array().unwrap();
    let census: BTreeMap<String, usize> = records.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(format!(
            "{}/{}",
            r["control"].as_str().unwrap(),
            r["status"].as_str().unwrap()
        ))
        .or_default() += 1;
        m
    });
    println!("after the storm: {census:?}");
    for r in records {
        legal(r).unwrap_or_else(|e| panic!("{e}: {r}"));
    }

    // A final start finishes every file.
    app.get_ok("/trd/transcription/start/batch/storm").await;
    let done = app.wait_batch_done("storm", Duration::from_secs(300)).await;
    assert_eq!(done.len(), files.len());
    for record in &done {
        assert_eq!(record["control"], "FINISHED", "{record}");
        let id = ObjectId::parse_str(record["_id"].as_str().unwrap()).unwrap();
        let segments = app.store.segments_of(id).await.unwrap();
        assert_eq!(
            segments.len() as i64,
            record["total_segments"].as_i64().unwrap(),
            "{record}"
        );
    }

    // No segments or PCM of records that are gone (work for deleted or reset files is
    // discarded, including what was in flight during the storm).
    let live: HashSet<ObjectId> = done
        .iter()
        .map(|r| ObjectId::parse_str(r["_id"].as_str().unwrap()).unwrap())
        .collect();
    let settle = Instant::now() + Duration::from_secs(30);
    let orphans = loop {
        let mut orphans: Vec<String> = Vec::new();
        for collection in ["segments", "pcm_chunks"] {
            for id in ids_in(&app, collection).await {
                if !live.contains(&id) {
                    orphans.push(format!("{collection} of {id}"));
                }
            }
        }
        if orphans.is_empty() || Instant::now() > settle {
            break orphans;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(orphans.is_empty(), "orphans: {orphans:?}");
}
