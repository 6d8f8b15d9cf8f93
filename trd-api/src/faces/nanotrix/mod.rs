//! Nanotrix's identity routes (`../shared/seeds/003_…`): log in for an access token, then
//! extend it into a task token (`ntx-token`) that expires with it. Both are JWTs; either is
//! accepted in the `ntx-token` header or the `?ntx-token=` query parameter. The file
//! recognition API (`/api/v1/file/v2t`) is [`file`].

use rocket::serde::json::{self, Json};
use rocket::{post, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::identity::intake::Presented;
use crate::identity::tokens::{Task, TokenError, TokenKind};
use crate::identity::users::{self, Credentials};
use crate::identity::Caller;
use crate::shapes::RecordUrls;

pub mod file;

pub fn routes() -> Vec<rocket::Route> {
    let mut routes = rocket::routes![access_token, ntx_token];
    routes.extend(file::routes());
    routes
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessToken {
    pub access_token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The task a task token is for.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TaskRequest {
    /// `ntx.v2t.engine.EngineService/cz/t-broadcast/v2t`
    pub id: String,
    /// `vad+v2t+ppc+pnc`
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NtxToken {
    pub ntx_token: String,
    /// Unix seconds: the access token's expiry.
    pub expires_at: i64,
}

#[utoipa::path(
    tag = "nanotrix",
    summary = "Log in: an access token",
    request_body(content = Credentials, content_type = "application/json"),
    responses((status = 200, description = "The access token", body = AccessToken))
)]
#[post("/login/access-token", data = "<body>")]
pub async fn access_token(
    app: &State<App>,
    _caller: Caller,
    urls: RecordUrls,
    body: Json<Credentials>,
) -> ApiResult<Json<AccessToken>> {
    let user = users::log_in(app, body.into_inner()).await?;
    let (access_token, expires_at) = app
        .identity
        .access_token(&user.name, urls.base(), None, None);
    Ok(Json(AccessToken {
        access_token,
        expires_at,
    }))
}

#[utoipa::path(
    tag = "nanotrix",
    summary = "Extend an access token (header `ntx-token`) into a task token",
    request_body(content = TaskRequest, content_type = "application/json"),
    responses((status = 200, description = "The task token", body = NtxToken))
)]
#[post("/store/ntx-token", data = "<body>")]
pub async fn ntx_token(
    app: &State<App>,
    presented: &Presented,
    urls: RecordUrls,
    body: Result<Json<TaskRequest>, json::Error<'_>>,
) -> ApiResult<Json<NtxToken>> {
    let access = presented.0.as_deref().ok_or_else(|| {
        ApiError::Unauthorized("send the access token in the `ntx-token` header".into())
    })?;
    let claims = app.identity.signer().verify(access).map_err(|e| match e {
        TokenError::Expired => ApiError::Unauthorized("the access token has expired".into()),
        TokenError::Invalid(_) => ApiError::Unauthorized("the access token is not valid".into()),
    })?;
    if claims.kind != TokenKind::Access || app.store.find_user(&claims.sub).await?.is_none() {
        return Err(ApiError::Unauthorized(
            "the access token is not valid".into(),
        ));
    }
    let body = body
        .map(Json::into_inner)
        .map_err(|e| ApiError::BadRequest(format!("the body is not the expected JSON: {e}")))?;
    let (ntx_token, expires_at) = app.identity.access_token(
        &claims.sub,
        urls.base(),
        Some(claims.exp),
        Some(Task {
            id: body.id,
            label: body.label,
        }),
    );
    Ok(Json(NtxToken {
        ntx_token,
        expires_at,
    }))
}
