//! Request guards that authorize. A route that needs a scope takes [`Access`]`<Read>`,
//! `<Operate>` or `<Admin>`; its handler sees the [`Principal`]. A guard that lets a request
//! change state (every `Operate` route, and `Admin` routes other than reads) also refuses a
//! request a browser marks as cross-site, and marks the request for the audit trail.

use std::marker::PhantomData;
use std::ops::Deref;

use rocket::http::{Method, Status};
use rocket::request::{FromRequest, Outcome, Request};
use trd_core::store::identity::Scope;

use super::audit;
use super::intake::Presented;
use super::refusal::{self, Refusal};
use super::Principal;
use crate::app::App;

/// The scope a route needs, as a type.
pub trait Need: Send + Sync + 'static {
    const SCOPE: Scope;
}

pub struct Read;
pub struct Operate;
pub struct Admin;

impl Need for Read {
    const SCOPE: Scope = Scope::Read;
}
impl Need for Operate {
    const SCOPE: Scope = Scope::Operate;
}
impl Need for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// A request authorized for scope `S`, acting for the principal it derefs to.
pub struct Access<S: Need> {
    pub principal: Principal,
    need: PhantomData<S>,
}

impl<S: Need> Deref for Access<S> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

/// The principal of a request (credential checked once per request), or why it has none.
async fn resolve<'r>(req: &'r Request<'_>, app: &App) -> &'r Result<Principal, Refusal> {
    req.local_cache_async(async {
        let presented = req.local_cache(Presented::default).0.clone();
        let from = req.remote().map(|a| a.ip());
        let principal = app
            .identity
            .authenticate(presented.as_deref(), from)
            .await?;
        app.identity.count_request(&principal)?;
        Ok(principal)
    })
    .await
}

/// Whether a route needing `scope` changes state when called with `method`.
fn changes_state(scope: Scope, method: Method) -> bool {
    match scope {
        Scope::Read => false,
        Scope::Operate => true,
        Scope::Admin => !matches!(method, Method::Get | Method::Head),
    }
}

/// Why a browser request must not change state: it comes from another site. Browsers mark
/// every request with `Sec-Fetch-Site`, and cross-origin ones with `Origin`; an `<img>` or a
/// form on another page cannot hide either.
fn cross_site(req: &Request<'_>, app: &App) -> Option<String> {
    if let Some(site) = req.headers().get_one("Sec-Fetch-Site") {
        if !matches!(site.trim(), "same-origin" | "none") {
            return Some(format!(
                "the browser marked this request `Sec-Fetch-Site: {site}`"
            ));
        }
    }
    let origin = req.headers().get_one("Origin")?.trim();
    let own = req.host().map(|h| {
        let port = h.port().unwrap_or(req.rocket().config().port);
        format!("{}:{port}", h.domain().as_str().to_ascii_lowercase())
    });
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/').to_ascii_lowercase());
    let same_origin = match (&own, origin_host) {
        (Some(own), Some(theirs)) => {
            let theirs = if theirs.contains(':') && !theirs.ends_with(']') {
                theirs
            } else if origin.starts_with("https://") {
                format!("{theirs}:443")
            } else {
                format!("{theirs}:80")
            };
            *own == theirs
        }
        _ => false,
    };
    (!same_origin && !app.identity.origin_allowed(origin))
        .then(|| format!("the origin '{origin}' is not allowed (setting `allowed_origins`)"))
}

fn refuse<T>(req: &Request<'_>, refusal: Refusal) -> Outcome<T, ()> {
    let status = refusal.status;
    refusal::keep(req, refusal);
    Outcome::Error((status, ()))
}

fn app<'r>(req: &'r Request<'_>) -> Option<&'r App> {
    req.rocket().state::<App>()
}

#[rocket::async_trait]
impl<'r, S: Need> FromRequest<'r> for Access<S> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let Some(app) = app(req) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let principal = match resolve(req, app).await {
            Ok(p) => p.clone(),
            Err(refusal) => return refuse(req, refusal.clone()),
        };
        if changes_state(S::SCOPE, req.method()) {
            audit::mark(req, &principal);
            if let Some(why) = cross_site(req, app) {
                return refuse(
                    req,
                    Refusal::forbidden(format!("a cross-site request cannot change state: {why}")),
                );
            }
        }
        if let Err(e) = principal.require(S::SCOPE) {
            return refuse(req, Refusal::forbidden(e.to_string()));
        }
        Outcome::Success(Access {
            principal,
            need: PhantomData,
        })
    }
}

/// The principal of a route open to anyone (log-in, registration): `None` without a
/// credential from outside the trusted networks; a wrong credential is still refused.
/// Requests other than reads are marked for the audit trail.
pub struct Caller(pub Option<Principal>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Caller {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let Some(app) = app(req) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let presented = req.local_cache(Presented::default).0.is_some();
        let principal = match resolve(req, app).await {
            Ok(p) => p.clone(),
            Err(refusal) if presented || refusal.status != Status::Unauthorized => {
                return refuse(req, refusal.clone())
            }
            Err(_) => {
                let from = req.remote().map(|a| a.ip().to_canonical().to_string());
                let nobody =
                    Principal::new(format!("anonymous@{}", from.unwrap_or_default()), &[], None);
                if let Err(refusal) = app.identity.count_request(&nobody) {
                    return refuse(req, refusal);
                }
                if !matches!(req.method(), Method::Get | Method::Head) {
                    audit::mark(req, &nobody);
                }
                return Outcome::Success(Caller(None));
            }
        };
        if !matches!(req.method(), Method::Get | Method::Head) {
            audit::mark(req, &principal);
        }
        Outcome::Success(Caller(Some(principal)))
    }
}
