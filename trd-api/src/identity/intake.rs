//! The first thing every request meets: a `Host` check (421 for names the service does not
//! answer to, so a rebound DNS name cannot reach it) and the credential taken out of the
//! request: out of the headers into the request's local cache, and out of the URI so no log,
//! handler or audit entry ever holds it.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::uri::Origin;
use rocket::{Data, Request};

use super::refusal::{self, Refusal};
use crate::app::App;

/// The query parameters that carry a credential: Speechmatics v1 (`auth_token`), clients that
/// cannot set headers (`token`), Nanotrix WebSockets (`ntx-token`), Speechmatics real-time in a
/// browser (`jwt`).
pub const QUERY_CREDENTIALS: [&str; 4] = ["auth_token", "token", "ntx-token", "jwt"];

/// Where a refused request is sent: no route answers it, and the catcher renders the refusal.
const REFUSED_PATH: &str = "/.refused";

/// The credential a request presented, if any.
#[derive(Debug, Clone, Default)]
pub struct Presented(pub Option<String>);

pub struct Intake;

#[rocket::async_trait]
impl Fairing for Intake {
    fn info(&self) -> Info {
        Info {
            name: "identity intake",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        let Some(app) = req.rocket().state::<App>() else {
            return;
        };
        if let Some(host) = req.host() {
            let name = host.domain().as_str().to_owned();
            if !app.identity.host_allowed(&name) {
                refusal::keep(req, Refusal::misdirected(&name));
                req.set_uri(Origin::parse(REFUSED_PATH).expect("a valid path"));
                return;
            }
        }
        let from_headers = bearer(req).or_else(|| header(req, "ntx-token"));
        let mut from_query = None;
        if let Some((credential, rest)) = take_query_credentials(req) {
            from_query = credential;
            let path = req.uri().path().as_str().to_owned();
            let uri = match rest {
                Some(query) => format!("{path}?{query}"),
                None => path,
            };
            if let Ok(origin) = Origin::parse_owned(uri) {
                req.set_uri(origin);
            }
        }
        req.local_cache(|| Presented(from_headers.or(from_query)));
    }
}

fn header(req: &Request<'_>, name: &str) -> Option<String> {
    req.headers()
        .get_one(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn bearer(req: &Request<'_>) -> Option<String> {
    let value = header(req, "Authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// When the query holds credential parameters: the first credential, and the query without
/// any of them.
fn take_query_credentials(req: &Request<'_>) -> Option<(Option<String>, Option<String>)> {
    let query = req.uri().query()?.as_str();
    let is_credential =
        |raw: &&str| QUERY_CREDENTIALS.contains(&raw.split('=').next().unwrap_or_default());
    if !query.split('&').any(|raw| is_credential(&raw)) {
        return None;
    }
    let credential = query
        .split('&')
        .filter(is_credential)
        .filter_map(|raw| raw.split_once('=').map(|(_, v)| v))
        .map(|v| rocket::http::RawStr::new(v).url_decode_lossy().into_owned())
        .find(|v| !v.is_empty());
    let kept: Vec<&str> = query
        .split('&')
        .filter(|raw| !raw.is_empty() && !is_credential(raw))
        .collect();
    Some((credential, (!kept.is_empty()).then(|| kept.join("&"))))
}

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for &'r Presented {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> rocket::request::Outcome<Self, Self::Error> {
        rocket::request::Outcome::Success(req.local_cache(Presented::default))
    }
}
