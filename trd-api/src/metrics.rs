//! `/trd/metrics`: Prometheus text exposition, computed at scrape time.
//!
//! The API is the one scrape target for the whole service, wherever its workers run:
//! - files by control and status, and webhook deliveries by state: MongoDB aggregations;
//! - stage durations, audio seconds and the recognizer's real-time factor: the cumulative
//!   counters the workers keep in MongoDB (`trd_core::store::stage_metrics`);
//! - queue depths and consumers: passive declares on RabbitMQ;
//! - HTTP requests by route and status: counted in this process by [`RequestCounter`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Request, Response};
use trd_core::store::stage_metrics::{StageTimings, DURATION_BUCKETS};

use crate::app::App;

/// (method, route template, status code).
type RequestKey = (String, String, u16);

/// HTTP requests answered, by [`RequestKey`].
#[derive(Clone, Default)]
pub struct RequestCounter(Arc<Mutex<BTreeMap<RequestKey, u64>>>);

#[rocket::async_trait]
impl Fairing for RequestCounter {
    fn info(&self) -> Info {
        Info {
            name: "HTTP request counter",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        // The route template, not the path: ids and batch names would explode the label set.
        let route = req
            .route()
            .map(|r| r.uri.path().to_string())
            .unwrap_or_else(|| "unmatched".to_owned());
        let key = (req.method().as_str().to_owned(), route, res.status().code);
        *self.0.lock().expect("counter lock").entry(key).or_default() += 1;
    }
}

impl RequestCounter {
    fn snapshot(&self) -> Vec<(RequestKey, u64)> {
        let counts = self.0.lock().expect("counter lock");
        counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Prometheus text format, one family at a time.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The whole exposition. A dependency that does not answer leaves its families out and shows
/// as `trd_dependency_up 0`, so the scrape itself still succeeds.
pub async fn render(app: &App, requests: &RequestCounter) -> String {
    let mut out = Exposition::default();
    let (files, timings, deliveries, queues) = tokio::join!(
        app.store.files_by_control_and_status(),
        app.store.stage_timings(),
        app.store.deliveries_by_state(),
        tokio::time::timeout(std::time::Duration::from_secs(3), app.queue.inspect()),
    );
    let mongo_up = files.is_ok() && timings.is_ok();
    let queues = queues.ok().and_then(Result::ok);

    out.family(
        "trd_dependency_up",
        "gauge",
        "1 when the dependency answered this scrape.",
    );
    out.sample(
        "trd_dependency_up",
        &[("dependency", "mongodb")],
        f64::from(u8::from(mongo_up)),
    );
    out.sample(
        "trd_dependency_up",
        &[("dependency", "rabbitmq")],
        f64::from(u8::from(queues.is_some())),
    );

    if let Ok(files) = files {
        out.family(
            "trd_files",
            "gauge",
            "Registered files by control and status.",
        );
        for (control, status, n) in files {
            out.sample(
                "trd_files",
                &[("control", control.as_str()), ("status", status.as_str())],
                n as f64,
            );
        }
    }

    if let Some(queues) = queues {
        out.family(
            "trd_queue_messages",
            "gauge",
            "Messages ready in each stage queue and dead-letter queue.",
        );
        for q in &queues {
            out.sample(
                "trd_queue_messages",
                &[("queue", &q.name)],
                f64::from(q.messages),
            );
        }
        out.family(
            "trd_queue_consumers",
            "gauge",
            "Consumers attached to each queue.",
        );
        for q in &queues {
            out.sample(
                "trd_queue_consumers",
                &[("queue", &q.name)],
                f64::from(q.consumers),
            );
        }
    }

    if let Ok(timings) = timings {
        stage_families(&mut out, &timings);
    }

    if let Ok(deliveries) = deliveries {
        out.family(
            "trd_webhook_deliveries",
            "gauge",
            "Webhook deliveries by state (PENDING, DELIVERED, GAVE_UP).",
        );
        for (state, n) in deliveries {
            out.sample(
                "trd_webhook_deliveries",
                &[("state", state.as_str())],
                n as f64,
            );
        }
    }

    out.family(
        "trd_http_requests",
        "counter",
        "HTTP requests answered by this API process, by method, route and status.",
    );
    for ((method, route, status), n) in requests.snapshot() {
        out.sample(
            "trd_http_requests_total",
            &[
                ("method", &method),
                ("route", &route),
                ("status", &status.to_string()),
            ],
            n as f64,
        );
    }
    out.0
}

fn stage_families(out: &mut Exposition, timings: &[StageTimings]) {
    out.family(
        "trd_stage_duration_seconds",
        "histogram",
        "Wall-clock seconds per finished run: a file for normalize and diarize, a segment for recognize.",
    );
    for t in timings {
        for (bound, count) in DURATION_BUCKETS.iter().zip(&t.buckets) {
            out.sample(
                "trd_stage_duration_seconds_bucket",
                &[("stage", &t.stage), ("le", &number(*bound))],
                *count as f64,
            );
        }
        out.sample(
            "trd_stage_duration_seconds_bucket",
            &[("stage", &t.stage), ("le", "+Inf")],
            t.runs as f64,
        );
        out.sample(
            "trd_stage_duration_seconds_sum",
            &[("stage", &t.stage)],
            t.wall_seconds,
        );
        out.sample(
            "trd_stage_duration_seconds_count",
            &[("stage", &t.stage)],
            t.runs as f64,
        );
    }
    out.family(
        "trd_stage_audio_seconds",
        "counter",
        "Audio seconds processed per stage (speech seconds for recognize).",
    );
    for t in timings {
        out.sample(
            "trd_stage_audio_seconds_total",
            &[("stage", &t.stage)],
            t.audio_seconds,
        );
    }
    out.family(
        "trd_recognizer_real_time_factor",
        "gauge",
        "Recognizer seconds per second of speech, over every segment recognized so far.",
    );
    let rtf = timings
        .iter()
        .find(|t| t.stage == trd_core::domain::Stage::Recognize.name())
        .and_then(StageTimings::real_time_factor)
        .unwrap_or(0.0);
    out.sample("trd_recognizer_real_time_factor", &[], rtf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_numbers_are_prometheus_numbers() {
        let mut e = Exposition::default();
        e.sample("x", &[("a", "q\"b\\c\nd")], f64::INFINITY);
        assert_eq!(e.0, "x{a=\"q\\\"b\\\\c\\nd\"} +Inf\n");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(3.0), "3");
    }
}
