//! A request refused before its handler ran (no credential, no scope, a foreign host, too many
//! requests): kept in the request so the catcher renders it as the contract's JSON error, with
//! the headers it needs (`WWW-Authenticate`, `Retry-After`).

use std::sync::Mutex;

use rocket::http::{Header, Status};
use rocket::Request;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    pub message: String,
    /// Seconds to wait (429, 503).
    pub retry_after: Option<u64>,
}

impl Refusal {
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Refusal {
            status: Status::Unauthorized,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Refusal {
            status: Status::Forbidden,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn too_many(message: impl Into<String>, retry_after: u64) -> Self {
        Refusal {
            status: Status::TooManyRequests,
            message: message.into(),
            retry_after: Some(retry_after.max(1)),
        }
    }

    /// Every slot for the work asked for is taken (503).
    pub fn busy(message: impl Into<String>, retry_after: u64) -> Self {
        Refusal {
            status: Status::ServiceUnavailable,
            message: message.into(),
            retry_after: Some(retry_after.max(1)),
        }
    }

    /// The client sent its request too slowly (408).
    pub fn too_slow(message: impl Into<String>) -> Self {
        Refusal {
            status: Status::RequestTimeout,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn misdirected(host: &str) -> Self {
        Refusal {
            status: Status::MisdirectedRequest,
            message: format!(
                "this service does not answer to the host name '{host}' (setting `allowed_hosts`)"
            ),
            retry_after: None,
        }
    }

    /// The headers the status calls for.
    pub fn headers(&self) -> Vec<Header<'static>> {
        let mut headers = Vec::new();
        if self.status == Status::Unauthorized {
            headers.push(Header::new("WWW-Authenticate", "Bearer realm=\"trd\""));
        }
        if let Some(seconds) = self.retry_after {
            headers.push(Header::new("Retry-After", seconds.to_string()));
        }
        headers
    }
}

#[derive(Default)]
struct Slot(Mutex<Option<Refusal>>);

/// Keeps the refusal for the catcher.
pub fn keep(req: &Request<'_>, refusal: Refusal) {
    *req.local_cache(Slot::default)
        .0
        .lock()
        .expect("refusal slot") = Some(refusal);
}

/// The refusal kept for this request, if any.
pub fn kept(req: &Request<'_>) -> Option<Refusal> {
    req.local_cache(Slot::default)
        .0
        .lock()
        .expect("refusal slot")
        .clone()
}
