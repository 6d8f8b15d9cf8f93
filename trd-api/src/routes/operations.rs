//! `/trd/health` and `/trd/metrics`: what operators and their monitoring poll.

use std::collections::BTreeMap;
use std::time::Duration;

use rocket::http::{ContentType, Status};
use rocket::serde::json::Json;
use rocket::{get, State};
use serde_json::{json, Value};

use crate::error::error_body;
use crate::guards::App;
use crate::metrics::RequestCounter;

/// How long a dependency may take to answer a health check before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// MongoDB and RabbitMQ reachability and every queue's depth and consumers: 200 when all
/// answer, 503 (naming what is down, in the contract's error shape too) when one does not.
#[utoipa::path(
    tag = "operations",
    summary = "Dependencies and queue consumers",
    responses(
        (status = 200, description = "Everything answers", body = crate::openapi::Health),
        (status = 503, description = "A dependency is down (named in `error.message`)", body = crate::openapi::Health),
    )
)]
#[get("/health")]
pub async fn health(app: &State<App>) -> (Status, Json<Value>) {
    let (mongo, queues) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, app.store.ping()),
        tokio::time::timeout(CHECK_TIMEOUT, app.queue.inspect()),
    );
    let mongo = match mongo {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    };
    let queues = match queues {
        Ok(Ok(q)) if app.queue.is_connected() => Ok(q),
        Ok(Ok(_)) => Err("the connection is closed".to_owned()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    };
    fn dependency<T>(r: &Result<T, String>) -> Value {
        match r {
            Ok(_) => json!({"ok": true}),
            Err(e) => json!({"ok": false, "error": e}),
        }
    }
    let mut body = json!({
        "status": "ok",
        "mongodb": dependency(&mongo),
        "rabbitmq": dependency(&queues),
        "queues": queues.as_ref().map(|qs| {
            qs.iter()
                .map(|q| (q.name.clone(), json!({"messages": q.messages, "consumers": q.consumers})))
                .collect::<BTreeMap<_, _>>()
        }).unwrap_or_default(),
    });
    let down: Vec<String> = [("MongoDB", &mongo.err()), ("RabbitMQ", &queues.err())]
        .into_iter()
        .filter_map(|(name, e)| e.as_ref().map(|e| format!("{name} is unavailable: {e}")))
        .collect();
    if down.is_empty() {
        return (Status::Ok, Json(body));
    }
    tracing::warn!(problems = %down.join("; "), "health check failed");
    let status = Status::ServiceUnavailable;
    body["status"] = json!("unavailable");
    let error: Value =
        serde_json::from_str(&error_body(status, &down.join("; "))).expect("error bodies are JSON");
    body["error"] = error["error"].clone();
    (status, Json(body))
}

/// Prometheus text exposition format (version 0.0.4).
#[utoipa::path(
    tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
pub async fn metrics(app: &State<App>, requests: &State<RequestCounter>) -> (ContentType, String) {
    let body = crate::metrics::render(app, requests).await;
    (
        ContentType::new("text", "plain").with_params([("version", "0.0.4"), ("charset", "utf-8")]),
        body,
    )
}
