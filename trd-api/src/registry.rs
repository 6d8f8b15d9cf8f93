//! Registering files found in the work directory: size and MD5 computed while streaming the
//! file, then one insert that the (batch, filename) unique index makes idempotent. A file
//! registered before is read again only when its size or modification time changed; if its
//! content did too (recorders reuse names), it becomes a new record and the old one steps
//! aside with its results.

use std::path::Path;

use mongodb::bson::oid::ObjectId;
use trd_core::domain::FileLocation;
use trd_core::store::{Registration, StoreError};
use trd_core::workdir_files::{open_regular, Fingerprint, WorkdirFileError};
use trd_core::Store;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("'{0}' is not a valid file location inside the work directory")]
    InvalidLocation(String),
    /// A link out of the work directory, or not a regular file: never registered.
    #[error(transparent)]
    Refused(WorkdirFileError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Registers the file at `path` (inside `workdir`) unless a record for it exists already.
pub async fn register_path(
    store: &Store,
    workdir: &Path,
    path: &Path,
) -> Result<Registration, RegisterError> {
    let location = FileLocation::from_path(workdir, path)
        .ok_or_else(|| RegisterError::InvalidLocation(path.display().to_string()))?;
    register_at(store, workdir, &location).await
}

/// Registers the file at `location` in `workdir` (which may be in a private batch, which no
/// path found by the watcher names).
pub async fn register_at(
    store: &Store,
    workdir: &Path,
    location: &FileLocation,
) -> Result<Registration, RegisterError> {
    let path = location.path_in(workdir);
    let existing = store.find_by_location(location).await?;
    if let Some(existing) = &existing {
        // Unchanged, or gone (the record stays as it was): nothing more to learn.
        let (root, owned) = (workdir.to_path_buf(), path.clone());
        let meta = tokio::task::spawn_blocking(move || {
            open_regular(&root, &owned).and_then(|f| {
                f.metadata().map_err(|source| WorkdirFileError::Io {
                    path: owned.display().to_string(),
                    source,
                })
            })
        })
        .await;
        if !matches!(meta, Ok(Ok(meta)) if existing.may_differ_from(&meta)) {
            return Ok(Registration::Exists(existing.clone()));
        }
    }
    let (root, owned) = (workdir.to_path_buf(), path.clone());
    let print = tokio::task::spawn_blocking(move || read_file(&root, &owned))
        .await
        .map_err(|e| RegisterError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?
        .map_err(|e| match e {
            WorkdirFileError::Io { path, source } => RegisterError::Io { path, source },
            refused => RegisterError::Refused(refused),
        })?;
    let registration = match existing {
        None => store.register_as(ObjectId::new(), location, print).await?,
        Some(old) if old.md5 == print.md5 && old.size as u64 == print.size => {
            // Touched, not changed: remember the new time so it is not read again.
            store.note_modified(old.id, print.modified_ms).await?;
            Registration::Exists(old)
        }
        Some(old) => {
            let new = store.supersede(&old, location, print).await?;
            tracing::warn!(file = %old.id, successor = %new.record().id, batch = ?old.batch, filename = %old.filename, "the file changed on disk after registration: registered again as a new record");
            new
        }
    };
    if let Registration::Created(r) = &registration {
        tracing::info!(file = %r.id, batch = ?r.batch, filename = %r.filename, control = %r.control, status = %r.status, "registered");
    }
    Ok(registration)
}

/// The file's fingerprint, opened without following a link out of `workdir`.
fn read_file(workdir: &Path, path: &Path) -> Result<Fingerprint, WorkdirFileError> {
    let mut file = open_regular(workdir, path)?;
    Fingerprint::of(&mut file).map_err(|source| WorkdirFileError::Io {
        path: path.display().to_string(),
        source,
    })
}
