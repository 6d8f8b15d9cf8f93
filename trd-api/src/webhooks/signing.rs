//! Webhook signatures: every delivery carries
//!
//! ```text
//! X-TRD-Timestamp: <unix seconds>
//! X-TRD-Signature: sha256=<lowercase hex of HMAC-SHA256(secret, "<timestamp>.<raw body>")>
//! ```
//!
//! so a receiver can tell that the service sent it, unaltered, and recently (the README shows
//! how to check). The secret is the `webhook_secret` setting, or else one the API generates at
//! its first start and keeps, readable by its owner only, in `<state_dir>/webhook-secret`. The
//! HMAC key is the secret's text as it is written (for a generated one, its 64 hex digits).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use trd_core::Settings;

use crate::identity::secrets::{kept_secret, SecretFileError};

pub const TIMESTAMP_HEADER: &str = "X-TRD-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-TRD-Signature";
/// The file in `state_dir` that keeps a generated secret.
pub const SECRET_FILE: &str = "webhook-secret";

/// Signs delivery bodies with the service's webhook secret. Its `Debug` shows no key.
#[derive(Clone)]
pub struct Signer {
    key: Arc<[u8]>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { .. }")
    }
}

impl Signer {
    pub fn new(secret: &str) -> Self {
        Self {
            key: secret.as_bytes().into(),
        }
    }

    /// The configured `webhook_secret`, or the secret kept in `state_dir`, generated (and
    /// logged where, never what) when there is none yet.
    pub fn from_settings(settings: &Settings) -> Result<Self, SecretFileError> {
        match &settings.webhook_secret {
            Some(secret) => Ok(Self::new(secret)),
            None => Ok(Self::new(&kept_secret(&settings.state_dir, SECRET_FILE)?)),
        }
    }

    /// The `X-TRD-Signature` value of `body` sent at `timestamp` (unix seconds).
    pub fn signature(&self, timestamp: u64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The headers that sign `body` as sent now.
    pub fn headers(&self, body: &[u8]) -> [(&'static str, String); 2] {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        [
            (TIMESTAMP_HEADER, now.to_string()),
            (SIGNATURE_HEADER, self.signature(now, body)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Computed independently, with Python's `hmac` module (the README's recipe).
    #[test]
    fn signs_timestamp_dot_body_as_documented() {
        let signer = Signer::new("whsec-0123456789abcdef");
        let body = br#"{"_id":"5b76faed4d27fc0001331dcc","event":"FINISHED"}"#;
        assert_eq!(
            signer.signature(1_700_000_000, body),
            "sha256=743df4bfec741a2b8d255ae27ba43c02e334f6509e136f52b6c34224d390cdc6"
        );
        assert_ne!(
            signer.signature(1_700_000_001, body),
            signer.signature(1_700_000_000, body)
        );
        let [(t, timestamp), (s, signature)] = signer.headers(body);
        assert_eq!((t, s), (TIMESTAMP_HEADER, SIGNATURE_HEADER));
        assert_eq!(
            signature,
            signer.signature(timestamp.parse().unwrap(), body)
        );
        assert_eq!(format!("{signer:?}"), "Signer { .. }");
    }

    #[test]
    fn a_generated_secret_is_kept_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let settings = Settings {
            state_dir: state_dir.clone(),
            ..Settings::default()
        };
        let first = Signer::from_settings(&settings).unwrap();
        let path = state_dir.join(SECRET_FILE);
        let kept = fs::read_to_string(&path).unwrap();
        assert_eq!(kept.trim().len(), 64);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = Signer::from_settings(&settings).unwrap();
        assert_eq!(again.signature(1, b"x"), first.signature(1, b"x"));
        assert_eq!(
            first.signature(1, b"x"),
            Signer::new(kept.trim()).signature(1, b"x")
        );
        assert_eq!(fs::read_dir(&state_dir).unwrap().count(), 1, "no leftovers");

        let configured = Settings {
            state_dir: dir.path().join("unused"),
            webhook_secret: Some("configured-secret-0123".into()),
            ..Settings::default()
        };
        let signer = Signer::from_settings(&configured).unwrap();
        assert_eq!(
            signer.signature(1, b"x"),
            Signer::new("configured-secret-0123").signature(1, b"x")
        );
        assert!(
            !configured.state_dir.exists(),
            "a configured secret is not written"
        );

        fs::write(&path, "short\n").unwrap();
        assert!(matches!(
            Signer::from_settings(&settings),
            Err(SecretFileError::TooShort(_))
        ));
    }
}
