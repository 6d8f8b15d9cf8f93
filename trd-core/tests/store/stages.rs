//! A file's stages (normalize, diarize): one worker at a time holds a file through a lease it
//! renews; only the holder may complete, fail or release it; a lease that runs out lets
//! another worker take the file over.

use std::time::Duration;

use futures::future::join_all;
use mongodb::bson::doc;
use trd_core::domain::{Control, Stage, Status};
use trd_core::Store;

use crate::{fresh_store, outlive_short_leases, pass_stage, running_file, LONG, SHORT};

#[tokio::test]
async fn only_a_running_file_is_claimed() {
    let store = fresh_store().await;
    let id = running_file(&store, "a.wav").await;
    store.stop(id).await.unwrap();
    assert!(store
        .claim_stage(id, Stage::Normalize, "w1", LONG)
        .await
        .unwrap()
        .is_none());
    // A file waiting for normalization is not ready for diarization.
    let other = running_file(&store, "b.wav").await;
    assert!(store
        .claim_stage(other, Stage::Diarize, "w1", LONG)
        .await
        .unwrap()
        .is_none());
    let claimed = store
        .claim_stage(other, Stage::Normalize, "w1", LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.status, Status::Normalizing);
    assert_eq!(claimed.lease.unwrap().owner, "w1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_claims_exactly_one_wins() {
    let store = fresh_store().await;
    let id = running_file(&store, "a.wav").await;
    let tasks = (0..8).map(|n| {
        let store = Store::clone(&store);
        tokio::spawn(async move {
            let owner = format!("w{n}");
            let claimed = store.claim_stage(id, Stage::Normalize, &owner, LONG).await;
            claimed.unwrap().map(|_| owner)
        })
    });
    let winners: Vec<String> = join_all(tasks)
        .await
        .into_iter()
        .filter_map(Result::unwrap)
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let record = store.audiofile(id).await.unwrap().unwrap();
    assert_eq!(record.lease.unwrap().owner, winners[0]);
}

#[tokio::test]
async fn only_the_holder_renews_its_lease() {
    let store = fresh_store().await;
    let id = running_file(&store, "a.wav").await;
    let claimed = store
        .claim_stage(id, Stage::Normalize, "w1", Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    let until = claimed.lease.unwrap().until;
    assert!(store.renew_lease(id, "w1", LONG).await.unwrap());
    let renewed = store.audiofile(id).await.unwrap().unwrap().lease.unwrap();
    assert!(
        renewed.until > until,
        "{renewed:?} is not later than {until}"
    );
    assert!(!store.renew_lease(id, "w2", LONG).await.unwrap());
    assert_eq!(
        store.audiofile(id).await.unwrap().unwrap().lease.unwrap(),
        renewed
    );
}

#[tokio::test]
async fn only_the_holder_completes_and_the_next_stage_is_then_ready() {
    let store = fresh_store().await;
    let id = running_file(&store, "a.wav").await;
    store
        .claim_stage(id, Stage::Normalize, "w1", LONG)
        .await
        .unwrap()
        .unwrap();
    let results = doc! {"total_speech": 1.5};
    assert!(store
        .complete_stage(id, Stage::Normalize, "w2", results.clone())
        .await
        .unwrap()
        .is_none());
    let done = store
        .complete_stage(id, Stage::Normalize, "w1", results.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (done.control, done.status),
        (Control::Running, Status::Normalized)
    );
    assert_eq!(done.total_speech, Some(1.5));
    assert!(done.lease.is_none());
    // Completing twice (a redelivered message) changes nothing.
    assert!(store
        .complete_stage(id, Stage::Normalize, "w1", results)
        .await
        .unwrap()
        .is_none());
    let diarizing = store
        .claim_stage(id, Stage::Diarize, "w2", LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(diarizing.status, Status::Diarizing);
}

#[tokio::test]
async fn only_the_holder_fails_a_file_and_a_failed_file_stays_failed() {
    let store = fresh_store().await;
    let id = running_file(&store, "a.wav").await;
    pass_stage(&store, id, Stage::Normalize).await;
    store
        .claim_stage(id, Stage::Diarize, "w1", LONG)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .fail(id, Status::Diarizing, "not audio", Some("w2"))
        .await
        .unwrap()
        .is_none());
    let failed = store
        .fail(id, Status::Diarizing, "not audio", Some("w1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.control, Control::Failed);
    let error = failed.error.unwrap();
    assert_eq!(
        (error.stage, error.reason.as_str()),
        (Status::Diarizing, "not audio")
    );
    assert!(failed.lease.is_none());
    assert!(store
        .fail(id, Status::Diarizing, "again", None)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .claim_stage(id, Stage::Diarize, "w2", LONG)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_released_file_is_claimed_again_at_once() {
    let store = fresh_store().await;
    let id = running_file(&store, "a.wav").await;
    store
        .claim_stage(id, Stage::Normalize, "w1", LONG)
        .await
        .unwrap()
        .unwrap();
    // Only the holder's release counts.
    store.release_stage(id, "w2").await.unwrap();
    assert!(store
        .claim_stage(id, Stage::Normalize, "w3", LONG)
        .await
        .unwrap()
        .is_none());
    store.release_stage(id, "w1").await.unwrap();
    let released = store.audiofile(id).await.unwrap().unwrap();
    assert_eq!(released.status, Status::Normalizing);
    assert!(released.lease.is_none());
    let taken = store
        .claim_stage(id, Stage::Normalize, "w3", LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.lease.unwrap().owner, "w3");
    assert!(!store.renew_lease(id, "w1", LONG).await.unwrap());
}

#[tokio::test]
async fn an_expired_lease_lets_another_worker_take_the_file_over() {
    let store = fresh_store().await;
    let id = running_file(&store, "a.wav").await;
    store
        .claim_stage(id, Stage::Normalize, "w1", SHORT)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .claim_stage(id, Stage::Normalize, "w2", LONG)
        .await
        .unwrap()
        .is_none());
    assert!(!store
        .abandoned_in_stage(Stage::Normalize)
        .await
        .unwrap()
        .contains(&id));
    outlive_short_leases().await;
    assert_eq!(
        store.abandoned_in_stage(Stage::Normalize).await.unwrap(),
        vec![id]
    );
    let taken = store
        .claim_stage(id, Stage::Normalize, "w2", LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.lease.unwrap().owner, "w2");
    // The first worker learns it lost the file and can commit nothing.
    assert!(!store.renew_lease(id, "w1", LONG).await.unwrap());
    assert!(store
        .complete_stage(id, Stage::Normalize, "w1", doc! {})
        .await
        .unwrap()
        .is_none());
    assert!(store
        .complete_stage(id, Stage::Normalize, "w2", doc! {})
        .await
        .unwrap()
        .is_some());
}

/// What a stage checks before it deletes or replaces what it stores for a file: a lease that
/// ran out is nobody's, and once another worker took the file over only that one holds it, so
/// a stalled attempt can never wipe the work of the one that took over.
#[tokio::test]
async fn a_lease_that_ran_out_is_held_by_whoever_took_the_file_over() {
    let store = fresh_store().await;
    let id = running_file(&store, "a.wav").await;
    store
        .claim_stage(id, Stage::Normalize, "stalled/1", SHORT)
        .await
        .unwrap()
        .unwrap();
    assert!(store.holds_lease(id, "stalled/1").await.unwrap());
    assert!(!store.holds_lease(id, "stalled/2").await.unwrap());
    outlive_short_leases().await;
    assert!(!store.holds_lease(id, "stalled/1").await.unwrap());
    store
        .claim_stage(id, Stage::Normalize, "other/1", LONG)
        .await
        .unwrap()
        .expect("the file is taken over");
    assert!(store.holds_lease(id, "other/1").await.unwrap());
    assert!(!store.holds_lease(id, "stalled/1").await.unwrap());
    // Nor can the stalled attempt renew or commit once it wakes.
    assert!(!store.renew_lease(id, "stalled/1", LONG).await.unwrap());
    assert!(store
        .complete_stage(id, Stage::Normalize, "stalled/1", doc! {})
        .await
        .unwrap()
        .is_none());
}
