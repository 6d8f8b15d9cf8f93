//! The API's one error type, turned into the contract's JSON error body in one place, with its
//! OpenAPI response declared once (see [`crate::openapi`]).

use std::error::Error as StdError;

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::Request;
use serde::Serialize;
use trd_core::queue::QueueError;
use trd_core::store::StoreError;
use utoipa::ToSchema;

use crate::jobs::JobError;
use trd_core::domain::Status as FileStatus;

pub type BoxError = Box<dyn StdError + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// No valid credential (a failed log-in, a spent refresh token).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A source the service fetched from answered this status (a UWebASR `?url=`).
    #[error("{message}")]
    Upstream { status: u16, message: String },
    /// Every slot for the work asked for is taken: 503 with `Retry-After`.
    #[error("{message}")]
    Busy { message: String, retry_after: u64 },
    /// A dependency (MongoDB, RabbitMQ) does not answer: 503, naming it.
    #[error("{dependency} is unavailable")]
    Unavailable {
        dependency: &'static str,
        #[source]
        source: BoxError,
    },
    /// A bug or an unexpected failure: 500, logged with its whole cause chain.
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl ApiError {
    pub fn internal(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        ApiError::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    pub fn status(&self) -> Status {
        match self {
            ApiError::BadRequest(_) => Status::BadRequest,
            ApiError::NotFound(_) => Status::NotFound,
            ApiError::Unauthorized(_) => Status::Unauthorized,
            ApiError::Forbidden(_) => Status::Forbidden,
            ApiError::Conflict(_) => Status::Conflict,
            ApiError::PayloadTooLarge(_) => Status::PayloadTooLarge,
            ApiError::Busy { .. } | ApiError::Unavailable { .. } => Status::ServiceUnavailable,
            ApiError::Upstream { status, .. } => {
                Status::from_code(*status).unwrap_or(Status::BadGateway)
            }
            ApiError::Internal { .. } => Status::InternalServerError,
        }
    }

    /// Seconds a client should wait before trying again, for a 503 that says so.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Busy { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The headers the error calls for (`Retry-After`).
    pub fn headers(&self) -> Vec<rocket::http::Header<'static>> {
        self.retry_after()
            .map(|s| rocket::http::Header::new("Retry-After", s.to_string()))
            .into_iter()
            .collect()
    }

    /// The message a client reads: the error and every cause under it.
    pub fn message(&self) -> String {
        chain(self)
    }
}

/// An error and its causes, `outer: inner: innermost`.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    trd_core::logging::ErrorChain(error).to_string()
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => ApiError::Unavailable {
                dependency: "MongoDB",
                source: Box::new(cause),
            },
            other => ApiError::internal("the store failed", other),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        ApiError::Unavailable {
            dependency: "RabbitMQ",
            source: Box::new(e),
        }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NotFound(_) | JobError::NoSuchAudio(_) => ApiError::NotFound(e.to_string()),
            JobError::NotStartable { .. }
            | JobError::NotRunning { .. }
            | JobError::NameTaken(_) => ApiError::Conflict(e.to_string()),
            JobError::InvalidOptions(_)
            | JobError::InvalidLocation(_)
            | JobError::UnsafePath(_) => ApiError::BadRequest(e.to_string()),
            JobError::EmptyAudio => ApiError::BadRequest(e.to_string()),
            JobError::Busy { retry_after } | JobError::NoWorker { retry_after, .. } => {
                ApiError::Busy {
                    message: e.to_string(),
                    retry_after,
                }
            }
            // The normalizer fails a file it cannot decode: the audio is the client's mistake.
            JobError::Failed { status, ref reason } if status <= FileStatus::Normalizing => {
                ApiError::BadRequest(format!("the audio cannot be decoded: {reason}"))
            }
            JobError::Failed { .. } => ApiError::Internal {
                context: format!("recognition failed: {e}"),
                source: None,
            },
            JobError::Gone => ApiError::Conflict(e.to_string()),
            JobError::Store(e) => e.into(),
            JobError::Queue(e) => e.into(),
            JobError::Io { context, source } => ApiError::internal(context, source),
            JobError::Storage { .. } => ApiError::Unavailable {
                dependency: "the work directory",
                source: Box::new(e),
            },
        }
    }
}

impl From<trd_core::domain::InvalidName> for ApiError {
    fn from(e: trd_core::domain::InvalidName) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<trd_core::store::PageError> for ApiError {
    fn from(e: trd_core::store::PageError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<trd_core::domain::InvalidAudioFileId> for ApiError {
    fn from(e: trd_core::domain::InvalidAudioFileId) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

/// The contract's error body: `{"error": {"status", "reason", "message"}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated.
    pub status: u16,
    /// The status's reason phrase (`Not Found`).
    pub reason: String,
    /// What went wrong, in words a person can act on.
    pub message: String,
}

impl ErrorDetail {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        ErrorDetail {
            status: status.code,
            reason: status.reason().unwrap_or("Error").to_owned(),
            message: message.into(),
        }
    }
}

impl ErrorBody {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail::new(status, message),
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        let message = self.message();
        if status.code >= 500 {
            tracing::error!(uri = %req.uri(), error = %message, "request failed");
        }
        let mut response =
            response::Response::build_from(Json(ErrorBody::new(status, message)).respond_to(req)?);
        for header in self.headers() {
            response.header(header);
        }
        response.status(status).ok()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// JSON errors for whatever Rocket itself rejects (unknown routes, bad bodies, limits) and for
/// requests the identity layer refused before their handler (with that refusal's headers).
/// On a face's paths the body is in that face's error shape (Speechmatics' for its paths).
#[rocket::catch(default)]
pub fn default_catcher(status: Status, req: &Request<'_>) -> Caught {
    let caught = caught(status, req);
    let CaughtBody::Trd(trd) = &caught.body else {
        return caught;
    };
    let (status, message) = (caught.status, trd.error.message.clone());
    let path = req.uri().path().as_str();
    let body = if crate::faces::speechmatics::error::answers(path) {
        CaughtBody::Speechmatics(crate::faces::speechmatics::error::SmErrorBody::new(
            status, message,
        ))
    } else if crate::faces::openai::answers(path) {
        CaughtBody::OpenAi(crate::faces::openai::OpenAiErrorBody::new(
            status, message, None,
        ))
    } else if crate::faces::whisper::answers(path) {
        CaughtBody::Whisper(crate::faces::whisper::WhisperErrorBody { detail: message })
    } else if crate::faces::deepspeech::stt::answers(path) {
        CaughtBody::DeepSpeech(crate::faces::deepspeech::stt::DsErrorBody::new(
            status, message,
        ))
    } else if crate::faces::uwebasr::answers(path) {
        let (content_type, bytes) = crate::faces::uwebasr::caught(req, status, &message);
        CaughtBody::Text(content_type, bytes)
    } else {
        return caught;
    };
    Caught { body, ..caught }
}

fn caught(status: Status, req: &Request<'_>) -> Caught {
    if let Some(refusal) = crate::identity::refusal::kept(req) {
        return Caught {
            status: refusal.status,
            body: CaughtBody::Trd(ErrorBody::new(refusal.status, &refusal.message)),
            headers: refusal.headers(),
        };
    }
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
    Caught {
        status,
        body: CaughtBody::Trd(ErrorBody::new(status, message)),
        headers: Vec::new(),
    }
}

/// What the catcher answers: the JSON error body, its status and any headers it calls for.
pub struct Caught {
    status: Status,
    body: CaughtBody,
    headers: Vec<rocket::http::Header<'static>>,
}

/// The error body in the shape of the face whose path was asked for.
#[derive(Serialize)]
#[serde(untagged)]
enum CaughtBody {
    Trd(ErrorBody),
    Speechmatics(crate::faces::speechmatics::error::SmErrorBody),
    OpenAi(crate::faces::openai::OpenAiErrorBody),
    Whisper(crate::faces::whisper::WhisperErrorBody),
    DeepSpeech(crate::faces::deepspeech::stt::DsErrorBody),
    /// A face whose errors are not JSON (UWebASR writes them in the format asked for).
    #[serde(skip)]
    Text(rocket::http::ContentType, Vec<u8>),
}

impl<'r> Responder<'r, 'static> for Caught {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut response = match self.body {
            CaughtBody::Text(content_type, bytes) => {
                let mut response = response::Response::build();
                response
                    .header(content_type)
                    .sized_body(bytes.len(), std::io::Cursor::new(bytes));
                response
            }
            body => response::Response::build_from(Json(body).respond_to(req)?),
        };
        response.status(self.status);
        for header in self.headers {
            response.header(header);
        }
        response.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn messages_keep_the_cause_chain() {
        let e = ApiError::internal(
            "storing the upload",
            Outer(std::io::Error::other("disk full")),
        );
        assert_eq!(e.message(), "storing the upload: outer: disk full");
        assert_eq!(e.status(), Status::InternalServerError);
    }

    #[test]
    fn a_cause_repeating_its_wrapper_is_said_once() {
        let e = ApiError::Unavailable {
            dependency: "RabbitMQ",
            source: "RabbitMQ is unavailable: connection refused".into(),
        };
        assert_eq!(e.message(), "RabbitMQ is unavailable: connection refused");
    }

    #[test]
    fn a_queue_outage_names_rabbitmq() {
        let e = ApiError::Unavailable {
            dependency: "RabbitMQ",
            source: "connection refused".into(),
        };
        assert_eq!(e.message(), "RabbitMQ is unavailable: connection refused");
        assert_eq!(e.status(), Status::ServiceUnavailable);
    }
}
