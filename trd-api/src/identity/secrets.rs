//! Secrets: API keys as handed out and as stored, digests, and the secret files the service
//! generates for itself under `state_dir`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
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

/// Reads a secret the service keeps in `<state_dir>/<name>`, generating it (mode 0600, in a
/// 0700 folder) when absent. Returns the secret and whether it was generated now.
pub fn load_or_generate(state_dir: &Path, name: &str) -> std::io::Result<(String, bool)> {
    let path = state_dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok((text.trim().to_owned(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let secret = random_secret();
    write_private(state_dir, name, &secret)?;
    Ok((secret, true))
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
    fn generated_secrets_are_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("var");
        let (first, made) = load_or_generate(&state, "jwt-secret").unwrap();
        assert!(made);
        assert_eq!(first.len(), 64);
        let mode = std::fs::metadata(state.join("jwt-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(
            load_or_generate(&state, "jwt-secret").unwrap(),
            (first, false)
        );
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }
}
