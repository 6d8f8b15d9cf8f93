//! The operator console: a web page where a person runs and reviews batches and listens to
//! what was transcribed (`/trd/ui`, linked from `/` and `/trd/`).
//!
//! The page is static: one HTML shell for every console path, a script that draws each page
//! from the JSON routes every client uses (and the three reads of [`data`]), a style sheet,
//! and wavesurfer.js for the waveform. All are compiled into the binary, so the console works
//! offline and needs no build step; the shell itself holds no data, so it needs no credential,
//! and every read the script makes is checked like any other client's.

pub mod data;

use rocket::get;
use rocket::http::{ContentType, Header};
use rocket::response::Responder;

/// Routes mounted at `/`: the landing page and the console's pages and assets.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![landing, landing_trd, shell, shell_path, asset]
}

/// Routes mounted at `/trd`: the console's reads.
pub fn data_routes() -> Vec<rocket::Route> {
    rocket::routes![data::me, data::batches, data::files]
}

/// A file of the console: its path under `/trd/ui/assets/`, media type and content.
struct Asset {
    name: &'static str,
    media: (&'static str, &'static str),
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "console.js",
        media: ("text", "javascript"),
        body: include_bytes!("../../../console/console.js"),
    },
    Asset {
        name: "console.css",
        media: ("text", "css"),
        body: include_bytes!("../../../console/console.css"),
    },
    Asset {
        name: "vendor/wavesurfer.esm.js",
        media: ("text", "javascript"),
        body: include_bytes!("../../../console/vendor/wavesurfer.esm.js"),
    },
];

const SHELL: &str = include_str!("../../../console/index.html");
const LANDING: &str = include_str!("../../../console/landing.html");

/// A page of the console with the headers that keep it to its own origin: scripts, styles,
/// audio and requests from this server only, never framed, no referrer (the audio URL carries
/// the credential). Rocket's shield adds `X-Content-Type-Options` and `X-Frame-Options`.
#[derive(Responder)]
#[response(content_type = "html")]
struct Page {
    body: &'static str,
    security: Header<'static>,
    referrer: Header<'static>,
}

impl Page {
    fn new(body: &'static str) -> Self {
        Page {
            body,
            // wavesurfer.js styles its shadow DOM with a <style> element: styles may be inline,
            // scripts may not.
            security: Header::new(
                "Content-Security-Policy",
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
                 object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
            ),
            referrer: Header::new("Referrer-Policy", "no-referrer"),
        }
    }
}

#[derive(Responder)]
struct AssetResponse {
    body: &'static [u8],
    media: ContentType,
    caching: Header<'static>,
}

/// `/`: links to the console, the API documentation and the operations routes.
#[get("/")]
fn landing() -> Page {
    Page::new(LANDING)
}

/// `/trd` (and `/trd/`, since every path answers with its trailing slash too).
#[get("/trd")]
fn landing_trd() -> Page {
    Page::new(LANDING)
}

/// Every console page is the same shell; its script draws the page the path names.
#[get("/trd/ui")]
fn shell() -> Page {
    Page::new(SHELL)
}

#[get("/trd/ui/<_page..>", rank = 5)]
fn shell_path(_page: std::path::PathBuf) -> Page {
    Page::new(SHELL)
}

/// An asset of the console; an unknown name is a 404.
#[get("/trd/ui/assets/<name..>", rank = 4)]
fn asset(name: std::path::PathBuf) -> Option<AssetResponse> {
    let name = name.to_string_lossy();
    let asset = ASSETS.iter().find(|a| a.name == name)?;
    Some(AssetResponse {
        body: asset.body,
        media: ContentType::new(asset.media.0, asset.media.1),
        caching: Header::new("Cache-Control", "public, max-age=300"),
    })
}
