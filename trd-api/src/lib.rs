//! TRD's HTTP API. A tour:
//!
//! - [`routes`]: one module per endpoint group of the contract (`/trd/audiofile`,
//!   `/trd/transcription`); handlers parse input into domain types and call the store/queue.
//! - [`control`]: start/stop — the atomic store transition, then the queue message.
//! - [`status`]: progress figures for files and batches.
//! - [`view`]: records rendered in the contract's JSON shape.
//! - [`registry`] and [`watcher`]: files in the work directory become records.
//! - [`error`]: typed errors, turned into the contract's JSON error body in one place.
//! - [`openapi`]: the OpenAPI document generated from the route handlers, and the Swagger UI.
//! - [`metrics`]: Prometheus text exposition (`/trd/metrics`) and the HTTP request counters.

pub mod control;
pub mod error;
pub mod guards;
pub mod metrics;
pub mod openapi;
pub mod registry;
pub mod routes;
pub mod status;
pub mod view;
pub mod watcher;
pub mod webhooks;
pub mod zip_stream;

use std::sync::Arc;

use rocket::fairing::AdHoc;
use rocket::http::uri::Origin;
use rocket::{Build, Rocket};
use tokio_util::sync::CancellationToken;
use trd_core::{Queue, Settings, Store};

pub use guards::App;

/// Connects to MongoDB and RabbitMQ, starts the work-directory watcher and returns the Rocket
/// instance, ready to launch.
pub async fn build(
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<Rocket<Build>> {
    std::fs::create_dir_all(&settings.workdir)?;
    let settings = Settings {
        workdir: std::fs::canonicalize(&settings.workdir)?,
        ..settings
    };
    let store = Store::connect(&settings).await?;
    let queue = Queue::connect(&settings).await?;
    let settings = Arc::new(settings);
    tokio::spawn(watcher::watch(
        store.clone(),
        settings.clone(),
        shutdown.clone(),
    ));

    let spool = settings.workdir.join(routes::upload::SPOOL_DIR);
    std::fs::create_dir_all(&spool)?;
    let upload_limit = rocket::data::ByteUnit::from(settings.upload_limit_bytes);
    let limits = rocket::data::Limits::default()
        .limit("file", upload_limit)
        .limit("data-form", upload_limit);
    let figment = rocket::Config::figment()
        .merge(("limits", limits))
        .merge(("temp_dir", spool))
        .merge(("port", settings.port))
        .merge(("address", settings.address.clone()))
        .merge(("cli_colors", false));
    let app = App {
        settings,
        store,
        queue,
    };
    tokio::spawn(webhooks::deliver::run(app.clone(), shutdown.clone()));
    let requests = metrics::RequestCounter::default();
    Ok(rocket::custom(figment)
        .manage(app)
        .attach(AdHoc::on_request("trailing slash", |req, _| {
            Box::pin(async move { strip_trailing_slash(req) })
        }))
        .manage(requests.clone())
        .attach(requests)
        .mount("/trd", routes())
        .mount("/", openapi::routes())
        .register("/", rocket::catchers![error::default_catcher]))
}

fn routes() -> Vec<rocket::Route> {
    use routes::{audiofile, transcription, upload, webhook};
    rocket::routes![
        audiofile::get_record,
        audiofile::list_all,
        audiofile::list_batch,
        audiofile::create_file,
        audiofile::create_batch,
        audiofile::delete_file,
        audiofile::delete_batch,
        transcription::start_one,
        transcription::start_batch,
        transcription::stop_one,
        transcription::stop_batch,
        transcription::reset_one,
        transcription::reset_batch,
        transcription::status_one,
        transcription::status_batch,
        transcription::result_one,
        transcription::result_batch,
        routes::query::query_collection,
        upload::upload,
        webhook::whoami,
        webhook::validate_get,
        webhook::validate_post,
        routes::operations::health,
        routes::operations::metrics,
    ]
}

/// The vendor's client library calls `/trd/audiofile/upload/`: every path answers with and
/// without a trailing slash. The Swagger UI's index is the exception: it must be addressed
/// with its slash, so that its relative asset URLs resolve inside it.
fn strip_trailing_slash(req: &mut rocket::Request<'_>) {
    let path = req.uri().path().as_str();
    if path.len() > 1 && path.ends_with('/') && path != openapi::UI_PATH {
        let trimmed = path.trim_end_matches('/');
        let uri = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(origin) = Origin::parse_owned(uri) {
            req.set_uri(origin);
        }
    }
}

/// The whole life of the API process.
pub async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    trd_core::logging::init_logging(settings.log_format);
    let shutdown = CancellationToken::new();
    let rocket = build(settings, shutdown.clone()).await?;
    rocket.launch().await?;
    shutdown.cancel();
    Ok(())
}
