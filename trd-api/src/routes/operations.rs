//! `/trd/health` and `/trd/metrics`: what operators and their monitoring poll.

use std::collections::BTreeMap;
use std::time::Duration;

use rocket::http::{ContentType, Status};
use rocket::serde::json::Json;
use rocket::{get, State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;
use crate::error::ErrorDetail;
use crate::identity::{Access, Read};
use crate::metrics::RequestCounter;

/// How long a dependency may take to answer a health check before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// `GET /trd/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every dependency answers, `unavailable` otherwise.
    status: HealthStatus,
    mongodb: Dependency,
    rabbitmq: Dependency,
    /// Per stage queue (and its dead-letter queue): messages ready and consumers attached.
    queues: BTreeMap<String, QueueHealth>,
    /// On 503: the contract's error detail, naming what is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dependency {
    ok: bool,
    /// What failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl<T> From<&Result<T, String>> for Dependency {
    fn from(r: &Result<T, String>) -> Self {
        Dependency {
            ok: r.is_ok(),
            error: r.as_ref().err().cloned(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueHealth {
    messages: u32,
    consumers: u32,
}

/// MongoDB and RabbitMQ reachability and every queue's depth and consumers: 200 when all
/// answer, 503 (naming what is down, in the contract's error shape too) when one does not.
#[utoipa::path(
    tag = "operations",
    summary = "Dependencies and queue consumers",
    responses(
        (status = 200, description = "Everything answers", body = Health),
        (status = 503, description = "A dependency is down (named in `error.message`)", body = Health),
    )
)]
#[get("/health")]
pub async fn health(app: &State<App>, _who: Access<Read>) -> (Status, Json<Health>) {
    let (mongo, queues) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, app.store.ping()),
        tokio::time::timeout(CHECK_TIMEOUT, app.queue.inspect()),
    );
    let no_answer = || format!("no answer within {} s", CHECK_TIMEOUT.as_secs());
    let mongo = match mongo {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(crate::error::chain(&e)),
        Err(_) => Err(no_answer()),
    };
    let queues = match queues {
        Ok(Ok(q)) if app.queue.is_connected() => Ok(q),
        Ok(Ok(_)) => Err("the connection is closed".to_owned()),
        Ok(Err(e)) => Err(crate::error::chain(&e)),
        Err(_) => Err(no_answer()),
    };
    let mut body = Health {
        status: HealthStatus::Ok,
        mongodb: Dependency::from(&mongo),
        rabbitmq: Dependency::from(&queues),
        queues: queues
            .as_ref()
            .map(|qs| {
                qs.iter()
                    .map(|q| {
                        let health = QueueHealth {
                            messages: q.messages,
                            consumers: q.consumers,
                        };
                        (q.name.clone(), health)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        error: None,
    };
    let down: Vec<String> = [("MongoDB", &mongo.err()), ("RabbitMQ", &queues.err())]
        .into_iter()
        .filter_map(|(name, e)| {
            e.as_ref().map(|e| match e.starts_with(name) {
                true => e.clone(),
                false => format!("{name} is unavailable: {e}"),
            })
        })
        .collect();
    if down.is_empty() {
        return (Status::Ok, Json(body));
    }
    tracing::warn!(problems = %down.join("; "), "health check failed");
    let status = Status::ServiceUnavailable;
    body.status = HealthStatus::Unavailable;
    body.error = Some(ErrorDetail::new(status, down.join("; ")));
    (status, Json(body))
}

/// Prometheus text exposition format (version 0.0.4).
#[utoipa::path(
    tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
pub async fn metrics(
    app: &State<App>,
    _who: Access<Read>,
    requests: &State<RequestCounter>,
) -> (ContentType, String) {
    let body = crate::metrics::render(app, requests).await;
    (
        ContentType::new("text", "plain").with_params([("version", "0.0.4"), ("charset", "utf-8")]),
        body,
    )
}
