//! Sending webhooks: the loop in the API process that delivers due outbox entries, and the
//! HTTP client both it and `validate` use (allow-list checked, address pinned, time-limited).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongodb::bson::Bson;
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use trd_core::logging::ErrorChain;
use trd_core::store::webhooks::{delivery_target, target_of, Delivery, Event};
use trd_core::store::StoreError;
use trd_core::{Settings, Store};

use super::allow::{AllowList, Refused};
use super::notices::NoticeRenderers;
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

/// Sends claimed deliveries and records their attempts.
struct Sender {
    store: Store,
    settings: Arc<Settings>,
    allow: AllowList,
    signer: Signer,
    renderers: NoticeRenderers,
}

impl Sender {
    /// Sends one delivery: the HTTP status it was answered with, or why it was not.
    async fn send(&self, delivery: &Delivery) -> Result<u16, String> {
        match &delivery.notice {
            Some(notice) => self.send_notice(delivery, notice).await,
            None => self.send_webhook(delivery).await,
        }
    }

    /// A protocol's notification, rendered by its face.
    async fn send_notice(
        &self,
        delivery: &Delivery,
        notice: &trd_core::domain::Notice,
    ) -> Result<u16, String> {
        let store_error = |e: StoreError| ErrorChain(&e).to_string();
        let record = self
            .store
            .audiofile(delivery.audiofile_id)
            .await
            .map_err(store_error)?
            .ok_or("the job was deleted before its notification was sent")?;
        let segments = self
            .store
            .segments_of(record.id)
            .await
            .map_err(store_error)?;
        let renderer = self
            .renderers
            .get(&notice.face)
            .ok_or_else(|| format!("no face '{}' renders notifications", notice.face))?;
        let rendered = renderer.render(notice, &record, &segments)?;
        let mut url =
            reqwest::Url::parse(&notice.url).map_err(|e| format!("bad URL {}: {e}", notice.url))?;
        url.query_pairs_mut().extend_pairs(&rendered.query);
        let timeout = Duration::from_millis(self.settings.webhook_timeout_ms);
        let client = checked_client(&self.allow, &url, "", timeout)
            .await
            .map_err(|e| e.to_string())?;
        let method = match notice.method.as_deref() {
            Some(m) if m.eq_ignore_ascii_case("put") => reqwest::Method::PUT,
            _ => reqwest::Method::POST,
        };
        let mut request = client
            .request(method, url)
            .header(reqwest::header::USER_AGENT, rendered.user_agent);
        if let Some(content_type) = &rendered.content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        for header in &notice.headers {
            if let Some((name, value)) = header.split_once(':') {
                request = request.header(name.trim(), value.trim());
            }
        }
        self.send_signed(request, rendered.body).await
    }

    /// Sends `body` with `request`, signed: the HTTP status it was answered with. The exact
    /// bytes signed are the bytes sent.
    async fn send_signed(
        &self,
        mut request: reqwest::RequestBuilder,
        body: Vec<u8>,
    ) -> Result<u16, String> {
        for (name, value) in self.signer.headers(&body) {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| format!("connection failed: {e}"))?;
        Ok(response.status().as_u16())
    }

    /// A TRD webhook: the file's result, POSTed to `<url>/<file id>`.
    async fn send_webhook(&self, delivery: &Delivery) -> Result<u16, String> {
        let Self {
            store,
            settings,
            allow,
            ..
        } = self;
        let address = format!(
            "{}/{}",
            delivery.url.trim_end_matches('/'),
            delivery.audiofile_id.to_hex()
        );
        let url = reqwest::Url::parse(&address).map_err(|e| format!("bad URL {address}: {e}"))?;
        let validation = match target_of(&url) {
            Some(target) => store
                .validation_for(&target)
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
        let body = serde_json::to_vec(&payload).map_err(|e| format!("payload: {e}"))?;
        let timeout = Duration::from_millis(settings.webhook_timeout_ms);
        let client = checked_client(allow, &url, &crt, timeout)
            .await
            .map_err(|e| e.to_string())?;
        let request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        self.send_signed(request, body).await
    }

    /// Sends one claimed delivery and records the attempt.
    async fn attempt(&self, delivery: Delivery) {
        let settings = &self.settings;
        let (outcome, delivered) = match self.send(&delivery).await {
            Ok(code) => (format!("HTTP {code}"), (200..300).contains(&code)),
            Err(e) => (e, false),
        };
        let backoff = Duration::from_millis(settings.webhook_backoff_ms);
        match self
            .store
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
    }
}

/// Sends in flight per target.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<HashMap<String, usize>>>);

impl InFlight {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take(&self, target: String) -> Slot {
        *self.counts().entry(target.clone()).or_default() += 1;
        Slot {
            in_flight: self.clone(),
            target,
        }
    }

    /// The targets with no free slot.
    fn full(&self, per_target: usize) -> Vec<String> {
        self.counts()
            .iter()
            .filter(|&(_, &n)| n >= per_target)
            .map(|(target, _)| target.clone())
            .collect()
    }
}

/// One send's slot at its target, given back when dropped, however the send ends.
struct Slot {
    in_flight: InFlight,
    target: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.in_flight.counts();
        if let Some(n) = counts.get_mut(&self.target) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.target);
            }
        }
    }
}

/// Runs until `shutdown`: queues ended files' webhooks and sends whatever is due, signed by
/// `signer` (notices rendered by their face's renderer in `renderers`): up to
/// `webhook_concurrency` sends at once, at most `webhook_per_host` of them to one target. Only deliveries whose target has a free slot are claimed, so a delivery is
/// never held (leased but not sent) waiting for one, and a target that never answers delays
/// only its own deliveries.
pub async fn run(
    store: Store,
    settings: Arc<Settings>,
    signer: Signer,
    renderers: NoticeRenderers,
    shutdown: CancellationToken,
) {
    match store.backfill_webhooks_due().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            files = n,
            "files ended before this version flagged for their webhooks"
        ),
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "could not flag older files for their webhooks")
        }
    }
    match store.backfill_delivery_targets().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deliveries = n, "webhook deliveries given their target"),
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "could not give older webhook deliveries their target")
        }
    }
    let lease = Duration::from_millis(settings.webhook_timeout_ms * 3);
    let sender = Arc::new(Sender {
        allow: AllowList::new(&settings.webhook_allow),
        store,
        settings,
        signer,
        renderers,
    });
    let (store, settings) = (&sender.store, &sender.settings);
    let in_flight = InFlight::default();
    let mut sending = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            // A send ended: its slot is free for the next due delivery, now.
            Some(ended) = sending.join_next() => {
                if let Err(e) = ended {
                    tracing::error!(error = %e, "a webhook send did not end normally");
                }
            }
            _ = tick.tick() => {
                if let Err(e) = store.enqueue_ended_webhooks().await {
                    tracing::warn!(error = %ErrorChain(&e), "could not queue webhooks of ended files");
                }
            }
        }
        while sending.len() < settings.webhook_concurrency {
            let busy = in_flight.full(settings.webhook_per_host);
            let delivery = match store.claim_due_delivery(lease, &busy).await {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "could not read the webhook outbox");
                    break;
                }
            };
            let slot = in_flight.take(delivery_target(&delivery.url));
            let sender = sender.clone();
            sending.spawn(async move {
                sender.attempt(delivery).await;
                drop(slot);
            });
        }
    }
    // Nothing new is claimed; the sends in hand end (each within `webhook_timeout_ms`) and
    // are recorded.
    while sending.join_next().await.is_some() {}
}
