//! Sending webhooks: the loop in the API process that delivers due outbox entries, and the
//! HTTP client both it and `validate` use (allow-list checked, address pinned, time-limited).

use std::net::SocketAddr;
use std::time::Duration;

use mongodb::bson::Bson;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use trd_core::logging::ErrorChain;
use trd_core::store::webhooks::{Delivery, Event};
use trd_core::store::StoreError;
use trd_core::{Settings, Store};

use super::allow::{AllowList, Refused};
use super::signing::Signer;
use crate::shapes::TranscriptResult;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("'{0}' is not a usable http(s) URL")]
    BadUrl(String),
    #[error("the certificate is not valid PEM: {0}")]
    BadCertificate(String),
    #[error("{0}")]
    Http(String),
}

/// A client that connects only to `addr` for `host`, trusting `crt` (PEM) when one is given.
fn client_for(
    host: &str,
    addr: SocketAddr,
    crt: &str,
    timeout: Duration,
) -> Result<reqwest::Client, SendError> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(host, addr);
    if !crt.trim().is_empty() {
        let cert = reqwest::Certificate::from_pem(crt.as_bytes())
            .map_err(|e| SendError::BadCertificate(e.to_string()))?;
        builder = builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(cert);
    }
    builder.build().map_err(|e| SendError::Http(e.to_string()))
}

/// Checks the target against the allow-list and returns a client pinned to it.
pub async fn checked_client(
    allow: &AllowList,
    url: &reqwest::Url,
    crt: &str,
    timeout: Duration,
) -> Result<reqwest::Client, SendError> {
    let host = url
        .host_str()
        .ok_or_else(|| SendError::BadUrl(url.to_string()))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| SendError::BadUrl(url.to_string()))?;
    let addr = allow.check(host, port).await?;
    client_for(host, addr, crt, timeout)
}

/// The URL `validate` checks `host:port` with: HTTPS when a certificate is given, else HTTP.
/// An IPv6 address may be given bare (`::1`) or bracketed (`[::1]`).
pub fn validation_url(host: &str, port: u16, crt: &str) -> Result<reqwest::Url, SendError> {
    let scheme = if crt.trim().is_empty() {
        "http"
    } else {
        "https"
    };
    let host = match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]"),
        Err(_) => host.to_owned(),
    };
    reqwest::Url::parse(&format!("{scheme}://{host}:{port}/"))
        .map_err(|_| SendError::BadUrl(format!("{host}:{port}")))
}

/// Whether the target of `url` answers HTTP (or HTTPS trusting `crt`) at all.
pub async fn reachable(
    allow: &AllowList,
    url: &reqwest::Url,
    crt: &str,
    timeout: Duration,
    retries: u32,
) -> Result<bool, SendError> {
    let client = checked_client(allow, url, crt, timeout).await?;
    for attempt in 0..=retries {
        if client.get(url.clone()).send().await.is_ok() {
            return Ok(true);
        }
        if attempt < retries {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(false)
}

/// The `host:port` a URL reaches: what tokens are validated for, and what deliveries are
/// limited per.
pub fn host_port(url: &reqwest::Url) -> Option<String> {
    Some(format!(
        "{}:{}",
        url.host_str()?,
        url.port_or_known_default()?
    ))
}

/// What a webhook target receives (contract section 6): the file's result plus the token
/// validated for its host and port, and the event.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(flatten)]
    result: Notified,
    token: &'a str,
    event: Event,
}

/// The result part of a payload.
#[derive(Serialize)]
#[serde(untagged)]
enum Notified {
    /// Rendered when the file went away (reset, delete), as stored in the outbox.
    Snapshot(Value),
    /// Read now, for a file that ended.
    Current(Box<TranscriptResult>),
    /// The file went away without a snapshot: only its id is left to tell.
    Gone {
        #[serde(rename = "_id")]
        id: String,
    },
}

async fn notified(store: &Store, delivery: &Delivery) -> Result<Notified, StoreError> {
    if let Some(snapshot) = &delivery.payload {
        return Ok(Notified::Snapshot(
            Bson::Document(snapshot.clone()).into_relaxed_extjson(),
        ));
    }
    Ok(match store.audiofile(delivery.audiofile_id).await? {
        Some(record) => {
            let segments = store.segments_of(record.id).await?;
            Notified::Current(Box::new(TranscriptResult::new(&record, &segments)))
        }
        None => Notified::Gone {
            id: delivery.audiofile_id.to_hex(),
        },
    })
}

async fn send(
    store: &Store,
    settings: &Settings,
    allow: &AllowList,
    signer: &Signer,
    delivery: &Delivery,
) -> Result<u16, String> {
    let target = format!(
        "{}/{}",
        delivery.url.trim_end_matches('/'),
        delivery.audiofile_id.to_hex()
    );
    let url = reqwest::Url::parse(&target).map_err(|e| format!("bad URL {target}: {e}"))?;
    let validation = match host_port(&url) {
        Some(hp) => store
            .validation_for(&hp)
            .await
            .map_err(|e| ErrorChain(&e).to_string())?,
        None => None,
    };
    let (token, crt) = validation.map(|v| (v.token, v.crt)).unwrap_or_default();
    let payload = Payload {
        result: notified(store, delivery)
            .await
            .map_err(|e| ErrorChain(&e).to_string())?,
        token: &token,
        event: delivery.event,
    };
    // The exact bytes signed are the bytes sent.
    let body = serde_json::to_vec(&payload).map_err(|e| format!("payload: {e}"))?;
    let timeout = Duration::from_millis(settings.webhook_timeout_ms);
    let client = checked_client(allow, &url, &crt, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in signer.headers(&body) {
        request = request.header(name, value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| format!("connection failed: {e}"))?;
    Ok(response.status().as_u16())
}

/// Runs until `shutdown`: queues ended files' webhooks and sends whatever is due, signed by
/// `signer`.
pub async fn run(
    store: Store,
    settings: std::sync::Arc<Settings>,
    signer: Signer,
    shutdown: CancellationToken,
) {
    let allow = AllowList::new(&settings.webhook_allow);
    let backoff = Duration::from_millis(settings.webhook_backoff_ms);
    let lease = Duration::from_millis(settings.webhook_timeout_ms * 3);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = store.enqueue_ended_webhooks().await {
            tracing::warn!(error = %ErrorChain(&e), "could not queue webhooks of ended files");
            continue;
        }
        loop {
            let delivery = match store.claim_due_delivery(lease).await {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "could not read the webhook outbox");
                    break;
                }
            };
            let (outcome, delivered) =
                match send(&store, &settings, &allow, &signer, &delivery).await {
                    Ok(code) => (format!("HTTP {code}"), (200..300).contains(&code)),
                    Err(e) => (e, false),
                };
            match store
                .record_delivery_attempt(
                    &delivery,
                    outcome.clone(),
                    delivered,
                    settings.webhook_max_attempts,
                    backoff,
                )
                .await
            {
                Ok(state) => {
                    tracing::info!(file = %delivery.audiofile_id, url = %delivery.url, %outcome, ?state, "webhook attempt")
                }
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "could not record a webhook attempt")
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    }
}
