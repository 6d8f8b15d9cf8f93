//! The first admin credential. With `admin_token` configured, that token is an admin key.
//! Otherwise, while no key exists, the API creates one at start-up and writes it to
//! `<state_dir>/admin-token` (mode 0600), saying so in its log (never the key itself).

use std::path::PathBuf;

use trd_core::store::identity::{ApiKey, Scope};
use trd_core::{Settings, Store};

use super::secrets::{sha256_hex, write_private, PresentedKey};

/// The file the generated admin key is written to.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Creates the first admin key when needed; returns where it was written.
pub async fn first_admin_key(
    settings: &Settings,
    store: &Store,
) -> anyhow::Result<Option<PathBuf>> {
    if settings.admin_token.is_some() || store.count_keys().await? > 0 {
        return Ok(None);
    }
    let (key, text) = PresentedKey::generate();
    store
        .insert_key(&ApiKey {
            id: key.id,
            name: "admin (generated at first start)".to_owned(),
            scopes: vec![Scope::Admin],
            batches: None,
            secret_sha256: sha256_hex(&key.secret),
            created_at: chrono::Utc::now(),
            created_by: "first start".to_owned(),
        })
        .await?;
    let path = write_private(&settings.state_dir, ADMIN_TOKEN_FILE, &text)?;
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    tracing::warn!(
        path = %path.display(),
        key_id = %key.id.to_hex(),
        "no API key existed: generated an admin key and wrote it to this file (readable by \
         its owner only); use it to create keys with `trd keys create`"
    );
    Ok(Some(path))
}
