//! Secrets: API keys as handed out and as stored, digests, and the secret files the service
//! generates for itself under `state_dir`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mongodb::bson::oid::ObjectId;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every key starts with this, so a leaked key is recognisable (secret scanners, logs).
const KEY_PREFIX: &str = "trd_";

/// 32 random bytes, hex: a key's secret part, a refresh token, a generated signing key.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Hex SHA-256: how key secrets and refresh tokens are stored.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equality that takes the same time wherever the strings differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// An API key as the client presents it: `trd_<id>_<secret>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    pub id: ObjectId,
    pub secret: String,
}

impl PresentedKey {
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(KEY_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let id = ObjectId::parse_str(id).ok()?;
        (secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self {
            id,
            secret: secret.to_owned(),
        })
    }

    /// A new key: its id, and the whole key to show once.
    pub fn generate() -> (Self, String) {
        let key = Self {
            id: ObjectId::new(),
            secret: random_secret(),
        };
        let text = format!("{KEY_PREFIX}{}_{}", key.id.to_hex(), key.secret);
        (key, text)
    }
}

/// Generated secrets are this long (hex of 32 random bytes); a kept one shorter than
/// [`MIN_KEPT_SECRET`] was damaged or edited by hand, and is refused.
pub const MIN_KEPT_SECRET: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("secret file {path}: cannot {action}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret file {0}: shorter than {MIN_KEPT_SECRET} characters; delete it to have a new one generated")]
    TooShort(PathBuf),
}

/// Reads the secret the service keeps in `<state_dir>/<name>`, generating it when absent:
/// written whole under a temporary name (mode 0600, in a 0700 folder), then linked into
/// place, so a reader never sees half a secret and, of two processes starting at once, the
/// first one's stays and both use it. Says in the log where a new one is, never what.
pub fn kept_secret(state_dir: &Path, name: &str) -> Result<String, SecretFileError> {
    let path = state_dir.join(name);
    if let Some(secret) = read_kept(&path)? {
        return Ok(secret);
    }
    let io = |action: &'static str| {
        let path = path.clone();
        move |source| SecretFileError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(io("create its directory"))?;
    let secret = random_secret();
    let temporary = state_dir.join(format!(".{name}.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(format!("{secret}\n").as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::hard_link(&temporary, &path));
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => {
            let shown = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            tracing::info!(path = %shown.display(), "generated a secret (mode 0600)");
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read_kept(&path)? {
            Some(secret) => Ok(secret),
            None => Err(io("read")(e)),
        },
        Err(e) => Err(io("write")(e)),
    }
}

/// The secret in `path`, or `None` when there is no such file.
fn read_kept(path: &Path) -> Result<Option<String>, SecretFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SecretFileError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            })
        }
    };
    let secret = text.trim();
    if secret.len() < MIN_KEPT_SECRET {
        return Err(SecretFileError::TooShort(path.to_owned()));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "a secret file is readable by others than its owner: chmod 600 it");
        }
    }
    Ok(Some(secret.to_owned()))
}

/// Writes `text` to `<dir>/<name>` readable by the owner only, replacing the file atomically.
pub fn write_private(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let path = dir.join(name);
    let partial = dir.join(format!(".{name}.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn keys_round_trip_and_malformed_ones_are_refused() {
        let (key, text) = PresentedKey::generate();
        assert_eq!(PresentedKey::parse(&text), Some(key));
        assert!(PresentedKey::parse("trd_abc_def").is_none());
        assert!(PresentedKey::parse(&text.replace("trd_", "xyz_")).is_none());
        assert!(PresentedKey::parse(&text[..text.len() - 1]).is_none());
    }

    #[test]
    fn kept_secrets_are_private_reused_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("var");
        let first = kept_secret(&state, "jwt-secret").unwrap();
        assert_eq!(first.len(), 64);
        let mode = std::fs::metadata(state.join("jwt-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(kept_secret(&state, "jwt-secret").unwrap(), first);
        assert_eq!(
            std::fs::read_dir(&state).unwrap().count(),
            1,
            "no leftovers"
        );
        std::fs::write(state.join("jwt-secret"), "short\n").unwrap();
        assert!(matches!(
            kept_secret(&state, "jwt-secret"),
            Err(SecretFileError::TooShort(_))
        ));
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }
}
