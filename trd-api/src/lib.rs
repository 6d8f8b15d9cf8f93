//! TRD's HTTP API. A tour:
//!
//! - [`faces`]: the protocols TRD speaks, one module each; [`faces::trd`] is TRD's own
//!   contract under `/trd`. A face parses requests and renders results; it does nothing else.
//! - [`jobs`]: the job core every face shares: submit audio, start/stop/reset/delete, read
//!   and follow a job's result in the domain model.
//! - [`shapes`]: the TRD contract's JSON types, returned by the handlers and described by the
//!   OpenAPI document.
//! - [`status`]: progress figures for files and batches (sums, estimate, shared snapshots).
//! - [`registry`] and [`watcher`]: files in the work directory become records.
//! - [`identity`]: who a request acts for (keys, users, tokens, trusted networks), what it
//!   may do, the `Host` and cross-site checks, rate limits and the audit trail.
//! - [`webhooks`]: who may be called back, and the loop that delivers callbacks.
//! - [`zip_stream`]: a batch's results as a ZIP streamed while it is built.
//! - [`error`]: the one API error type, turned into the contract's JSON error body once.
//! - [`openapi`]: the OpenAPI document generated from the handlers, and the Swagger UI.
//! - [`routes::operations`] and [`metrics`]: `/trd/health` and `/trd/metrics`.

pub mod app;
pub mod error;
pub mod faces;
pub mod fetch;
pub mod identity;
pub mod jobs;
pub mod json_array;
pub mod metrics;
pub mod openapi;
pub mod ranged;
pub mod registry;
pub mod routes;
pub mod shapes;
pub mod status;
pub mod watcher;
pub mod webhooks;
pub mod workdir_mark;
pub mod zip_stream;

use std::sync::Arc;

use rocket::fairing::AdHoc;
use rocket::http::uri::Origin;
use rocket::{Build, Rocket};
use tokio_util::sync::CancellationToken;
use trd_core::{Queue, Settings, Store};

pub use app::App;

/// The file in `state_dir` that keeps a generated token signing key.
const JWT_SECRET_FILE: &str = "jwt-secret";

/// Connects to MongoDB and RabbitMQ, starts the work-directory watcher and returns the Rocket
/// instance, ready to launch.
pub async fn build(
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<Rocket<Build>> {
    // Missing although set up before: the API still starts (records, results and status
    // need no audio) and the watcher finds nothing until the directory is back.
    workdir_mark::prepare(&settings.workdir, &settings.state_dir)?;
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

    let spool = settings.workdir.join(jobs::SPOOL_DIR);
    if trd_core::workdir_files::workdir_present(&settings.workdir) {
        std::fs::create_dir_all(&spool)?;
    }
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
    let jwt_secret = match &settings.jwt_secret {
        Some(secret) => secret.clone(),
        None => identity::secrets::kept_secret(&settings.state_dir, JWT_SECRET_FILE)?,
    };
    identity::bootstrap::first_admin_key(&settings, &store).await?;
    let identity = identity::Identity::new(settings.clone(), store.clone(), &jwt_secret);
    let signer = webhooks::signing::Signer::from_settings(&settings)?;
    let app = App::new(settings, store, queue, identity);
    tokio::spawn(webhooks::deliver::run(
        app.store.clone(),
        app.settings.clone(),
        signer,
        webhooks::notices::NoticeRenderers::default().with(
            faces::speechmatics::job::FACE,
            faces::speechmatics::notify::Notifications,
        ),
        shutdown.clone(),
    ));
    tokio::spawn(jobs::discard_expired_jobs(
        app.jobs.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(jobs::sweep_derived_data(app.jobs.clone(), shutdown.clone()));
    let requests = metrics::RequestCounter::default();
    Ok(rocket::custom(figment)
        .manage(app)
        .attach(identity::intake::Intake)
        .attach(AdHoc::on_request("trailing slash", |req, _| {
            Box::pin(async move { strip_trailing_slash(req) })
        }))
        .attach(identity::audit::AuditTrail)
        .manage(requests.clone())
        .attach(requests)
        .mount("/trd", faces::trd::routes())
        .mount(
            "/trd",
            rocket::routes![routes::operations::health, routes::operations::metrics],
        )
        .mount("/trd", faces::console::data_routes())
        .mount("/", faces::console::routes())
        .mount("/", openapi::routes())
        .mount("/", faces::deepspeech::routes())
        .mount("/", faces::nanotrix::routes())
        .mount("/", faces::speechmatics::routes())
        .mount("/", faces::openai::routes())
        .mount("/", faces::whisper::routes())
        .mount("/", faces::uwebasr::routes())
        .mount("/", faces::vosk::routes())
        .register("/", rocket::catchers![error::default_catcher]))
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
