//! The job core: what every protocol TRD speaks needs, behind one small interface. A job is a
//! TRD record: audio in the work directory, a control/status pair the workers move along, and
//! segments that hold its result.
//!
//! - [`Jobs::submit`] ([`intake`]): audio (a file already in the work directory, a spooled
//!   upload, bytes or a stream) stored under a name and registered.
//! - [`Jobs::check_options`] ([`options`]): the start options every protocol can set (model,
//!   hints, diarization, speakers, callbacks, metadata), refused before anything is queued.
//! - [`Jobs::start`], [`Jobs::stop`], [`Jobs::reset`], [`Jobs::delete`] ([`lifecycle`]): the
//!   atomic store transition first, then the queue (or the webhooks) told.
//! - [`Jobs::record`], [`Jobs::result`], [`Jobs::follow`] ([`follow`]): the job and its
//!   result in the domain model, now or as it grows.
//! - [`Jobs::open_audio`] ([`listen`]): the job's original audio, for listening.
//! - [`Jobs::admit`], [`Jobs::recognize_now`] ([`now`]): a request that waits for its own
//!   transcript, in the interactive lane, as a [`LiveJob`] whose result streams in order.
//! - [`Jobs::open_stream`] ([`live`]): a live stream, its audio relayed as it comes to a
//!   recognizer with a free stream slot and its answers back in order, across a take-over.
//!
//! A face (`crate::faces::<protocol>`) parses its protocol's requests into these calls and
//! renders the domain result in its protocol's shapes; it never touches the store or the queue
//! itself.

mod error;
mod follow;
mod intake;
mod lifecycle;
mod listen;
mod live;
mod now;
mod options;

use std::sync::Arc;

use mongodb::bson::oid::ObjectId;
use trd_core::domain::{AudioFile, Segment};
use trd_core::{Queue, Settings, Store};

pub use error::{JobError, JobResult};
pub use follow::JobUpdate;
pub use intake::{fresh_name, Audio, SPOOL_DIR};
pub use live::{Answer, LiveStream};
pub use now::{
    discard_expired_jobs, sweep_derived_data, Admission, LiveJob, NowRequest, Progress,
    RETRY_AFTER_SECONDS,
};
pub use options::{language_of, CheckedOptions, SPEAKERS};

/// A handle on the job core; cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    settings: Arc<Settings>,
    store: Store,
    queue: Queue,
    interactive: now::InteractiveSlots,
}

impl Jobs {
    pub fn new(settings: Arc<Settings>, store: Store, queue: Queue) -> Self {
        Jobs {
            interactive: now::InteractiveSlots::new(settings.interactive_in_flight),
            settings,
            store,
            queue,
        }
    }

    /// The job's record.
    pub async fn record(&self, id: ObjectId) -> JobResult<AudioFile> {
        self.store
            .audiofile(id)
            .await?
            .ok_or(JobError::NotFound(id))
    }

    /// The job's record and its segments ordered by start time: its result as far as it got.
    pub async fn result(&self, id: ObjectId) -> JobResult<(AudioFile, Vec<Segment>)> {
        let record = self.record(id).await?;
        let segments = self.store.segments_of(id).await?;
        Ok((record, segments))
    }
}
