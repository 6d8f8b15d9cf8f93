//! Registering a file found on disk is idempotent: the watcher may see a file many times, and
//! several API processes may see it at once.

use futures::future::join_all;
use trd_core::store::Registration;

use crate::{fresh_store, location};

#[tokio::test]
async fn registering_a_file_again_returns_the_first_record() {
    let store = fresh_store().await;
    let Registration::Created(first) = store
        .register(&location("b", "a.wav"), 1_000, "1".repeat(32))
        .await
        .unwrap()
    else {
        panic!("the first registration creates the record");
    };
    let Registration::Exists(again) = store
        .register(&location("b", "a.wav"), 2_000, "2".repeat(32))
        .await
        .unwrap()
    else {
        panic!("the second registration finds the record");
    };
    assert_eq!(again.id, first.id);
    assert_eq!((again.size, again.md5), (1_000, "1".repeat(32)));
    let batch = location("b", "a.wav").batch;
    assert_eq!(store.list(Some(batch.as_ref())).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_create_one_record() {
    let store = fresh_store().await;
    let location = location("b", "a.wav");
    let outcomes = join_all((0..8).map(|_| store.register(&location, 1_000, "1".repeat(32)))).await;
    let outcomes: Vec<Registration> = outcomes.into_iter().map(Result::unwrap).collect();
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Registration::Created(_)))
        .count();
    assert_eq!(created, 1, "{outcomes:?}");
    let id = outcomes[0].record().id;
    assert!(outcomes.iter().all(|o| o.record().id == id), "{outcomes:?}");
}

#[tokio::test]
async fn a_superseded_record_steps_aside_for_its_successor() {
    use trd_core::workdir_files::Fingerprint;
    let store = fresh_store().await;
    let here = location("b", "a.wav");
    let old = store
        .register(&here, 1_000, "1".repeat(32))
        .await
        .unwrap()
        .record()
        .clone();
    let print = Fingerprint {
        size: 2_000,
        md5: "2".repeat(32),
        modified_ms: Some(7),
    };
    let Registration::Created(new) = store.supersede(&old, &here, print).await.unwrap() else {
        panic!("the successor is a new record");
    };
    assert_ne!(new.id, old.id);
    assert_eq!((new.size, new.mtime), (2_000, Some(7)));
    let found = store.find_by_location(&here).await.unwrap().unwrap();
    assert_eq!(found.id, new.id);
    let aside = store.audiofile(old.id).await.unwrap().unwrap();
    assert_ne!(aside.batch, old.batch);
    assert!(
        aside.warnings[0].contains(&new.id.to_hex()),
        "{:?}",
        aside.warnings
    );
    assert_eq!(
        store.list(Some(here.batch.as_ref())).await.unwrap().len(),
        1
    );
}
