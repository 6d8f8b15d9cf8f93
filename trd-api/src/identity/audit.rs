//! The audit trail: a request that may change state is marked by its guard with its
//! principal; once answered, this fairing appends one entry with the outcome (the status) to
//! the `audit` collection. Refused attempts are recorded too, with their status.

use std::sync::Mutex;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Request, Response};
use trd_core::store::identity::AuditEntry;

use super::Principal;
use crate::app::App;

#[derive(Default)]
struct Mark(Mutex<Option<String>>);

/// Marks the request for the audit trail, acting for `principal`.
pub fn mark(req: &Request<'_>, principal: &Principal) {
    *req.local_cache(Mark::default).0.lock().expect("audit mark") = Some(principal.label.clone());
}

pub struct AuditTrail;

#[rocket::async_trait]
impl Fairing for AuditTrail {
    fn info(&self) -> Info {
        Info {
            name: "audit trail",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(principal) = req
            .local_cache(Mark::default)
            .0
            .lock()
            .expect("audit mark")
            .take()
        else {
            return;
        };
        let Some(app) = req.rocket().state::<App>() else {
            return;
        };
        let entry = AuditEntry {
            at: chrono::Utc::now(),
            principal,
            action: req
                .route()
                .and_then(|r| r.name.as_deref())
                .unwrap_or("unrouted")
                .to_owned(),
            // The intake took every credential out of the URI.
            target: format!("{} {}", req.method(), req.uri()),
            outcome: res.status().code,
            address: req.remote().map(|a| a.ip().to_canonical().to_string()),
        };
        if let Err(e) = app.store.append_audit(&entry).await {
            tracing::error!(
                error = %crate::error::chain(&e),
                action = %entry.action,
                principal = %entry.principal,
                "an audit entry could not be stored"
            );
        }
    }
}
