//! Errors as Speechmatics clients print them: `{"code", "error", "detail"}`, with the
//! statuses the clients react to (404 unknown job, 423 a running job deleted without
//! `force`, 501 a feature TRD does not have).

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::Request;
use serde::Serialize;
use utoipa::ToSchema;

use super::config::ConfigError;
use crate::error::ApiError;
use crate::jobs::JobError;

/// The vendor's error body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SmErrorBody {
    /// The HTTP status, repeated.
    pub code: u16,
    /// A short name of the error (`Job not found`).
    pub error: String,
    /// What went wrong, in words a person can act on.
    pub detail: String,
}

impl SmErrorBody {
    pub fn new(status: Status, detail: impl Into<String>) -> Self {
        SmErrorBody {
            code: status.code,
            error: status.reason().unwrap_or("Error").to_owned(),
            detail: detail.into(),
        }
    }
}

/// Whether `path` is one of the face's, whose errors (including those Rocket and the identity
/// layer answer before a handler runs) clients read in the vendor's shape: `/v2/jobs…` and
/// the v1 paths `/<version>/user/<id>/jobs…`.
pub fn answers(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        parts.as_slice(),
        ["v2", "jobs", ..] | [_, "user", _, "jobs", ..]
    )
}

/// An error of a Speechmatics route: TRD's [`ApiError`] (kept whole, so its causes are logged
/// and its status chosen once), or one of the statuses only this protocol uses.
#[derive(Debug, thiserror::Error)]
pub enum SmError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The job is running and the delete did not say `force=true`.
    #[error("the job is still running; delete it with force=true to stop it")]
    Running,
    /// The transcript is asked for before the job is done.
    #[error("the job is not done yet (its status is {0}); poll the job until it is `done`")]
    NotReady(&'static str),
    /// A feature TRD has no stage for.
    #[error("{0}")]
    NotImplemented(String),
}

pub type SmResult<T> = Result<T, SmError>;

impl SmError {
    fn status(&self) -> Status {
        match self {
            SmError::Api(e) => e.status(),
            SmError::Running => Status::Locked,
            SmError::NotReady(_) => Status::NotFound,
            SmError::NotImplemented(_) => Status::NotImplemented,
        }
    }

    /// The short name clients show before the detail.
    fn title(&self) -> &'static str {
        match self {
            SmError::Api(ApiError::NotFound(_)) => "Job not found",
            SmError::Api(ApiError::BadRequest(_)) => "Invalid request",
            SmError::Api(ApiError::Unauthorized(_)) => "Permission Denied",
            SmError::Api(ApiError::Forbidden(_)) => "Forbidden",
            SmError::Api(ApiError::PayloadTooLarge(_)) => "File too large",
            SmError::Api(ApiError::Unavailable { .. }) => "Service Unavailable",
            SmError::Api(_) => "Internal Server Error",
            SmError::Running => "Job is running",
            SmError::NotReady(_) => "Job not ready",
            SmError::NotImplemented(_) => "Not Implemented",
        }
    }

    fn detail(&self) -> String {
        match self {
            SmError::Api(e) => e.message(),
            other => other.to_string(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        SmError::Api(ApiError::BadRequest(message.into()))
    }
}

impl From<JobError> for SmError {
    fn from(e: JobError) -> Self {
        SmError::Api(e.into())
    }
}

impl From<ConfigError> for SmError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::NotJson(_) | ConfigError::Invalid(_) => {
                SmError::bad_request(e.to_string())
            }
            ConfigError::Unsupported(_) => SmError::NotImplemented(e.to_string()),
        }
    }
}

impl<'r> Responder<'r, 'static> for SmError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        let body = SmErrorBody {
            code: status.code,
            error: self.title().to_owned(),
            detail: self.detail(),
        };
        if status.code >= 500 && status != Status::NotImplemented {
            tracing::error!(uri = %req.uri(), error = %body.detail, "request failed");
        }
        response::Response::build_from(Json(body).respond_to(req)?)
            .status(status)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_face_answers_errors_on_its_own_paths_only() {
        for path in [
            "/v2/jobs",
            "/v2/jobs/x/transcript",
            "/v1/user/1/jobs",
            "/v1.0/user/7/jobs/x",
        ] {
            assert!(answers(path), "{path}");
        }
        for path in ["/trd/audiofile/list", "/api/v1/token", "/v2", "/users"] {
            assert!(!answers(path), "{path}");
        }
    }
}
