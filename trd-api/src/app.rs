//! What every route may use (the managed [`App`]) and the request guards that read the
//! request itself.

use std::sync::Arc;

use rocket::request::{FromRequest, Outcome, Request};
use trd_core::{Queue, Settings, Store};

use crate::identity::Identity;
use crate::jobs::Jobs;
use crate::shapes::RecordUrls;
use crate::status::Figures;

/// The API's shared services.
#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub queue: Queue,
    /// The job core every face submits and follows work through.
    pub jobs: Jobs,
    /// File and batch figures (see [`crate::status`]).
    pub figures: Figures,
    /// Who may do what (see [`crate::identity`]).
    pub identity: Identity,
}

impl App {
    pub fn new(settings: Arc<Settings>, store: Store, queue: Queue, identity: Identity) -> Self {
        App {
            identity,
            jobs: Jobs::new(settings.clone(), store.clone(), queue.clone()),
            figures: Figures::new(store.clone(), settings.concurrency()),
            settings,
            store,
            queue,
        }
    }
}

/// Record URLs on `http://host:port` as the client addressed us.
#[rocket::async_trait]
impl<'r> FromRequest<'r> for RecordUrls {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let port = req.rocket().config().port;
        let host = req
            .host()
            .map(|h| h.to_string())
            .unwrap_or_else(|| port.to_string());
        let host = if host.contains(':') || host.is_empty() {
            host
        } else {
            format!("{host}:{port}")
        };
        Outcome::Success(RecordUrls::new(format!("http://{host}")))
    }
}
