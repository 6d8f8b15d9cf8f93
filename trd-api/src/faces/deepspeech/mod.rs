//! The DeepSpeech REST API's identity routes (`../shared/seeds/000_…`), in both of its
//! layouts: the original (`/users`, `/token`, `/token/refresh`) and the current one under
//! `/api/v1`. Access tokens are JWTs; refresh tokens are spent by the refresh that uses them
//! and replaced. Recognition (`/api/stt/http`, `/api/v1/stt/http`) is [`stt`]; the WebSockets
//! (`/api/stt/ws`, `/api/stt/mic` and their `/api/v1` twins) are [`live`].

use rocket::serde::json::{self, Json};
use rocket::{post, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::identity::intake::Presented;
use crate::identity::secrets::sha256_hex;
use crate::identity::users::{self, Credentials, NewUser};
use crate::identity::Caller;
use crate::shapes::RecordUrls;

pub mod live;
pub mod stt;

pub fn routes() -> Vec<rocket::Route> {
    let mut routes = rocket::routes![register, register_v1, token, token_v1, refresh, refresh_v1];
    routes.extend(stt::routes());
    routes.extend(live::routes());
    routes
}

/// The original layout's answer to a registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub message: String,
}

/// The current layout's answer to a registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredUser {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub modified_at: chrono::DateTime<chrono::Utc>,
}

/// A log-in's or refresh's tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// `POST /token/refresh`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[utoipa::path(
    tag = "deepspeech",
    summary = "Register a user (open with `open_registration`, else admin only)",
    request_body(content = NewUser, content_type = "application/json"),
    responses((status = 200, description = "Created", body = Registered))
)]
#[post("/users", data = "<body>")]
pub async fn register(
    app: &State<App>,
    caller: Caller,
    body: Result<Json<NewUser>, json::Error<'_>>,
) -> ApiResult<Json<Registered>> {
    users::may_register(app, caller.0.as_ref())?;
    let user = users::register(app, caller.0.as_ref(), body_of(body)?).await?;
    Ok(Json(Registered {
        message: format!("User {} is successfully created.", user.name),
    }))
}

#[utoipa::path(
    tag = "deepspeech",
    summary = "Register a user (current layout)",
    request_body(content = NewUser, content_type = "application/json"),
    responses((status = 200, description = "Created", body = RegisteredUser))
)]
#[post("/api/v1/users/register", data = "<body>")]
pub async fn register_v1(
    app: &State<App>,
    caller: Caller,
    body: Result<Json<NewUser>, json::Error<'_>>,
) -> ApiResult<Json<RegisteredUser>> {
    users::may_register(app, caller.0.as_ref())?;
    let user = users::register(app, caller.0.as_ref(), body_of(body)?).await?;
    Ok(Json(RegisteredUser {
        id: user.name.clone(),
        username: user.name,
        email: user.email,
        created_at: user.created_at,
        modified_at: user.modified_at,
    }))
}

/// A JSON body, or 400 naming what is wrong with it.
fn body_of<T>(body: Result<Json<T>, json::Error<'_>>) -> ApiResult<T> {
    body.map(Json::into_inner)
        .map_err(|e| ApiError::BadRequest(format!("the body is not the expected JSON: {e}")))
}

async fn log_in(app: &App, urls: &RecordUrls, credentials: Credentials) -> ApiResult<Json<Tokens>> {
    let user = users::log_in(app, credentials).await?;
    let issued = app.identity.issue_tokens(&user.name, urls.base()).await?;
    Ok(Json(Tokens {
        access_token: issued.access_token,
        refresh_token: issued.refresh_token,
    }))
}

#[utoipa::path(
    tag = "deepspeech",
    summary = "Log in: an access token (JWT) and a refresh token",
    request_body(content = Credentials, content_type = "application/json"),
    responses((status = 200, description = "Tokens", body = Tokens))
)]
#[post("/token", data = "<body>")]
pub async fn token(
    app: &State<App>,
    _caller: Caller,
    urls: RecordUrls,
    body: Json<Credentials>,
) -> ApiResult<Json<Tokens>> {
    log_in(app, &urls, body.into_inner()).await
}

#[utoipa::path(
    tag = "deepspeech",
    summary = "Log in (current layout)",
    request_body(content = Credentials, content_type = "application/json"),
    responses((status = 200, description = "Tokens", body = Tokens))
)]
#[post("/api/v1/token", data = "<body>")]
pub async fn token_v1(
    app: &State<App>,
    _caller: Caller,
    urls: RecordUrls,
    body: Json<Credentials>,
) -> ApiResult<Json<Tokens>> {
    log_in(app, &urls, body.into_inner()).await
}

/// Spends a refresh token for new tokens. The access token the client sends with it may have
/// expired, but must be ours and name the same user.
async fn spend(
    app: &App,
    presented: &Presented,
    urls: &RecordUrls,
    body: RefreshRequest,
) -> ApiResult<Json<Tokens>> {
    let refused = || {
        ApiError::Unauthorized("the refresh token is not valid (used, revoked or expired)".into())
    };
    let spent = app
        .store
        .spend_refresh_token(&sha256_hex(body.refresh_token.trim()))
        .await?
        .ok_or_else(refused)?;
    if let Some(access) = &presented.0 {
        let claims = app
            .identity
            .signer()
            .verify_ignoring_expiry(access)
            .map_err(|_| ApiError::Unauthorized("the access token is not valid".into()))?;
        if claims.sub != spent.user {
            return Err(refused());
        }
    }
    if app.store.find_user(&spent.user).await?.is_none() {
        return Err(refused());
    }
    let issued = app.identity.issue_tokens(&spent.user, urls.base()).await?;
    Ok(Json(Tokens {
        access_token: issued.access_token,
        refresh_token: issued.refresh_token,
    }))
}

#[utoipa::path(
    tag = "deepspeech",
    summary = "New tokens for a refresh token (which is spent)",
    request_body(content = RefreshRequest, content_type = "application/json"),
    responses((status = 200, description = "Tokens", body = Tokens))
)]
#[post("/token/refresh", data = "<body>")]
pub async fn refresh(
    app: &State<App>,
    presented: &Presented,
    urls: RecordUrls,
    body: Json<RefreshRequest>,
) -> ApiResult<Json<Tokens>> {
    spend(app, presented, &urls, body.into_inner()).await
}

#[utoipa::path(
    tag = "deepspeech",
    summary = "New tokens for a refresh token (current layout)",
    request_body(content = RefreshRequest, content_type = "application/json"),
    responses((status = 200, description = "Tokens", body = Tokens))
)]
#[post("/api/v1/token/refresh", data = "<body>")]
pub async fn refresh_v1(
    app: &State<App>,
    presented: &Presented,
    urls: RecordUrls,
    body: Json<RefreshRequest>,
) -> ApiResult<Json<Tokens>> {
    spend(app, presented, &urls, body.into_inner()).await
}
