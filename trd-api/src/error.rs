//! API errors, converted to the contract's JSON error body once, here.

use rocket::http::{ContentType, Status};
use rocket::response::{self, Responder};
use rocket::Request;
use serde_json::json;
use trd_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0} is unavailable")]
    Unavailable(&'static str, String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            ApiError::Unavailable("MongoDB", e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl From<trd_core::queue::QueueError> for ApiError {
    fn from(e: trd_core::queue::QueueError) -> Self {
        ApiError::Unavailable("RabbitMQ", e.to_string())
    }
}

impl From<trd_core::domain::InvalidName> for ApiError {
    fn from(e: trd_core::domain::InvalidName) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<trd_core::domain::InvalidAudioFileId> for ApiError {
    fn from(e: trd_core::domain::InvalidAudioFileId) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl ApiError {
    pub fn status(&self) -> Status {
        match self {
            ApiError::BadRequest(_) => Status::BadRequest,
            ApiError::NotFound(_) => Status::NotFound,
            ApiError::Forbidden(_) => Status::Forbidden,
            ApiError::Conflict(_) => Status::Conflict,
            ApiError::PayloadTooLarge(_) => Status::PayloadTooLarge,
            ApiError::Unavailable(..) => Status::ServiceUnavailable,
            ApiError::Internal(_) => Status::InternalServerError,
        }
    }

    fn message(&self) -> String {
        match self {
            // The detail usually names the dependency already ("MongoDB is unavailable: …").
            ApiError::Unavailable(dep, detail) if detail.starts_with(dep) => detail.clone(),
            ApiError::Unavailable(dep, detail) => format!("{dep} is unavailable: {detail}"),
            other => other.to_string(),
        }
    }
}

/// The contract's error body: `{"error": {"status", "reason", "message"}}`.
pub fn error_body(status: Status, message: &str) -> String {
    json!({"error": {
        "status": status.code,
        "reason": status.reason().unwrap_or("Error"),
        "message": message,
    }})
    .to_string()
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        if status.code >= 500 {
            tracing::error!(uri = %req.uri(), error = %self.message(), "request failed");
        }
        let body = error_body(status, &self.message());
        response::Response::build_from((ContentType::JSON, body).respond_to(req)?)
            .status(status)
            .ok()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// JSON errors for whatever Rocket itself rejects (unknown routes, bad bodies, limits).
#[rocket::catch(default)]
pub fn default_catcher(status: Status, req: &Request<'_>) -> (Status, (ContentType, String)) {
    let message = match status.code {
        404 => format!("no such resource: {}", req.uri().path()),
        413 => "the upload exceeds the configured size limit".to_owned(),
        422 => "the request is malformed".to_owned(),
        _ => status.reason().unwrap_or("error").to_owned(),
    };
    let status = if status.code == 422 {
        Status::BadRequest
    } else {
        status
    };
    (status, (ContentType::JSON, error_body(status, &message)))
}
