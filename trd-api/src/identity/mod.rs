//! Identity: who a request acts for and what it may do, the same for every face.
//!
//! - [`intake`]: a fairing run on every request: the `Host` must be one the service answers to
//!   (421 otherwise, against DNS rebinding), and the credential is taken out of the request
//!   (`Authorization: Bearer`, `ntx-token`, `?auth_token=`, `?token=`, `?ntx-token=`) and out
//!   of its URI, so no log, handler or audit entry ever sees it.
//! - [`guard`]: request guards that authorize: [`Access`]`<Read | Operate | Admin>` on every
//!   route that needs a scope; state-changing ones also refuse cross-site browser requests and
//!   mark the request for the audit trail. [`Caller`] for the routes that log in or register.
//! - [`principal`]: the [`Principal`] a request acts for; tenants (keys limited to batches)
//!   see anything outside their batches as missing (404).
//! - [`secrets`], [`tokens`]: key format and digests, JWT access and task tokens, refresh
//!   tokens, Argon2 passwords, the secret files under `state_dir`.
//! - [`audit`]: the fairing appending each state change to the `audit` collection.
//! - [`bootstrap`]: the first admin key.
//! - [`refusal`]: a refusal kept for the catcher, with its headers.

pub mod audit;
pub mod bootstrap;
pub mod guard;
pub mod intake;
pub mod paced;
pub mod principal;
pub mod refusal;
pub mod secrets;
pub mod tokens;
pub mod users;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use trd_core::store::identity::{RefreshToken, Scope};
use trd_core::store::StoreError;
use trd_core::{Settings, Store};

pub use guard::{Access, Admin, Caller, Operate, Read};
pub use principal::Principal;
pub use refusal::Refusal;
use secrets::{same, sha256_hex, PresentedKey};
use tokens::{looks_like_jwt, Claims, Signer, TokenError, TokenKind};

/// The identity layer's shared state.
#[derive(Clone)]
pub struct Identity {
    store: Store,
    settings: Arc<Settings>,
    trusted: Vec<IpNet>,
    allowed_hosts: BTreeSet<String>,
    any_host: bool,
    allowed_origins: BTreeSet<String>,
    admin_digest: Option<String>,
    signer: Signer,
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    uploads: Arc<Semaphore>,
}

/// A new access token and, for logins, a refresh token.
pub struct IssuedTokens {
    pub access_token: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub refresh_token: String,
}

impl Identity {
    /// `jwt_secret`: the configured or generated token signing key.
    pub fn new(settings: Arc<Settings>, store: Store, jwt_secret: &str) -> Self {
        let trusted = settings
            .trusted_networks
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        let mut allowed_hosts: BTreeSet<String> = settings
            .allowed_hosts
            .iter()
            .map(|h| normalise_host(h))
            .collect();
        allowed_hosts.insert(normalise_host(&settings.address));
        let limiter = NonZeroU32::new(settings.rate_limit_per_second).map(|rate| {
            let burst = NonZeroU32::new(settings.rate_limit_burst).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        Identity {
            any_host: allowed_hosts.contains("*"),
            allowed_hosts,
            allowed_origins: settings
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            admin_digest: settings.admin_token.as_deref().map(sha256_hex),
            signer: Signer::new(jwt_secret),
            limiter,
            uploads: Arc::new(Semaphore::new(settings.max_concurrent_uploads)),
            trusted,
            store,
            settings,
        }
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Whether the service answers to `host` (a `Host` header's name, without port).
    pub fn host_allowed(&self, host: &str) -> bool {
        self.any_host || self.allowed_hosts.contains(&normalise_host(host))
    }

    /// Whether a browser origin (`scheme://host[:port]`) may change state.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .contains(&origin.trim_end_matches('/').to_ascii_lowercase())
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.trusted.iter().any(|net| net.contains(&address))
    }

    /// The principal behind a presented credential, or the anonymous one of a trusted
    /// network; a wrong credential is refused even from a trusted network.
    pub async fn authenticate(
        &self,
        presented: Option<&str>,
        from: Option<IpAddr>,
    ) -> Result<Principal, Refusal> {
        let Some(raw) = presented else {
            return match from.filter(|ip| self.trusts(*ip)) {
                Some(ip) => Ok(Principal::new(
                    format!("anonymous@{}", ip.to_canonical()),
                    &self.settings.anonymous_scopes,
                    None,
                )),
                None => Err(Refusal::unauthenticated(
                    "a credential is needed: `Authorization: Bearer <key or token>` \
                     (or `?auth_token=`, or an `ntx-token`)",
                )),
            };
        };
        if let Some(digest) = &self.admin_digest {
            if same(&sha256_hex(raw), digest) {
                return Ok(Principal::new("admin-token".into(), &[Scope::Admin], None));
            }
        }
        if let Some(key) = PresentedKey::parse(raw) {
            let stored = self.store.find_key(key.id).await.map_err(outage)?;
            return match stored {
                Some(stored) if same(&sha256_hex(&key.secret), &stored.secret_sha256) => {
                    Ok(Principal::new(
                        format!("key:{}", stored.id.to_hex()),
                        &stored.scopes,
                        stored.batches.as_deref(),
                    ))
                }
                _ => Err(Refusal::unauthenticated(
                    "the API key is not valid (revoked or mistyped)",
                )),
            };
        }
        if looks_like_jwt(raw) {
            let claims = self.signer.verify(raw).map_err(|e| match e {
                TokenError::Expired => Refusal::unauthenticated(
                    "the access token has expired: refresh it or log in again",
                ),
                TokenError::Invalid(_) => Refusal::unauthenticated("the token is not valid"),
            })?;
            return self.user_principal(&claims.sub).await;
        }
        Err(Refusal::unauthenticated("the credential is not valid"))
    }

    /// The principal of a user, read anew on each request: a deleted user's tokens stop
    /// working at once.
    async fn user_principal(&self, name: &str) -> Result<Principal, Refusal> {
        match self.store.find_user(name).await.map_err(outage)? {
            Some(user) => Ok(Principal::new(
                format!("user:{}", user.name),
                &user.scopes,
                user.batches.as_deref(),
            )),
            None => Err(Refusal::unauthenticated(
                "the token's user no longer exists",
            )),
        }
    }

    /// Counts one request of `principal` against its rate.
    pub fn count_request(&self, principal: &Principal) -> Result<(), Refusal> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        // One entry per principal ever seen (anonymous ones per address): forget those whose
        // allowance is full again, so the table cannot grow without end.
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&principal.label).map_err(|not_until| {
            use governor::clock::{Clock, DefaultClock};
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Refusal::too_many(
                format!(
                    "too many requests from {} (setting `rate_limit_per_second`)",
                    principal.label
                ),
                wait.as_secs_f64().ceil() as u64,
            )
        })
    }

    /// A slot for one upload in progress, or 429 when all are taken.
    pub fn upload_slot(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        self.uploads.clone().try_acquire_owned().map_err(|_| {
            Refusal::too_many(
                format!(
                    "{} uploads are in progress (setting `max_concurrent_uploads`)",
                    self.settings.max_concurrent_uploads
                ),
                1,
            )
        })
    }

    /// Signs a new access token (or, with a task, a Nanotrix task token) for `user`.
    pub fn access_token(
        &self,
        user: &str,
        audience: &str,
        expires_at: Option<i64>,
        task: Option<tokens::Task>,
    ) -> (String, i64) {
        let now = chrono::Utc::now().timestamp();
        let exp = expires_at.unwrap_or(now + self.settings.access_token_seconds as i64);
        let claims = Claims {
            iss: tokens::ISSUER.to_owned(),
            sub: user.to_owned(),
            iat: now,
            exp,
            aud: vec![audience.to_owned()],
            kind: if task.is_some() {
                TokenKind::Ntx
            } else {
                TokenKind::Access
            },
            task,
        };
        (self.signer.sign(&claims), exp)
    }

    /// An access token and a new refresh token for `user` (logins and refreshes).
    pub async fn issue_tokens(
        &self,
        user: &str,
        audience: &str,
    ) -> Result<IssuedTokens, StoreError> {
        let (access_token, expires_at) = self.access_token(user, audience, None, None);
        let refresh_token = secrets::random_secret();
        self.store
            .insert_refresh_token(&RefreshToken {
                sha256: sha256_hex(&refresh_token),
                user: user.to_owned(),
                expires_at: chrono::Utc::now().timestamp()
                    + self.settings.refresh_token_seconds as i64,
                used: false,
            })
            .await?;
        Ok(IssuedTokens {
            access_token,
            expires_at,
            refresh_token,
        })
    }
}

/// Host names compare without case, brackets or a trailing dot.
fn normalise_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn outage(e: StoreError) -> Refusal {
    tracing::warn!(error = %crate::error::chain(&e), "checking a credential failed");
    Refusal {
        status: rocket::http::Status::ServiceUnavailable,
        message: "MongoDB is unavailable: credentials cannot be checked".into(),
        retry_after: Some(5),
    }
}
