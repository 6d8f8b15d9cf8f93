//! `/trd/auth/...` and `/trd/audit`: API keys, users and the audit trail (admin).

use mongodb::bson::{doc, oid::ObjectId};
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{delete, get, post, State};
use serde::{Deserialize, Serialize};
use trd_core::store::identity::{ApiKey, AuditEntry, Scope};
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::identity::secrets::{sha256_hex, PresentedKey};
use crate::identity::{Access, Admin};

/// `POST /trd/auth/keys`: a new key's name, scopes and (optionally) batches.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewKey {
    /// What the key is for (shown in listings and the audit trail).
    pub name: String,
    /// `read`, `operate`, `admin` (each includes the ones before it).
    pub scopes: Vec<Scope>,
    /// The batches the key is limited to; absent: every batch.
    #[serde(default)]
    pub batches: Option<Vec<String>>,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub batches: Option<Vec<String>>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub created_by: String,
}

/// A key just created: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    pub id: String,
    /// The key itself, `trd_<id>_<secret>`: send it as `Authorization: Bearer <key>`.
    pub key: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub batches: Option<Vec<String>>,
}

impl From<&ApiKey> for KeyView {
    fn from(key: &ApiKey) -> Self {
        KeyView {
            id: key.id.to_hex(),
            name: key.name.clone(),
            scopes: key.scopes.clone(),
            batches: key
                .batches
                .as_ref()
                .map(|b| b.iter().map(|n| n.as_str().to_owned()).collect()),
            created_at: key.created_at,
            created_by: key.created_by.clone(),
        }
    }
}

#[utoipa::path(
    tag = "auth",
    summary = "Create an API key (its secret is shown this once)",
    request_body(content = NewKey, content_type = "application/json"),
    responses((status = 201, description = "The key", body = CreatedKey))
)]
#[post("/auth/keys", data = "<body>")]
pub async fn create_key(
    app: &State<App>,
    who: Access<Admin>,
    body: Json<NewKey>,
) -> ApiResult<(Status, Json<CreatedKey>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "`name` must be 1 to 100 characters".into(),
        ));
    }
    if body.scopes.is_empty() {
        return Err(ApiError::BadRequest(
            "`scopes` must name at least one of read, operate, admin".into(),
        ));
    }
    let batches = who.grant(body.batches.as_deref())?;
    let (key, text) = PresentedKey::generate();
    let stored = ApiKey {
        id: key.id,
        name: name.to_owned(),
        scopes: body.scopes.clone(),
        batches,
        secret_sha256: sha256_hex(&key.secret),
        created_at: chrono::Utc::now(),
        created_by: who.label.clone(),
    };
    app.store.insert_key(&stored).await?;
    let view = KeyView::from(&stored);
    Ok((
        Status::Created,
        Json(CreatedKey {
            id: view.id,
            key: text,
            name: view.name,
            scopes: view.scopes,
            batches: view.batches,
        }),
    ))
}

#[utoipa::path(
    tag = "auth",
    summary = "Every API key (without secrets)",
    responses((status = 200, description = "The keys", body = Vec<KeyView>))
)]
#[get("/auth/keys")]
pub async fn list_keys(app: &State<App>, _who: Access<Admin>) -> ApiResult<Json<Vec<KeyView>>> {
    let keys = app.store.list_keys().await?;
    Ok(Json(keys.iter().map(KeyView::from).collect()))
}

#[utoipa::path(
    tag = "auth",
    summary = "Revoke an API key (at once, in every API process)",
    params(("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The key's id")),
    responses((status = 200, description = "The revoked key", body = KeyView))
)]
#[delete("/auth/keys/<id>")]
pub async fn revoke_key(
    app: &State<App>,
    _who: Access<Admin>,
    id: &str,
) -> ApiResult<Json<KeyView>> {
    let id = ObjectId::parse_str(id)
        .map_err(|_| ApiError::BadRequest(format!("'{id}' is not a key id")))?;
    let key = app
        .store
        .find_key(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no key {id}")))?;
    if !app.store.delete_key(id).await? {
        return Err(ApiError::NotFound(format!("no key {id}")));
    }
    Ok(Json(KeyView::from(&key)))
}

/// `DELETE /trd/auth/users/{name}`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedUser {
    pub username: String,
}

#[utoipa::path(
    tag = "auth",
    summary = "Remove a user (their tokens stop working at once)",
    params(("name" = String, Path, description = "The user name")),
    responses((status = 200, description = "The removed user", body = RemovedUser))
)]
#[delete("/auth/users/<name>")]
pub async fn delete_user(
    app: &State<App>,
    _who: Access<Admin>,
    name: &str,
) -> ApiResult<Json<RemovedUser>> {
    if !app.store.delete_user(name).await? {
        return Err(ApiError::NotFound(format!("no user '{name}'")));
    }
    Ok(Json(RemovedUser {
        username: name.to_owned(),
    }))
}

/// Which audit entries to read.
#[derive(Debug, Default, rocket::FromForm, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this principal's (`key:<id>`, `user:<name>`, `anonymous@<address>`).
    principal: Option<String>,
    /// Only this action (`start_batch`, `create_key`…).
    action: Option<String>,
    /// At most this many, newest first (default 100, at most 10 000).
    limit: Option<i64>,
}

#[utoipa::path(
    tag = "auth",
    summary = "The audit trail: every state change, newest first",
    params(AuditQuery),
    responses((status = 200, description = "Audit entries", body = Vec<AuditEntry>))
)]
#[get("/audit?<query..>")]
pub async fn read_audit(
    app: &State<App>,
    _who: Access<Admin>,
    query: AuditQuery,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let mut filter = doc! {};
    if let Some(p) = query.principal {
        filter.insert("principal", p);
    }
    if let Some(a) = query.action {
        filter.insert("action", a);
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 10_000);
    Ok(Json(app.store.read_audit(filter, limit).await?))
}
