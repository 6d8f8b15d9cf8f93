//! The HTTP API as the CLI sees it: one blocking client, the server's JSON errors turned into
//! [`CliError`]s that carry the process exit code.

use std::path::Path;
use std::time::Duration;

use reqwest::blocking::{multipart, Client, Response};
use serde_json::Value;

/// Exit codes a script can rely on.
pub mod exit {
    pub const OK: u8 = 0;
    /// Anything unexpected (a local file unreadable, a malformed answer…).
    pub const FAILURE: u8 = 1;
    /// Bad command line (clap's own code).
    pub const USAGE: u8 = 2;
    /// The file, batch or id does not exist (HTTP 404).
    pub const NOT_FOUND: u8 = 3;
    /// The service refused the request (other 4xx: bad name, conflict, too large…).
    pub const REFUSED: u8 = 4;
    /// The service is unreachable or failed (5xx, connection refused, timeout).
    pub const UNAVAILABLE: u8 = 5;
    /// The batch ended, but some of its files FAILED.
    pub const FILES_FAILED: u8 = 6;
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    FilesFailed(String),
    #[error("{0}")]
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::NotFound(_) => exit::NOT_FOUND,
            CliError::Refused(_) => exit::REFUSED,
            CliError::Unavailable(_) => exit::UNAVAILABLE,
            CliError::FilesFailed(_) => exit::FILES_FAILED,
            CliError::Other(_) => exit::FAILURE,
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Other(e.to_string())
    }
}

pub type CliResult<T> = Result<T, CliError>;

pub struct Api {
    base: String,
    http: Client,
}

impl Api {
    /// `token`: a key or access token sent as `Authorization: Bearer` with every request.
    pub fn new(base: &str, token: Option<&str>) -> CliResult<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| {
                    CliError::Other("the token has characters a header cannot hold".into())
                })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            // Uploads and batch ZIPs can take long; the connection timeout catches dead hosts.
            .timeout(None)
            .build()
            .map_err(|e| CliError::Other(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}/trd{path}", self.base)
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> CliResult<Response> {
        let response = request.send().map_err(|e| {
            CliError::Unavailable(format!(
                "cannot reach the TRD service at {}: {e}",
                self.base
            ))
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("HTTP {status}: {}", text.trim()));
        Err(match status.as_u16() {
            404 => CliError::NotFound(message),
            400..=499 => CliError::Refused(message),
            _ => CliError::Unavailable(message),
        })
    }

    /// `GET /trd{path}` with query pairs, answered with JSON.
    pub fn get_json(&self, path: &str, query: &[(&str, String)]) -> CliResult<Value> {
        let response = self.send(self.http.get(self.url(path)).query(query))?;
        response
            .json()
            .map_err(|e| CliError::Other(format!("malformed answer from {path}: {e}")))
    }

    /// `POST {base}{path}` (a path from the root, not under `/trd`) with a JSON body,
    /// answered with JSON.
    pub fn post_json(&self, path: &str, body: &Value) -> CliResult<Value> {
        let response = self.send(self.http.post(format!("{}{path}", self.base)).json(body))?;
        response
            .json()
            .map_err(|e| CliError::Other(format!("malformed answer from {path}: {e}")))
    }

    /// `DELETE {base}{path}`, answered with JSON.
    pub fn delete_json(&self, path: &str) -> CliResult<Value> {
        let response = self.send(self.http.delete(format!("{}{path}", self.base)))?;
        response
            .json()
            .map_err(|e| CliError::Other(format!("malformed answer from {path}: {e}")))
    }

    /// `GET /trd{path}` with query pairs, the body as it comes (transcripts, ZIPs).
    pub fn get_raw(&self, path: &str, query: &[(&str, String)]) -> CliResult<Response> {
        self.send(self.http.get(self.url(path)).query(query))
    }

    /// Uploads files (streamed from disk) into a batch; answers `{filename: url}`.
    pub fn upload(&self, batch: Option<&str>, files: &[impl AsRef<Path>]) -> CliResult<Value> {
        let mut form = multipart::Form::new();
        if let Some(batch) = batch {
            form = form.text("batch", batch.to_owned());
        }
        for file in files {
            let file = file.as_ref();
            form = form
                .file("files", file)
                .map_err(|e| CliError::Other(format!("cannot read {}: {e}", file.display())))?;
        }
        let response = self.send(
            self.http
                .post(self.url("/audiofile/upload"))
                .multipart(form),
        )?;
        response
            .json()
            .map_err(|e| CliError::Other(format!("malformed answer to the upload: {e}")))
    }
}
