//! Segments, the recognizers' unit of work: claimed under a lease, completed only by their
//! holder, claimed again once a holder's lease runs out; a file whose segments are all done is
//! found by the sweeper if its last recognizer died before closing it.

use mongodb::bson::oid::ObjectId;
use trd_core::domain::{Segment, SegmentStatus, Span, Stage};
use trd_core::store::SegmentOutcome;

use crate::{fresh_store, outlive_short_leases, pass_stage, running_file, TestStore, LONG, SHORT};

/// A file in recognition with three pending segments.
async fn file_with_segments(store: &TestStore) -> (ObjectId, Vec<ObjectId>) {
    let file = running_file(store, "a.wav").await;
    pass_stage(store, file, Stage::Normalize).await;
    pass_stage(store, file, Stage::Diarize).await;
    store.begin_recognition(file).await.unwrap().unwrap();
    let segments: Vec<Segment> = (0..3)
        .map(|n| {
            let start = n as f64 * 2.0;
            let span = Span {
                start,
                end: start + 1.5,
            };
            Segment::pending(file, 1, span, "S1".to_owned(), None)
        })
        .collect();
    store.replace_segments(file, &segments).await.unwrap();
    (file, segments.iter().map(|s| s.id).collect())
}

fn recognized(text: &str) -> SegmentOutcome {
    SegmentOutcome {
        status: SegmentStatus::Recognized,
        text: text.to_owned(),
        words: Vec::new(),
        score: 90,
        reason: None,
    }
}

#[tokio::test]
async fn a_segment_is_claimed_once_and_completed_only_by_its_holder() {
    let store = fresh_store().await;
    let (file, segments) = file_with_segments(&store).await;
    let id = segments[0];
    let claimed = store.claim_segment(id, "w1", LONG).await.unwrap().unwrap();
    assert_eq!(claimed.lease.unwrap().owner, "w1");
    assert!(store.claim_segment(id, "w2", LONG).await.unwrap().is_none());
    assert!(!store
        .complete_segment(id, "w2", &recognized("wrong"))
        .await
        .unwrap());
    assert!(store
        .complete_segment(id, "w1", &recognized("안녕하세요"))
        .await
        .unwrap());
    // A redelivered message completes nothing twice.
    assert!(!store
        .complete_segment(id, "w1", &recognized("again"))
        .await
        .unwrap());
    let done = store.segment(id).await.unwrap().unwrap();
    assert_eq!(done.status, SegmentStatus::Recognized);
    assert_eq!(done.text, "안녕하세요");
    assert!(done.lease.is_none());
    assert!(store.claim_segment(id, "w2", LONG).await.unwrap().is_none());
    assert_eq!(store.count_pending_segments(file).await.unwrap(), 2);
    assert_eq!(
        store.pending_segment_ids(file).await.unwrap(),
        segments[1..].to_vec()
    );
}

#[tokio::test]
async fn an_expired_or_released_segment_is_claimed_again() {
    let store = fresh_store().await;
    let (file, segments) = file_with_segments(&store).await;
    let (expiring, released) = (segments[0], segments[1]);
    store
        .claim_segment(expiring, "w1", SHORT)
        .await
        .unwrap()
        .unwrap();
    store
        .claim_segment(released, "w1", LONG)
        .await
        .unwrap()
        .unwrap();
    assert!(store.abandoned_segments().await.unwrap().is_empty());

    store.release_segment(released, "w2").await.unwrap();
    assert!(store
        .claim_segment(released, "w2", LONG)
        .await
        .unwrap()
        .is_none());
    store.release_segment(released, "w1").await.unwrap();
    assert!(store
        .claim_segment(released, "w2", LONG)
        .await
        .unwrap()
        .is_some());

    outlive_short_leases().await;
    assert_eq!(
        store.abandoned_segments().await.unwrap(),
        vec![(file, expiring)]
    );
    // Renewing does not revive a lease another worker may take; after the take-over the
    // first worker's renewal and completion change nothing.
    store
        .claim_segment(expiring, "w2", LONG)
        .await
        .unwrap()
        .unwrap();
    store
        .renew_segment_leases(&[expiring], "w1", LONG)
        .await
        .unwrap();
    let held = store.segment(expiring).await.unwrap().unwrap();
    assert_eq!(held.lease.unwrap().owner, "w2");
    assert!(!store
        .complete_segment(expiring, "w1", &recognized("late"))
        .await
        .unwrap());
    assert!(store
        .complete_segment(expiring, "w2", &recognized("on time"))
        .await
        .unwrap());
}

#[tokio::test]
async fn renewing_extends_the_holders_segment_leases() {
    let store = fresh_store().await;
    let (_, segments) = file_with_segments(&store).await;
    for id in &segments {
        store
            .claim_segment(*id, "w1", SHORT)
            .await
            .unwrap()
            .unwrap();
    }
    store
        .renew_segment_leases(&segments, "w1", LONG)
        .await
        .unwrap();
    outlive_short_leases().await;
    assert!(store.abandoned_segments().await.unwrap().is_empty());
    for id in &segments {
        assert!(store
            .claim_segment(*id, "w2", LONG)
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn a_file_whose_segments_are_all_done_is_found_for_closing() {
    let store = fresh_store().await;
    let (file, segments) = file_with_segments(&store).await;
    for id in &segments {
        store.claim_segment(*id, "w1", LONG).await.unwrap().unwrap();
        assert!(store
            .recognition_complete_but_open()
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .complete_segment(*id, "w1", &recognized("말"))
            .await
            .unwrap());
    }
    assert_eq!(
        store.recognition_complete_but_open().await.unwrap(),
        vec![file]
    );
    store.finish_recognition(file).await.unwrap().unwrap();
    assert!(store
        .recognition_complete_but_open()
        .await
        .unwrap()
        .is_empty());
}
