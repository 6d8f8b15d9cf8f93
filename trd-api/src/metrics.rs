//! `/trd/metrics`: the Prometheus exposition, computed at scrape time.
//!
//! The API is the one scrape target for the whole service, wherever its workers run:
//! - files by control and status, and webhook deliveries by state: MongoDB aggregations;
//! - stage durations, audio seconds and the recognizer's real-time factor: the cumulative
//!   counters the workers keep in MongoDB (`trd_core::store::stage_metrics`);
//! - queue depths and consumers: passive declares on RabbitMQ;
//! - HTTP requests by route and status: counted in this process by [`RequestCounter`].
//!
//! The `prometheus` crate writes it: each scrape registers the process's request counter and a
//! custom collector of what the dependencies answered ([`Readings`]) in a registry of its own,
//! which checks the families, and its text encoder writes format 0.0.4, the one Prometheus
//! servers and `promtool check metrics` read. (OpenMetrics, `prometheus-client`'s only text
//! format, names a counter's family without `_total` and its samples with it: read as 0.0.4,
//! which promtool does, those samples are untyped.)

use std::collections::HashMap;
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{IntCounterVec, Opts, Registry, TextEncoder};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Request, Response};
use trd_core::domain::{Control, Stage, Status};
use trd_core::queue::QueueFigures;
use trd_core::store::stage_metrics::{StageTimings, DURATION_BUCKETS};
use trd_core::store::webhooks::DeliveryState;

use crate::app::App;

/// How long RabbitMQ may take to answer a scrape before it counts as down.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(3);

/// A metric family, declared once so that its description and its samples agree.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

const DEPENDENCY_UP: Family = Family {
    name: "trd_dependency_up",
    help: "1 when the dependency answered this scrape (its families are missing otherwise).",
    kind: MetricType::GAUGE,
    labels: &["dependency"],
};
const FILES: Family = Family {
    name: "trd_files",
    help: "Registered files by control and status.",
    kind: MetricType::GAUGE,
    labels: &["control", "status"],
};
const QUEUE_MESSAGES: Family = Family {
    name: "trd_queue_messages",
    help: "Messages ready in each stage queue and dead-letter queue.",
    kind: MetricType::GAUGE,
    labels: &["queue"],
};
const QUEUE_CONSUMERS: Family = Family {
    name: "trd_queue_consumers",
    help: "Consumers attached to each queue.",
    kind: MetricType::GAUGE,
    labels: &["queue"],
};
const STAGE_DURATION: Family = Family {
    name: "trd_stage_duration_seconds",
    help: "Wall-clock seconds per finished run: a file for normalize and diarize, a segment for recognize.",
    kind: MetricType::HISTOGRAM,
    labels: &["stage"],
};
const STAGE_AUDIO: Family = Family {
    name: "trd_stage_audio_seconds_total",
    help: "Audio seconds processed per stage (speech seconds for recognize).",
    kind: MetricType::COUNTER,
    labels: &["stage"],
};
const REAL_TIME_FACTOR: Family = Family {
    name: "trd_recognizer_real_time_factor",
    help: "Recognizer seconds per second of speech, over every segment recognized so far.",
    kind: MetricType::GAUGE,
    labels: &[],
};
const WEBHOOK_DELIVERIES: Family = Family {
    name: "trd_webhook_deliveries",
    help: "Webhook deliveries by state (PENDING, DELIVERED, GAVE_UP).",
    kind: MetricType::GAUGE,
    labels: &["state"],
};
const HTTP_REQUESTS: Family = Family {
    name: "trd_http_requests_total",
    help: "HTTP requests answered by this API process, by method, route and status.",
    kind: MetricType::COUNTER,
    labels: &["method", "route", "status"],
};

/// The families [`Readings`] collects.
const READ_AT_SCRAPE: [&Family; 8] = [
    &DEPENDENCY_UP,
    &FILES,
    &QUEUE_MESSAGES,
    &QUEUE_CONSUMERS,
    &STAGE_DURATION,
    &STAGE_AUDIO,
    &REAL_TIME_FACTOR,
    &WEBHOOK_DELIVERIES,
];

impl Family {
    fn desc(&self) -> Desc {
        let labels = self.labels.iter().map(|l| (*l).to_owned()).collect();
        Desc::new(self.name.into(), self.help.into(), labels, HashMap::new())
            .expect("the families above have valid names and help")
    }

    fn with(&self, metrics: impl IntoIterator<Item = Metric>) -> MetricFamily {
        let mut family = MetricFamily::default();
        family.set_name(self.name.into());
        family.set_help(self.help.into());
        family.set_field_type(self.kind);
        family.set_metric(metrics.into_iter().collect());
        family
    }

    /// A sample's labels: `values` in the order of the family's label names.
    fn labelled(&self, values: &[&str]) -> Metric {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let pairs = self
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name((*name).to_owned());
                pair.set_value((*value).to_owned());
                pair
            })
            .collect();
        Metric::from_label(pairs)
    }

    fn gauge(&self, values: &[&str], value: f64) -> Metric {
        let mut gauge = proto::Gauge::default();
        gauge.set_value(value);
        let mut metric = self.labelled(values);
        metric.set_gauge(gauge);
        metric
    }

    fn counter(&self, values: &[&str], value: f64) -> Metric {
        let mut counter = proto::Counter::default();
        counter.set_value(value);
        let mut metric = self.labelled(values);
        metric.set_counter(counter);
        metric
    }

    /// A stage's histogram, from the cumulative bucket counts the workers keep.
    fn histogram(&self, values: &[&str], timings: &StageTimings) -> Metric {
        let buckets = DURATION_BUCKETS
            .iter()
            .zip(&timings.buckets)
            .map(|(bound, count)| {
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(*bound);
                bucket.set_cumulative_count(*count);
                bucket
            })
            .collect();
        let mut histogram = proto::Histogram::default();
        histogram.set_bucket(buckets);
        histogram.set_sample_count(timings.runs);
        histogram.set_sample_sum(timings.wall_seconds);
        let mut metric = self.labelled(values);
        metric.set_histogram(histogram);
        metric
    }
}

/// HTTP requests answered, by method, route template and status code.
#[derive(Clone)]
pub struct RequestCounter(IntCounterVec);

impl Default for RequestCounter {
    fn default() -> Self {
        let opts = Opts::new(HTTP_REQUESTS.name, HTTP_REQUESTS.help);
        Self(IntCounterVec::new(opts, HTTP_REQUESTS.labels).expect("a valid family"))
    }
}

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
        let status = res.status().code.to_string();
        self.0
            .with_label_values(&[req.method().as_str(), &route, &status])
            .inc();
    }
}

/// What MongoDB answered, all of it or nothing.
struct StoreFigures {
    files: Vec<(Control, Status, u64)>,
    timings: Vec<StageTimings>,
    deliveries: Vec<(DeliveryState, u64)>,
}

/// What the dependencies answered for one scrape: a collector for that scrape's registry. A
/// dependency that did not answer leaves its families out and shows as `trd_dependency_up 0`,
/// so the scrape itself still succeeds.
struct Readings {
    store: Option<StoreFigures>,
    queues: Option<Vec<QueueFigures>>,
    descs: Vec<Desc>,
}

impl Readings {
    fn new(store: Option<StoreFigures>, queues: Option<Vec<QueueFigures>>) -> Self {
        let descs = READ_AT_SCRAPE.iter().map(|f| f.desc()).collect();
        Self {
            store,
            queues,
            descs,
        }
    }

    async fn take(app: &App) -> Self {
        let (files, timings, deliveries, queues) = tokio::join!(
            app.store.files_by_control_and_status(),
            app.store.stage_timings(),
            app.store.deliveries_by_state(),
            tokio::time::timeout(QUEUE_TIMEOUT, app.queue.inspect()),
        );
        let store = match (files, timings, deliveries) {
            (Ok(files), Ok(timings), Ok(deliveries)) => Some(StoreFigures {
                files,
                timings,
                deliveries,
            }),
            _ => None,
        };
        Self::new(store, queues.ok().and_then(Result::ok))
    }
}

impl StoreFigures {
    fn families(&self) -> Vec<MetricFamily> {
        let rtf = self
            .timings
            .iter()
            .find(|t| t.stage == Stage::Recognize.name())
            .and_then(StageTimings::real_time_factor)
            .unwrap_or(0.0);
        vec![
            FILES.with(self.files.iter().map(|(control, status, n)| {
                FILES.gauge(&[control.as_str(), status.as_str()], *n as f64)
            })),
            STAGE_DURATION.with(
                self.timings
                    .iter()
                    .map(|t| STAGE_DURATION.histogram(&[&t.stage], t)),
            ),
            STAGE_AUDIO.with(
                self.timings
                    .iter()
                    .map(|t| STAGE_AUDIO.counter(&[&t.stage], t.audio_seconds)),
            ),
            REAL_TIME_FACTOR.with([REAL_TIME_FACTOR.gauge(&[], rtf)]),
            WEBHOOK_DELIVERIES.with(
                self.deliveries
                    .iter()
                    .map(|(state, n)| WEBHOOK_DELIVERIES.gauge(&[state.as_str()], *n as f64)),
            ),
        ]
    }
}

impl Collector for Readings {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let up = |dependency: &str, answered: bool| {
            DEPENDENCY_UP.gauge(&[dependency], f64::from(u8::from(answered)))
        };
        let mut families = vec![DEPENDENCY_UP.with([
            up("mongodb", self.store.is_some()),
            up("rabbitmq", self.queues.is_some()),
        ])];
        if let Some(store) = &self.store {
            families.extend(store.families());
        }
        if let Some(queues) = &self.queues {
            families.push(
                QUEUE_MESSAGES.with(
                    queues
                        .iter()
                        .map(|q| QUEUE_MESSAGES.gauge(&[&q.name], q.messages.into())),
                ),
            );
            families.push(
                QUEUE_CONSUMERS.with(
                    queues
                        .iter()
                        .map(|q| QUEUE_CONSUMERS.gauge(&[&q.name], q.consumers.into())),
                ),
            );
        }
        families
    }
}

/// The whole exposition, in the Prometheus text format 0.0.4.
pub async fn render(app: &App, requests: &RequestCounter) -> String {
    expose(requests, Readings::take(app).await)
}

fn expose(requests: &RequestCounter, readings: Readings) -> String {
    // Registration refuses two families of one name; gathering drops families without samples
    // (which the encoder would refuse). Both hold for the fixed families above, whatever the
    // readings: the tests below expose every family.
    let registry = Registry::new();
    registry
        .register(Box::new(requests.0.clone()))
        .expect("the request counter registers");
    registry
        .register(Box::new(readings))
        .expect("the scrape-time families register beside the request counter");
    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("gathered families encode")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings(stage: &str, runs: u64) -> StageTimings {
        StageTimings {
            stage: stage.to_owned(),
            runs,
            wall_seconds: 1.5 * runs as f64,
            audio_seconds: 6.0 * runs as f64,
            buckets: DURATION_BUCKETS
                .iter()
                .map(|b| if *b >= 2.5 { runs } else { 0 })
                .collect(),
        }
    }

    fn everything() -> Readings {
        let store = StoreFigures {
            files: vec![(Control::Idle, Status::Initial, 2)],
            timings: vec![timings("normalize", 2), timings("recognize", 3)],
            deliveries: vec![(DeliveryState::Delivered, 1)],
        };
        let queues = vec![QueueFigures {
            name: "trd.recognize".to_owned(),
            messages: 4,
            consumers: 1,
        }];
        Readings::new(Some(store), Some(queues))
    }

    fn requests() -> RequestCounter {
        let requests = RequestCounter::default();
        requests
            .0
            .with_label_values(&["GET", "/trd/audiofile/<id>", "404"])
            .inc();
        requests
    }

    #[test]
    fn every_family_is_typed_under_the_name_of_its_samples() {
        let text = expose(&requests(), everything());
        for family in READ_AT_SCRAPE.iter().chain([&&HTTP_REQUESTS]) {
            let kind = format!("{:?}", family.kind).to_lowercase();
            assert!(
                text.contains(&format!("# TYPE {} {kind}\n", family.name)),
                "{}:\n{text}",
                family.name
            );
        }
        for sample in [
            "trd_http_requests_total{method=\"GET\",route=\"/trd/audiofile/<id>\",status=\"404\"} 1\n",
            "trd_stage_audio_seconds_total{stage=\"recognize\"} 18\n",
            "trd_stage_duration_seconds_bucket{stage=\"normalize\",le=\"1\"} 0\n",
            "trd_stage_duration_seconds_bucket{stage=\"normalize\",le=\"2.5\"} 2\n",
            "trd_stage_duration_seconds_bucket{stage=\"normalize\",le=\"+Inf\"} 2\n",
            "trd_stage_duration_seconds_sum{stage=\"normalize\"} 3\n",
            "trd_stage_duration_seconds_count{stage=\"recognize\"} 3\n",
            "trd_recognizer_real_time_factor 0.25\n",
            "trd_files{control=\"IDLE\",status=\"INITIAL\"} 2\n",
            "trd_queue_consumers{queue=\"trd.recognize\"} 1\n",
            "trd_dependency_up{dependency=\"mongodb\"} 1\n",
        ] {
            assert!(text.contains(sample), "{sample}:\n{text}");
        }
    }

    #[test]
    fn a_dependency_that_does_not_answer_drops_its_families_and_shows_down() {
        let text = expose(&RequestCounter::default(), Readings::new(None, None));
        assert_eq!(
            text,
            "# HELP trd_dependency_up 1 when the dependency answered this scrape (its families are missing otherwise).\n\
             # TYPE trd_dependency_up gauge\n\
             trd_dependency_up{dependency=\"mongodb\"} 0\n\
             trd_dependency_up{dependency=\"rabbitmq\"} 0\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let requests = RequestCounter::default();
        requests
            .0
            .with_label_values(&["GET", "q\"b\\c\nd", "200"])
            .inc();
        let text = expose(&requests, Readings::new(None, None));
        assert!(text.contains("route=\"q\\\"b\\\\c\\nd\""), "{text}");
    }
}
