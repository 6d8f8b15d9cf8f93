//! Users: registration (open, or by an admin) and log-in, shared by every face that speaks a
//! user/password protocol (DeepSpeech REST, Nanotrix).

use serde::Deserialize;
use trd_core::store::identity::{Scope, User};
use utoipa::ToSchema;

use super::tokens::{hash_password, password_matches};
use super::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};

/// A registration: the DeepSpeech REST body (`username` 3–127 characters, `email`,
/// `password` of at least 8), plus, from an admin only, TRD's `scopes` and `batches`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    pub password: String,
    /// Default `read` and `operate`.
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
    /// Default: every batch for users an admin creates; the batch named after the user for
    /// users who registered themselves.
    #[serde(default)]
    pub batches: Option<Vec<String>>,
}

/// A log-in: user name and password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Whether `caller` may register users: an admin, or anyone with `open_registration`.
pub fn may_register(app: &App, caller: Option<&Principal>) -> ApiResult<()> {
    if app.settings.open_registration || caller.is_some_and(|c| c.allows(Scope::Admin)) {
        return Ok(());
    }
    Err(match caller {
        None => ApiError::Unauthorized(
            "registration needs an admin credential (setting `open_registration` is off)".into(),
        ),
        Some(c) => ApiError::Forbidden(format!(
            "registration needs an admin credential; {} is not one",
            c.label
        )),
    })
}

/// Registers a user. Without an admin caller, only when `open_registration` is set, and then
/// as a tenant of the batch named after the user, with `read` and `operate`.
pub async fn register(app: &App, caller: Option<&Principal>, new: NewUser) -> ApiResult<User> {
    may_register(app, caller)?;
    let by_admin = caller.is_some_and(|c| c.allows(Scope::Admin));
    let username = new.username.trim().to_owned();
    let valid_name = (3..=127).contains(&username.chars().count())
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if !valid_name {
        return Err(ApiError::BadRequest(
            "`username` must be 3 to 127 letters, digits or `_ - . @`".into(),
        ));
    }
    if new.password.chars().count() < 8 || new.password.len() > 1024 {
        return Err(ApiError::BadRequest(
            "`password` must be 8 to 1024 characters".into(),
        ));
    }
    let (scopes, batches) = if by_admin {
        let admin = caller.expect("an admin caller");
        (
            new.scopes
                .unwrap_or_else(|| vec![Scope::Read, Scope::Operate]),
            admin.grant(new.batches.as_deref())?,
        )
    } else {
        let own = trd_core::domain::BatchName::parse(&username)?;
        (vec![Scope::Read, Scope::Operate], Some(vec![own]))
    };
    let password = new.password;
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal("hashing the password", e))?
        .map_err(|e| ApiError::internal("hashing the password", e.to_string()))?;
    let now = chrono::Utc::now();
    let user = User {
        name: username,
        email: new.email.filter(|e| !e.trim().is_empty()),
        password_hash,
        scopes,
        batches,
        created_at: now,
        modified_at: now,
    };
    if !app.store.insert_user(&user).await? {
        return Err(ApiError::BadRequest(format!(
            "the user name '{}' is taken",
            user.name
        )));
    }
    Ok(user)
}

/// The user whose name and password these are; 401 otherwise (the same answer for an unknown
/// user and a wrong password).
pub async fn log_in(app: &App, credentials: Credentials) -> ApiResult<User> {
    let refused = || ApiError::Unauthorized("wrong user name or password".into());
    let Some(user) = app.store.find_user(credentials.username.trim()).await? else {
        return Err(refused());
    };
    let hash = user.password_hash.clone();
    let matches =
        tokio::task::spawn_blocking(move || password_matches(&credentials.password, &hash))
            .await
            .map_err(|e| ApiError::internal("checking the password", e))?;
    if matches {
        Ok(user)
    } else {
        Err(refused())
    }
}
