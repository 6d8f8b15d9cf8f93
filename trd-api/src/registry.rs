//! Registering files found in the work directory: size and MD5 computed while streaming the
//! file, then one insert that the (batch, filename) unique index makes idempotent.

use std::io::Read;
use std::path::Path;

use trd_core::domain::FileLocation;
use trd_core::store::{Registration, StoreError};
use trd_core::workdir_files::{open_regular, WorkdirFileError};
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
    if let Some(existing) = store.find_by_location(location).await? {
        return Ok(Registration::Exists(existing));
    }
    let path = location.path_in(workdir);
    let (root, owned) = (workdir.to_path_buf(), path.clone());
    let (size, md5) = tokio::task::spawn_blocking(move || hash_file(&root, &owned))
        .await
        .map_err(|e| RegisterError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?
        .map_err(|e| match e {
            WorkdirFileError::Io { path, source } => RegisterError::Io { path, source },
            refused => RegisterError::Refused(refused),
        })?;
    let registration = store.register(location, size, md5).await?;
    if let Registration::Created(r) = &registration {
        tracing::info!(file = %r.id, batch = ?r.batch, filename = %r.filename, control = %r.control, status = %r.status, "registered");
    }
    Ok(registration)
}

/// Size and MD5 of the file, opened without following a link out of `workdir`.
fn hash_file(workdir: &Path, path: &Path) -> Result<(u64, String), WorkdirFileError> {
    let mut file = open_regular(workdir, path)?;
    let mut context = md5::Context::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|source| WorkdirFileError::Io {
                path: path.display().to_string(),
                source,
            })?;
        if n == 0 {
            break;
        }
        context.consume(&buffer[..n]);
        size += n as u64;
    }
    Ok((size, format!("{:x}", context.finalize())))
}
