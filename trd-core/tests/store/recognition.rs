//! The end of recognition: when the last segments finish at the same moment on several
//! recognizers, each tries to close the file; exactly one closes it.

use futures::future::join_all;
use trd_core::domain::{Control, Stage, Status};
use trd_core::Store;

use crate::{fresh_store, pass_stage, running_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_finishers_exactly_one_closes_the_file() {
    let store = fresh_store().await;
    let id = running_file(&store, "a.wav").await;
    pass_stage(&store, id, Stage::Normalize).await;
    pass_stage(&store, id, Stage::Diarize).await;
    // Not before recognition has begun.
    assert!(store.finish_recognition(id).await.unwrap().is_none());
    let recognizing = store.begin_recognition(id).await.unwrap().unwrap();
    assert_eq!(recognizing.status, Status::Recognizing);

    let tasks = (0..16).map(|_| {
        let store = Store::clone(&store);
        tokio::spawn(async move { store.finish_recognition(id).await.unwrap() })
    });
    let closed: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .filter_map(Result::unwrap)
        .collect();
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(
        (closed[0].control, closed[0].status),
        (Control::Finished, Status::Recognized)
    );
    let record = store.audiofile(id).await.unwrap().unwrap();
    assert_eq!(
        (record.control, record.status),
        (Control::Finished, Status::Recognized)
    );
    assert!(store.finish_recognition(id).await.unwrap().is_none());
}
