//! `/trd/webhook/...`: who the caller is, and whether the service can reach a callback target.

use std::net::IpAddr;
use std::time::Duration;

use rocket::serde::json::Json;
use rocket::{get, post, State};
use serde::Deserialize;
use trd_core::store::webhooks::target_of;
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::identity::{Access, Operate, Read};
use crate::webhooks::allow::AllowList;
use crate::webhooks::deliver::{reachable, validation_url, SendError};

/// The caller's IP address, as a JSON string.
#[utoipa::path(
    tag = "webhook",
    summary = "The caller's IP address",
    responses((status = 200, description = "The address, a JSON string", body = String, content_type = "application/json"))
)]
#[get("/webhook/whoami")]
pub fn whoami(_who: Access<Read>, ip: Option<IpAddr>) -> Json<String> {
    Json(ip.map(|i| i.to_string()).unwrap_or_default())
}

/// Optional JSON body of `POST /trd/webhook/validate/{host}/{port}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ValidateRequest {
    /// PEM certificate to trust for HTTPS; empty or absent: plain HTTP.
    #[serde(default)]
    crt: String,
    /// Sent back with every webhook delivery to this host and port.
    #[serde(default)]
    token: String,
}

/// How hard `validate` tries, from the query string.
#[derive(Debug, Default, rocket::FromForm, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValidateQuery {
    /// Seconds per attempt (0.1–60, default 5).
    timeout: Option<f64>,
    /// Extra attempts (at most 10).
    retries: Option<u32>,
}

/// Only checks: the token and certificate remembered for the target stay as they are.
#[utoipa::path(
    tag = "webhook",
    summary = "Check that a webhook target is reachable",
    params(("host" = String, Path), ("port" = u16, Path), ValidateQuery),
    responses((status = 200, description = "Whether it answered", body = bool, content_type = "application/json"))
)]
#[get("/webhook/validate/<host>/<port>?<query..>")]
pub async fn validate_get(
    app: &State<App>,
    _who: Access<Operate>,
    host: &str,
    port: u16,
    query: ValidateQuery,
) -> ApiResult<Json<bool>> {
    validate(app, host, port, query, None).await
}

/// With a body, the body's token and certificate replace those remembered for the target;
/// without one, only checks.
#[utoipa::path(
    tag = "webhook",
    summary = "Check a webhook target and remember its token (and certificate)",
    params(("host" = String, Path), ("port" = u16, Path), ValidateQuery),
    request_body(content = Option<ValidateRequest>, content_type = "application/json"),
    responses((status = 200, description = "Whether it answered", body = bool, content_type = "application/json"))
)]
#[post("/webhook/validate/<host>/<port>?<query..>", data = "<body>")]
pub async fn validate_post(
    app: &State<App>,
    _who: Access<Operate>,
    host: &str,
    port: u16,
    query: ValidateQuery,
    body: Option<Json<ValidateRequest>>,
) -> ApiResult<Json<bool>> {
    validate(app, host, port, query, body.map(|b| b.into_inner())).await
}

async fn validate(
    app: &App,
    host: &str,
    port: u16,
    query: ValidateQuery,
    body: Option<ValidateRequest>,
) -> ApiResult<Json<bool>> {
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
    let timeout = Duration::from_secs_f64(query.timeout.unwrap_or(5.0).clamp(0.1, 60.0));
    let retries = query.retries.unwrap_or(0).min(10);
    let allow = AllowList::new(&app.settings.webhook_allow);
    let crt = body.as_ref().map_or("", |b| b.crt.as_str());
    let url = validation_url(host, port, crt).map_err(refusal)?;
    let ok = reachable(&allow, &url, crt, timeout, retries)
        .await
        .map_err(refusal)?;
    if let (Some(body), Some(target)) = (body, target_of(&url)) {
        app.store
            .remember_validation(&target, &body.token, &body.crt)
            .await?;
    }
    Ok(Json(ok))
}

/// Why a target cannot be checked: outside the allow-list (403), or not a usable target (400).
fn refusal(e: SendError) -> ApiError {
    match e {
        SendError::Refused(r) => ApiError::Forbidden(r.to_string()),
        SendError::BadCertificate(e) => ApiError::BadRequest(format!("crt: {e}")),
        e => ApiError::BadRequest(e.to_string()),
    }
}
