//! Watches the work directory and registers files once they are complete. File-system events
//! make registration prompt; a periodic rescan makes it certain (network mounts deliver no
//! events). A file counts as complete when its size has not changed for `settle_ms`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use trd_core::domain::FileLocation;
use trd_core::{Settings, Store};

use crate::registry::{register_path, RegisterError};

struct Candidate {
    size: u64,
    stable_since: Instant,
}

pub async fn watch(store: Store, settings: std::sync::Arc<Settings>, shutdown: CancellationToken) {
    let workdir = settings.workdir.clone();
    let settle = Duration::from_millis(settings.settle_ms);
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let events_tx = tx.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !may_change_a_file(&event.kind) {
                return;
            }
            for path in event.paths {
                let _ = events_tx.send(path);
            }
        }
    });
    // Keep the watcher alive for the life of this task; without events the rescan still works.
    let _watcher = match watcher {
        Ok(mut w) => match w.watch(&workdir, RecursiveMode::Recursive) {
            Ok(()) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "file-system events unavailable; relying on rescans");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "file-system events unavailable; relying on rescans");
            None
        }
    };
    let mut candidates: HashMap<PathBuf, Candidate> = HashMap::new();
    // Paths known to have a record, with their size and time then: rescans skip them while
    // those stay the same, instead of asking the database again; a rewritten file is seen.
    let mut registered: HashMap<PathBuf, Option<Seen>> = HashMap::new();
    let mut rescan =
        tokio::time::interval(Duration::from_millis(settings.rescan_interval_ms.max(100)));
    let mut settle_tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            Some(path) = rx.recv() => {
                // An event may mean the file was replaced: look at it again.
                registered.remove(&path);
                note(&mut candidates, &workdir, path);
            }
            _ = rescan.tick() => {
                let root = workdir.clone();
                if let Ok(paths) = tokio::task::spawn_blocking(move || list_files(&root)).await {
                    let changed = |p: &PathBuf| registered.get(p).is_none_or(|then| *then != seen(p));
                    for path in paths.into_iter().filter(changed) {
                        note(&mut candidates, &workdir, path);
                    }
                }
            }
            _ = settle_tick.tick() => {
                let ready = settled(&mut candidates, settle);
                for path in ready {
                    match register_path(&store, &workdir, &path).await {
                        Ok(_) => {
                            let now = seen(&path);
                            registered.insert(path, now);
                        }
                        Err(e @ RegisterError::Refused(_)) => {
                            // Not retried until the path changes (an event brings it back).
                            tracing::warn!(path = %path.display(), error = %e, "not registered");
                            let now = seen(&path);
                            registered.insert(path, now);
                        }
                        Err(e) => tracing::warn!(path = %path.display(), error = %e, "registration failed; will retry"),
                    }
                }
            }
        }
    }
}

/// Whether an event can mean a file's content changed. Opening or reading a file cannot, and
/// the service opens files all the time (registration itself reads a file to hash it, the
/// normalizer decodes it): taken as changes, those events sent every file just registered
/// back to registration, which opened it again, for as long as the service ran.
fn may_change_a_file(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// A path's size and modification time, as a rescan compares them.
type Seen = (u64, Option<i64>);

fn seen(path: &Path) -> Option<Seen> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some((meta.len(), trd_core::workdir_files::modified_ms(&meta)))
}

fn note(candidates: &mut HashMap<PathBuf, Candidate>, workdir: &Path, path: PathBuf) {
    // The path's own type: a link is not followed (registration refuses it).
    let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    if FileLocation::from_path(workdir, &path).is_none() || !is_file {
        return;
    }
    candidates.entry(path).or_insert(Candidate {
        size: u64::MAX,
        stable_since: Instant::now(),
    });
}

/// Paths whose size stayed the same for `settle`; they leave the candidate set (a failed
/// registration comes back with the next rescan).
fn settled(candidates: &mut HashMap<PathBuf, Candidate>, settle: Duration) -> Vec<PathBuf> {
    let now = Instant::now();
    let mut ready = Vec::new();
    candidates.retain(|path, c| {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return false;
        };
        if meta.len() != c.size {
            c.size = meta.len();
            c.stable_since = now;
            return true;
        }
        // An empty file that stays empty is registered too: a recorder's empty export
        // becomes a record that fails with its reason, not a file nobody hears of.
        if now.duration_since(c.stable_since) >= settle {
            ready.push(path.clone());
            return false;
        }
        true
    });
    ready
}

pub fn list_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => out.push(entry.path()),
                _ => {}
            }
        }
    }
    out
}
