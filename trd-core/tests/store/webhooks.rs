//! The webhook outbox: deliveries are claimed per target, so a sender that skips busy targets
//! leaves their deliveries pending and due, neither lost nor leased to no one.

use std::time::Duration;

use trd_core::store::webhooks::{DeliveryState, Event};

use crate::{fresh_store, running_file, LONG};

#[tokio::test]
async fn deliveries_to_busy_targets_stay_pending_until_their_target_is_free() {
    let store = fresh_store().await;
    let id = running_file(&store, "a.wav").await;
    let mut record = store.audiofile(id).await.unwrap().unwrap();
    record.options.webhooks = vec![
        "http://slow.example:8080/a".into(),
        "http://slow.example:8080/b".into(),
        "http://GOOD.example/hook".into(),
    ];
    store
        .enqueue_webhooks(&record, Event::Deleted, None)
        .await
        .unwrap();

    let slow = "slow.example:8080".to_owned();
    let good = "good.example:80".to_owned();
    let first = store.claim_due_delivery(LONG, &[]).await.unwrap().unwrap();
    let claimed = if first.target == slow {
        // The slow target is now busy: only the good one's delivery may be claimed.
        let second = store
            .claim_due_delivery(LONG, std::slice::from_ref(&slow))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.target, good);
        vec![first, second]
    } else {
        assert_eq!(first.target, good);
        vec![first]
    };
    assert!(store
        .claim_due_delivery(LONG, &[slow.clone(), good.clone()])
        .await
        .unwrap()
        .is_none());

    // What was skipped is untouched: pending, unleased, due; claimable once the target frees.
    let skipped: Vec<_> = store
        .deliveries_of(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| claimed.iter().all(|c| c.id != d.id))
        .collect();
    assert!(!skipped.is_empty());
    for d in &skipped {
        assert_eq!(d.state, DeliveryState::Pending);
        assert_eq!(d.lease_until, None);
        assert_eq!(d.attempts, 0);
    }
    let mut later = Vec::new();
    while let Some(d) = store
        .claim_due_delivery(LONG, std::slice::from_ref(&good))
        .await
        .unwrap()
    {
        later.push(d.id);
    }
    let mut expected: Vec<_> = skipped.iter().map(|d| d.id).collect();
    expected.sort();
    later.sort();
    assert_eq!(
        later, expected,
        "each skipped delivery claimed exactly once"
    );

    // A claimed delivery is not claimed again while its lease runs.
    let attempt = store
        .record_delivery_attempt(&claimed[0], "HTTP 500".into(), false, 3, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(attempt, DeliveryState::Pending);
    let again = store.claim_due_delivery(LONG, &[]).await.unwrap().unwrap();
    assert_eq!(again.id, claimed[0].id);
    assert!(store.claim_due_delivery(LONG, &[]).await.unwrap().is_none());
}

/// The sweep that turns ended files into deliveries reads only the files flagged at their
/// start (its index keeps it from reading every ended file of every batch twice a second): a
/// file started with webhooks is queued once it ends, once only; a file started without is
/// never queued; a record from before the flag is flagged by the backfill the delivery loop
/// runs as it starts, unless it was marked as queued already.
#[tokio::test]
async fn only_files_started_with_webhooks_are_queued_when_they_end_and_only_once() {
    use mongodb::bson::{doc, Document};
    use trd_core::domain::StartOptions;
    use trd_core::store::{Registration, StartOutcome};

    let store = fresh_store().await;
    let files = store.database().collection::<Document>("audiofiles");
    let start = |name: &'static str, webhooks: Vec<String>| {
        let store = &store;
        async move {
            let Registration::Created(record) = store
                .register(&crate::location("batch", name), 1_000, "0".repeat(32))
                .await
                .unwrap()
            else {
                panic!("{name} was registered already")
            };
            let options = StartOptions {
                webhooks,
                ..StartOptions::default()
            };
            let StartOutcome::Started(_) = store.start(record.id, &options).await.unwrap() else {
                panic!("{name} did not start")
            };
            record.id
        }
    };
    let end = |id| {
        let files = files.clone();
        async move {
            files
                .update_one(doc! {"_id": id}, doc! {"$set": {"control": "FINISHED"}})
                .await
                .unwrap();
        }
    };
    let hook = "http://127.0.0.1:9/hook".to_owned();
    let with = start("with.wav", vec![hook.clone()]).await;
    let without = start("without.wav", Vec::new()).await;
    let still_running = start("running.wav", vec![hook.clone()]).await;
    end(with).await;
    end(without).await;

    for _ in 0..2 {
        store.enqueue_ended_webhooks().await.unwrap();
    }
    assert_eq!(store.deliveries_of(with).await.unwrap().len(), 1);
    assert!(store.deliveries_of(without).await.unwrap().is_empty());
    assert!(store.deliveries_of(still_running).await.unwrap().is_empty());
    let due = |id| {
        let files = files.clone();
        async move {
            let record = files.find_one(doc! {"_id": id}).await.unwrap().unwrap();
            record.get_bool("webhooks_due").ok()
        }
    };
    assert_eq!(due(with).await, Some(false), "queued: no longer due");
    assert_eq!(due(without).await, Some(false));
    assert_eq!(due(still_running).await, Some(true));

    // Records as a version without the flag left them: one whose webhooks were still to be
    // queued, one already queued.
    let legacy_due = start("legacy-due.wav", vec![hook.clone()]).await;
    let legacy_sent = start("legacy-sent.wav", vec![hook.clone()]).await;
    for (id, queued) in [(legacy_due, false), (legacy_sent, true)] {
        let mut set = doc! {"control": "FINISHED"};
        if queued {
            set.insert("webhooks_enqueued", true);
        }
        files
            .update_one(
                doc! {"_id": id},
                doc! {"$set": set, "$unset": {"webhooks_due": ""}},
            )
            .await
            .unwrap();
    }
    store.enqueue_ended_webhooks().await.unwrap();
    assert!(
        store.deliveries_of(legacy_due).await.unwrap().is_empty(),
        "not flagged yet"
    );
    assert_eq!(store.backfill_webhooks_due().await.unwrap(), 1);
    store.enqueue_ended_webhooks().await.unwrap();
    assert_eq!(store.deliveries_of(legacy_due).await.unwrap().len(), 1);
    assert!(store.deliveries_of(legacy_sent).await.unwrap().is_empty());
}
