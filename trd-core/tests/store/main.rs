//! The store's transitions against a real MongoDB — the protocol every worker follows (claim,
//! renew, complete, fail, release; leases that expire), with no RabbitMQ and no Vosk. The
//! server is `$TRD_TEST_MONGODB_URI` (`scripts/test` starts one); each test gets its own
//! database, dropped when it ends.

mod recognition;
mod registration;
mod segments;
mod stages;
mod webhooks;

use std::ops::Deref;
use std::time::Duration;

use mongodb::bson::oid::ObjectId;
use trd_core::domain::{BatchName, FileLocation, FileName, Stage, StartOptions};
use trd_core::store::{Registration, StartOutcome};
use trd_core::{Settings, Store};

/// A lease long enough never to expire during a test.
const LONG: Duration = Duration::from_secs(600);

/// A lease a test lets run out (long enough that it does not run out on a busy machine before
/// the test has checked it is held).
const SHORT: Duration = Duration::from_secs(1);

/// Waits until a [`SHORT`] lease taken before has run out.
pub async fn outlive_short_leases() {
    tokio::time::sleep(SHORT + Duration::from_millis(300)).await;
}

/// A store on a database of its own, dropped with it.
pub struct TestStore {
    store: Store,
    settings: Settings,
}

impl Deref for TestStore {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

pub async fn fresh_store() -> TestStore {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let settings = Settings {
        mongodb_uri: std::env::var("TRD_TEST_MONGODB_URI")
            .unwrap_or_else(|_| "mongodb://127.0.0.1:27117".into()),
        database: format!("trd_store_{tag}"),
        ..Settings::default()
    };
    let store = Store::connect(&settings)
        .await
        .expect("MongoDB (is it running? use scripts/test)");
    TestStore { store, settings }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        // On a runtime of its own: the test's runtime may be a single thread, busy dropping us.
        let Settings {
            mongodb_uri,
            database,
            ..
        } = self.settings.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime");
            runtime.block_on(async {
                if let Ok(client) = mongodb::Client::with_uri_str(&mongodb_uri).await {
                    let _ = client.database(&database).drop().await;
                }
            });
        })
        .join();
    }
}

pub fn location(batch: &str, filename: &str) -> FileLocation {
    FileLocation {
        batch: Some(BatchName::parse(batch).unwrap()),
        filename: FileName::parse(filename).unwrap(),
    }
}

/// A newly registered file, started: RUNNING and waiting for normalization.
pub async fn running_file(store: &Store, filename: &str) -> ObjectId {
    let Registration::Created(record) = store
        .register(&location("batch", filename), 1_000, "0".repeat(32))
        .await
        .unwrap()
    else {
        panic!("{filename} was registered already");
    };
    match store
        .start(record.id, &StartOptions::default())
        .await
        .unwrap()
    {
        StartOutcome::Started(_) => record.id,
        other => panic!("the start was refused: {other:?}"),
    }
}

/// Takes a running file through `stage`, as a worker would.
pub async fn pass_stage(store: &Store, id: ObjectId, stage: Stage) {
    store
        .claim_stage(id, stage, "passer", LONG)
        .await
        .unwrap()
        .expect("the stage can be claimed");
    store
        .complete_stage(id, stage, "passer", mongodb::bson::Document::new())
        .await
        .unwrap()
        .expect("the stage completes");
}
