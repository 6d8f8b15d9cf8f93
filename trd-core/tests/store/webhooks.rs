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
