//! Which end-to-end tests share the machine. They are one test binary, so tests of different
//! modules run at the same time (as many as libtest has threads). Most do not mind. A test
//! that injects faults (kills workers, restarts services), floods the API, or measures the
//! process (its memory) or the pipeline's pace (an ETA) would disturb or be disturbed by its
//! neighbours: it runs alone, once the tests running before it are over, and the others wait
//! for it. Every test takes its turn first thing and holds it to the end:
//! `let _turn = turns::shared().await;` or `turns::alone()`.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static MACHINE: RwLock<()> = RwLock::const_new(());

/// The turn of a test that may run beside others.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().await
}

/// The turn of a test that runs with no other test beside it. Waiting writers go first (the
/// lock is fair), so a test waiting to run alone is not starved by a stream of shared ones.
pub async fn alone() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}
