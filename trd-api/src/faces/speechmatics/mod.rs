//! The Speechmatics batch jobs API (`../shared/seeds/002_…`), for the `speechmatics-python`
//! and `speechmatics-batch` clients and the appliance's v1 paths, and its real-time API for
//! `speechmatics-rt`.
//!
//! - [`config`]: the job config, parsed once at the edge;
//! - [`form`]: the submit form (both paths), and audio fetched for `fetch_data`;
//! - [`job`]: a job as TRD keeps it, a record in the caller's private batch with the face's
//!   note beside it; submit, find, list;
//! - [`shapes`]: the job shapes, TRD's states folded into the five statuses the clients know;
//! - [`notify`]: notifications when a job ends, rendered for the webhook outbox;
//! - [`vocab`]: `sounds_like` spellings written as the caller's `content`;
//! - [`v2`]: the `/v2/jobs` routes; [`legacy`]: `/v1/user/{id}/jobs/` and `/v1.0/…`;
//! - [`realtime`]: the real-time API, `GET /v2` (WebSocket), on a live stream;
//!   [`realtime_file`]: its `file` sessions, heard as recognize-now jobs;
//! - [`error`]: errors as `{"code", "error", "detail"}`.

pub mod config;
pub mod error;
pub mod form;
pub mod job;
pub mod legacy;
pub mod notify;
pub mod realtime;
pub mod realtime_file;
pub mod shapes;
pub mod v2;
pub mod vocab;

/// Every route of the face, relative to `/`.
pub fn routes() -> Vec<rocket::Route> {
    let mut routes = rocket::routes![
        v2::submit,
        v2::get_job,
        v2::list_jobs,
        v2::delete_job,
        v2::transcript,
        realtime::realtime,
    ];
    routes.extend(legacy::routes());
    routes
}
