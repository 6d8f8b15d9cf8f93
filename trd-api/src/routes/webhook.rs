//! `/trd/webhook/...`: who the caller is, and whether the service can reach a callback target.

use std::net::IpAddr;
use std::time::Duration;

use rocket::serde::json::Json;
use rocket::{get, post, State};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::guards::App;
use crate::webhooks::allow::AllowList;
use crate::webhooks::deliver::{reachable, SendError};
use crate::webhooks::outbox::remember_validation;

/// The caller's IP address, as a JSON string.
#[utoipa::path(tag = "webhook", summary = "The caller's IP address", responses((status = 200, description = "The address, a JSON string", body = String, content_type = "application/json"), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/webhook/whoami")]
pub fn whoami(ip: Option<IpAddr>) -> Json<Value> {
    Json(Value::String(ip.map(|i| i.to_string()).unwrap_or_default()))
}

#[derive(Debug, Default, Deserialize)]
pub struct ValidateBody {
    #[serde(default)]
    crt: String,
    #[serde(default)]
    token: String,
}

#[utoipa::path(tag = "webhook", summary = "Check that a webhook target is reachable", params(("host" = String, Path), ("port" = u16, Path), ("timeout" = Option<f64>, Query, description = "Seconds per attempt (0.1–60, default 5)"), ("retries" = Option<u32>, Query, description = "Extra attempts (at most 10)")), responses((status = 200, description = "Whether it answered", body = bool, content_type = "application/json"), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[get("/webhook/validate/<host>/<port>?<timeout>&<retries>")]
pub async fn validate_get(
    app: &State<App>,
    host: &str,
    port: u16,
    timeout: Option<f64>,
    retries: Option<u32>,
) -> ApiResult<Json<Value>> {
    validate(app, host, port, timeout, retries, ValidateBody::default()).await
}

#[utoipa::path(tag = "webhook", summary = "Check a webhook target and remember its token (and certificate)", params(("host" = String, Path), ("port" = u16, Path), ("timeout" = Option<f64>, Query, description = "Seconds per attempt (0.1–60, default 5)"), ("retries" = Option<u32>, Query, description = "Extra attempts (at most 10)")), request_body(content = Option<crate::openapi::ValidateRequest>, content_type = "application/json"), responses((status = 200, description = "Whether it answered", body = bool, content_type = "application/json"), (status = "default", description = "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`", body = crate::openapi::ErrorBody)))]
#[post("/webhook/validate/<host>/<port>?<timeout>&<retries>", data = "<body>")]
pub async fn validate_post(
    app: &State<App>,
    host: &str,
    port: u16,
    timeout: Option<f64>,
    retries: Option<u32>,
    body: Option<Json<ValidateBody>>,
) -> ApiResult<Json<Value>> {
    validate(
        app,
        host,
        port,
        timeout,
        retries,
        body.map(|b| b.into_inner()).unwrap_or_default(),
    )
    .await
}

async fn validate(
    app: &App,
    host: &str,
    port: u16,
    timeout: Option<f64>,
    retries: Option<u32>,
    body: ValidateBody,
) -> ApiResult<Json<Value>> {
    if host.is_empty()
        || host.len() > 253
        || host
            .chars()
            .any(|c| c.is_control() || c == '/' || c.is_whitespace())
    {
        return Err(ApiError::BadRequest(format!(
            "'{host}' is not a host name or address"
        )));
    }
    let timeout = Duration::from_secs_f64(timeout.unwrap_or(5.0).clamp(0.1, 60.0));
    let retries = retries.unwrap_or(0).min(10);
    let allow = AllowList::new(&app.settings.webhook_allow);
    let ok = match reachable(&allow, host, port, &body.crt, timeout, retries).await {
        Ok(ok) => ok,
        Err(SendError::Refused(r)) => return Err(ApiError::Forbidden(r.to_string())),
        Err(SendError::BadCertificate(e)) => return Err(ApiError::BadRequest(format!("crt: {e}"))),
        Err(e) => return Err(ApiError::BadRequest(e.to_string())),
    };
    remember_validation(app, &format!("{host}:{port}"), &body.token, &body.crt).await?;
    Ok(Json(Value::Bool(ok)))
}
