//! Users' tokens: short-lived access tokens (JWT, HS256, signed with the configured or
//! generated key), Nanotrix task tokens (an access token extended with a task, expiring with
//! it), refresh tokens (random, stored as digests, spent once), and passwords (Argon2).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Who signs tokens: the `iss` of every token.
pub const ISSUER: &str = "trd";

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    /// A Nanotrix task token.
    Ntx,
}

/// A Nanotrix task, named by the client when it asks for a task token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user name.
    pub sub: String,
    pub iat: i64,
    /// Unix seconds.
    pub exp: i64,
    /// The service's base URL (Nanotrix clients find their cluster here).
    pub aud: Vec<String>,
    pub kind: TokenKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid")]
    Invalid(#[source] jsonwebtoken::errors::Error),
}

/// Signs and checks tokens with one key.
#[derive(Clone)]
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Signer {
    pub fn new(secret: &str) -> Self {
        Signer {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The claims of a valid, unexpired token of ours.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.decode(token, true)
    }

    /// The claims of a token of ours, expired or not (a refresh names its old access token).
    pub fn verify_ignoring_expiry(&self, token: &str) -> Result<Claims, TokenError> {
        self.decode(token, false)
    }

    fn decode(&self, token: &str, check_expiry: bool) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.validate_aud = false;
        validation.validate_exp = check_expiry;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e),
            })
    }
}

/// Whether a bearer credential is shaped like a JWT (three dot-separated parts).
pub fn looks_like_jwt(raw: &str) -> bool {
    raw.split('.').count() == 3
}

/// An Argon2 hash (PHC string) of a password. CPU-heavy: call from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches `hash`. CPU-heavy: call from a blocking thread.
pub fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "forrestgump".into(),
            iat: 0,
            exp,
            aud: vec!["http://127.0.0.1:8080".into()],
            kind: TokenKind::Access,
            task: None,
        }
    }

    #[test]
    fn tokens_verify_with_their_key_only_and_expire() {
        let signer = Signer::new("k1");
        let later = chrono::Utc::now().timestamp() + 60;
        let token = signer.sign(&claims(later));
        assert!(looks_like_jwt(&token));
        assert_eq!(signer.verify(&token).unwrap().sub, "forrestgump");
        assert!(matches!(
            Signer::new("k2").verify(&token),
            Err(TokenError::Invalid(_))
        ));
        let old = signer.sign(&claims(1));
        assert!(matches!(signer.verify(&old), Err(TokenError::Expired)));
        assert_eq!(signer.verify_ignoring_expiry(&old).unwrap().exp, 1);
    }

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("yourpassword").unwrap();
        assert!(hash.starts_with("$argon2"));
        assert!(!hash.contains("yourpassword"));
        assert!(password_matches("yourpassword", &hash));
        assert!(!password_matches("yourpasswore", &hash));
        assert!(!password_matches("yourpassword", "not a hash"));
    }
}
