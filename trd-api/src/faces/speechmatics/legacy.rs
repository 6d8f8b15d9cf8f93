//! The appliance's v1 paths, `/v1/user/{user_id}/jobs/` and `/v1.0/user/{user_id}/jobs/`, for
//! clients written against the v1 SaaS API: the same jobs as `/v2`, in the v1 shapes (submit
//! answers 200 with `check_wait`, `balance` and `cost`; a job has `job_status`, `lang`,
//! `name`…). Any positive user id is taken and echoed back; who owns a job is decided by the
//! credential, as on `/v2`.

use rocket::form::{Errors, Form};
use rocket::serde::json::Json;
use rocket::{get, post, State};
use serde::Serialize;
use trd_core::domain::Control;
use utoipa::ToSchema;

use super::error::{SmError, SmResult};
use super::form::{self, SubmitForm};
use super::job::{self, Job};
use super::shapes::JobStatus;
use super::v2::{render, TranscriptBody};
use crate::app::App;
use crate::error::ApiError;
use crate::identity::paced::Paced;
use crate::identity::{Access, Operate, Read};

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![submit, get_job, list_jobs, transcript]
}

/// Seconds a v1 client is told to wait before it checks a job again.
const CHECK_WAIT_SECONDS: u32 = 5;

/// The path's version and user id, checked: `v1` or `v1.0`, and a positive whole number.
fn user_id(version: &str, user: &str) -> SmResult<u64> {
    if !matches!(version, "v1" | "v1.0") {
        return Err(SmError::Api(ApiError::NotFound(format!(
            "no such resource: /{version}/user/{user}/jobs"
        ))));
    }
    user.parse::<u64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| {
            SmError::bad_request(format!("user id '{user}' is not a positive whole number"))
        })
}

/// The answer to a v1 submit.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyCreated {
    pub id: String,
    pub check_wait: u32,
    /// Always 0, as on the appliance.
    pub balance: u32,
    pub cost: u32,
}

/// A v1 job.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyJob {
    pub id: String,
    /// `running`, `done`, `rejected`.
    pub job_status: JobStatus,
    pub job_type: &'static str,
    /// Seconds to wait before checking again; null once the job has ended.
    pub check_wait: Option<u32>,
    pub next_check: u32,
    pub lang: String,
    pub name: String,
    pub meta: Option<String>,
    pub notification: String,
    pub user_id: u64,
    /// `Thu May 28 13:16:47 2020`, as the appliance writes it.
    pub created_at: String,
    /// Whole seconds of audio.
    pub duration: u64,
    /// The transcript's name once there is one.
    pub transcription: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyJobAnswer {
    pub job: LegacyJob,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyJobList {
    pub jobs: Vec<LegacyJob>,
}

impl LegacyJob {
    fn new(job: &Job, user_id: u64) -> Self {
        let status = JobStatus::of(&job.record);
        let ended = matches!(job.record.control, Control::Finished | Control::Failed);
        let legacy = job.note.legacy.as_ref();
        LegacyJob {
            id: job.id(),
            job_status: status,
            job_type: "transcription",
            check_wait: (!ended).then_some(CHECK_WAIT_SECONDS),
            next_check: 0,
            lang: job
                .config
                .as_ref()
                .map(|c| c.language.clone())
                .unwrap_or_default(),
            name: job.note.data_name.clone(),
            meta: job.note.meta.clone(),
            notification: legacy
                .and_then(|l| l.notification.clone())
                .unwrap_or_else(|| "none".to_owned()),
            user_id,
            created_at: chrono::DateTime::from_timestamp_millis(
                job.record.create_date.timestamp_millis(),
            )
            .unwrap_or_default()
            .format("%a %b %e %H:%M:%S %Y")
            .to_string(),
            duration: job.record.audio_seconds().round() as u64,
            transcription: (status == JobStatus::Done).then(|| "output.json".to_owned()),
        }
    }
}

#[utoipa::path(
    tag = "speechmatics",
    operation_id = "speechmatics_v1_submit",
    summary = "Submit a job on the v1 path (`model` or `config`, `data_file`, `meta`, `callback`)",
    params(
        ("version" = String, Path, pattern = r"^v1(\.0)?$", description = "`v1` or `v1.0`"),
        ("user_id" = u64, Path, description = "Any positive user id, echoed back"),
    ),
    request_body(content = SubmitForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "Submitted", body = LegacyCreated))
)]
#[post("/<version>/user/<user_id>/jobs", data = "<form>", rank = 5)]
pub async fn submit(
    app: &State<App>,
    who: Access<Operate>,
    version: &str,
    user_id: &str,
    form: Paced<Result<Form<SubmitForm<'_>>, Errors<'_>>>,
) -> SmResult<Json<LegacyCreated>> {
    let user = self::user_id(version, user_id)?;
    let mut form = form::parsed(app, form.body)?;
    let submission = form::submission(app, &mut form, Some(user)).await?;
    let job = job::submit(app, &who, submission).await?;
    Ok(Json(LegacyCreated {
        id: job.id(),
        check_wait: CHECK_WAIT_SECONDS,
        balance: 0,
        cost: 0,
    }))
}

#[utoipa::path(
    tag = "speechmatics",
    operation_id = "speechmatics_v1_get_job",
    summary = "A job on the v1 path",
    params(
        ("version" = String, Path, pattern = r"^v1(\.0)?$", description = "`v1` or `v1.0`"),
        ("user_id" = u64, Path, description = "Any positive user id, echoed back"),
        ("id" = String, Path, description = "The job's id"),
    ),
    responses((status = 200, description = "The job", body = LegacyJobAnswer))
)]
#[get("/<version>/user/<user_id>/jobs/<id>", rank = 5)]
pub async fn get_job(
    app: &State<App>,
    who: Access<Read>,
    version: &str,
    user_id: &str,
    id: &str,
) -> SmResult<Json<LegacyJobAnswer>> {
    let user = self::user_id(version, user_id)?;
    let job = job::find(app, &who, id).await?;
    Ok(Json(LegacyJobAnswer {
        job: LegacyJob::new(&job, user),
    }))
}

#[utoipa::path(
    tag = "speechmatics",
    operation_id = "speechmatics_v1_list_jobs",
    summary = "The caller's jobs on the v1 path, newest first",
    params(
        ("version" = String, Path, pattern = r"^v1(\.0)?$", description = "`v1` or `v1.0`"),
        ("user_id" = u64, Path, description = "Any positive user id, echoed back"),
    ),
    responses((status = 200, description = "The jobs", body = LegacyJobList))
)]
#[get("/<version>/user/<user_id>/jobs", rank = 5)]
pub async fn list_jobs(
    app: &State<App>,
    who: Access<Read>,
    version: &str,
    user_id: &str,
) -> SmResult<Json<LegacyJobList>> {
    let user = self::user_id(version, user_id)?;
    let jobs = job::list(app, &who, None, None, 100).await?;
    Ok(Json(LegacyJobList {
        jobs: jobs.iter().map(|j| LegacyJob::new(j, user)).collect(),
    }))
}

#[utoipa::path(
    tag = "speechmatics",
    operation_id = "speechmatics_v1_transcript",
    summary = "A done job's transcript on the v1 path (`format`: json (default), json-v2, txt, srt)",
    params(
        ("version" = String, Path, pattern = r"^v1(\.0)?$", description = "`v1` or `v1.0`"),
        ("user_id" = u64, Path, description = "Any positive user id, echoed back"),
        ("id" = String, Path, description = "The job's id"),
        ("format" = Option<String>, Query, description = "json (default), json-v2, txt or srt"),
    ),
    responses((status = 200, description = "The transcript", content(("application/json"), ("text/plain"))))
)]
#[get("/<version>/user/<user_id>/jobs/<id>/transcript?<format>", rank = 5)]
pub async fn transcript(
    app: &State<App>,
    who: Access<Read>,
    version: &str,
    user_id: &str,
    id: &str,
    format: Option<&str>,
) -> SmResult<TranscriptBody> {
    self::user_id(version, user_id)?;
    let job = job::find(app, &who, id).await?;
    render(app, &job, format.unwrap_or("json")).await
}
