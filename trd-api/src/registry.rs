//! Registering files found in the work directory: size and MD5 computed while streaming the
//! file, then one insert that the (batch, filename) unique index makes idempotent.

use std::io::Read;
use std::path::Path;

use trd_core::domain::FileLocation;
use trd_core::store::{Registration, StoreError};
use trd_core::Store;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("'{0}' is not a valid file location inside the work directory")]
    InvalidLocation(String),
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
    register_at(store, &location, path).await
}

/// Registers the file at `path` as `location` (which may be in a private batch, which no
/// path found by the watcher names).
pub async fn register_at(
    store: &Store,
    location: &FileLocation,
    path: &Path,
) -> Result<Registration, RegisterError> {
    if let Some(existing) = store.find_by_location(location).await? {
        return Ok(Registration::Exists(existing));
    }
    let owned = path.to_path_buf();
    let (size, md5) = tokio::task::spawn_blocking(move || hash_file(&owned))
        .await
        .map_err(|e| RegisterError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })?
        .map_err(|source| RegisterError::Io {
            path: path.display().to_string(),
            source,
        })?;
    let registration = store.register(location, size, md5).await?;
    if let Registration::Created(r) = &registration {
        tracing::info!(file = %r.id, batch = ?r.batch, filename = %r.filename, control = %r.control, status = %r.status, "registered");
    }
    Ok(registration)
}

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut context = md5::Context::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        context.consume(&buffer[..n]);
        size += n as u64;
    }
    Ok((size, format!("{:x}", context.finalize())))
}
