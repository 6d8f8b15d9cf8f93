//! Uploads that pace themselves or are dropped: the data guard every route that takes audio in
//! its body reads it through (uploads, submits and the recognize-now faces).
//!
//! A client that connects and then sends a byte a second must not hold one of the
//! `max_concurrent_uploads` slots, or a few hundred of them lock every honest client out. So
//! an upload takes its slot only once its first bytes are in (within `upload_start_seconds`),
//! and must then finish within its length at `upload_min_bytes_per_second`. Either miss is a
//! 408, and the body read so far (Rocket's temporary files) is dropped with it.

use std::time::Duration;

use rocket::data::{self, Data, FromData};
use rocket::http::Status;
use rocket::outcome::Outcome;
use rocket::Request;

use super::refusal::{self, Refusal};
use crate::app::App;

/// What the first read of a body waits for: Rocket's whole peek buffer.
const FIRST_BYTES: usize = 512;

/// What an upload holds while its body is read and handled, taken only once its first bytes
/// are in: an [`UploadSlot`] for the work directory's uploads, a recognition slot
/// (`faces::now::Slot`) for the recognize-now faces.
pub trait Admit: Sized + Send {
    fn admit(app: &App) -> Result<Self, Refusal>;
}

/// One of the `max_concurrent_uploads` slots (uploads into the work directory, Speechmatics
/// submits).
pub struct UploadSlot {
    _held: tokio::sync::OwnedSemaphorePermit,
}

impl Admit for UploadSlot {
    fn admit(app: &App) -> Result<Self, Refusal> {
        app.identity
            .upload_slot()
            .map(|held| UploadSlot { _held: held })
    }
}

/// An upload's body `T`, read under a slot `A` that is held until the handler ends.
pub struct Paced<T, A: Admit = UploadSlot> {
    pub body: T,
    pub slot: A,
}

#[rocket::async_trait]
impl<'r, T: FromData<'r> + Send, A: Admit> FromData<'r> for Paced<T, A> {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, mut data: Data<'r>) -> data::Outcome<'r, Self> {
        let Some(app) = req.rocket().state::<App>() else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let settings = &app.settings;
        if !trd_core::workdir_files::workdir_present(&settings.workdir) {
            return refuse(
                req,
                Refusal::busy(
                    "the work directory is unavailable (unmounted?); try again once it is back",
                    30,
                ),
            );
        }
        let start = Duration::from_secs(settings.upload_start_seconds);
        if tokio::time::timeout(start, data.peek(FIRST_BYTES))
            .await
            .is_err()
        {
            return refuse(
                req,
                Refusal::too_slow(format!(
                    "the upload sent less than {FIRST_BYTES} bytes in {} s (setting `upload_start_seconds`)",
                    settings.upload_start_seconds
                )),
            );
        }
        let slot = match A::admit(app) {
            Ok(slot) => slot,
            Err(refused) => return refuse(req, refused),
        };
        // Without a declared length, the largest body allowed sets the time it may take.
        let length = req
            .headers()
            .get_one("Content-Length")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(settings.upload_limit_bytes)
            .min(settings.upload_limit_bytes);
        let allowed = start
            + Duration::from_secs_f64(length as f64 / settings.upload_min_bytes_per_second as f64);
        match tokio::time::timeout(allowed, T::from_data(req, data)).await {
            Ok(Outcome::Success(body)) => Outcome::Success(Paced { body, slot }),
            Ok(Outcome::Error((status, _))) => Outcome::Error((status, ())),
            Ok(Outcome::Forward(forward)) => Outcome::Forward(forward),
            Err(_) => refuse(
                req,
                Refusal::too_slow(format!(
                    "the upload of {length} bytes was not complete after {} s (settings `upload_start_seconds`, `upload_min_bytes_per_second`)",
                    allowed.as_secs()
                )),
            ),
        }
    }
}

fn refuse<'r, T>(req: &'r Request<'_>, refused: Refusal) -> data::Outcome<'r, T, ()> {
    let status = refused.status;
    refusal::keep(req, refused);
    Outcome::Error((status, ()))
}
