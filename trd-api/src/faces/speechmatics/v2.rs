//! `/v2/jobs`: submit, follow, list and delete jobs, and fetch their transcripts, as the
//! `speechmatics-python` and `speechmatics-batch` clients call them. Query parameters the
//! clients add (`sm-sdk=…`) are ignored.

use rocket::form::{Errors, Form};
use rocket::http::{ContentType, Status};
use rocket::serde::json::Json;
use rocket::{delete, get, post, State};
use serde::Serialize;
use trd_core::domain::Control;
use utoipa::ToSchema;

use super::error::{SmError, SmResult};
use super::form::{self, SubmitForm};
use super::job::{self, Job, Rendered, TranscriptFormat};
use super::shapes::{iso, JobDetails, JobStatus};
use crate::app::App;
use crate::identity::paced::Paced;
use crate::identity::{Access, Operate, Read};

/// A submitted job's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: String,
    /// ISO 8601.
    pub created_at: String,
}

/// One job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAnswer {
    pub job: JobDetails,
}

/// The caller's jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobDetails>,
}

#[utoipa::path(
    tag = "speechmatics",
    operation_id = "speechmatics_v2_submit",
    summary = "Submit a job (multipart: `config` and `data_file`, or `fetch_data` in the config)",
    request_body(content = SubmitForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Submitted", body = Created),
        (status = 501, description = "The config asks for a feature TRD does not have", body = super::error::SmErrorBody),
    )
)]
#[post("/v2/jobs", data = "<form>")]
pub async fn submit(
    app: &State<App>,
    who: Access<Operate>,
    form: Paced<Result<Form<SubmitForm<'_>>, Errors<'_>>>,
) -> SmResult<(Status, Json<Created>)> {
    let mut form = form::parsed(app, form.body)?;
    let submission = form::submission(app, &mut form, None).await?;
    let job = job::submit(app, &who, submission).await?;
    Ok((
        Status::Created,
        Json(Created {
            id: job.id(),
            created_at: iso(job.record.create_date),
        }),
    ))
}

#[utoipa::path(
    tag = "speechmatics",
    operation_id = "speechmatics_v2_get_job",
    summary = "A job",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = JobAnswer))
)]
#[get("/v2/jobs/<id>")]
pub async fn get_job(app: &State<App>, who: Access<Read>, id: &str) -> SmResult<Json<JobAnswer>> {
    let job = job::find(app, &who, id).await?;
    Ok(Json(JobAnswer { job: job.details() }))
}

/// How many jobs a list shows at most, and by default (the vendor's figures).
const LIST_LIMIT_MAX: i64 = 1_000;
const LIST_LIMIT_DEFAULT: i64 = 100;

fn date_bound(name: &str, value: Option<&str>) -> SmResult<Option<mongodb::bson::DateTime>> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|d| mongodb::bson::DateTime::from_millis(d.timestamp_millis()))
                .map_err(|e| {
                    SmError::bad_request(format!("{name} '{v}' is not an ISO 8601 date: {e}"))
                })
        })
        .transpose()
}

#[utoipa::path(
    tag = "speechmatics",
    operation_id = "speechmatics_v2_list_jobs",
    summary = "The caller's jobs, newest first",
    params(
        ("limit" = Option<i64>, Query, description = "At most this many (1–1000, default 100)"),
        ("created_before" = Option<String>, Query, description = "Only jobs created before (ISO 8601)"),
        ("created_after" = Option<String>, Query, description = "Only jobs created after (ISO 8601)"),
    ),
    responses((status = 200, description = "The jobs", body = JobList))
)]
#[get("/v2/jobs?<limit>&<created_before>&<created_after>")]
pub async fn list_jobs(
    app: &State<App>,
    who: Access<Read>,
    limit: Option<&str>,
    created_before: Option<&str>,
    created_after: Option<&str>,
) -> SmResult<Json<JobList>> {
    let limit = match limit {
        None => LIST_LIMIT_DEFAULT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=LIST_LIMIT_MAX).contains(n))
            .ok_or_else(|| {
                SmError::bad_request(format!(
                    "limit '{raw}' is not a whole number from 1 to {LIST_LIMIT_MAX}"
                ))
            })?,
    };
    let before = date_bound("created_before", created_before)?;
    let after = date_bound("created_after", created_after)?;
    let jobs = job::list(app, &who, after, before, limit).await?;
    Ok(Json(JobList {
        jobs: jobs.iter().map(Job::details).collect(),
    }))
}

#[utoipa::path(
    tag = "speechmatics",
    operation_id = "speechmatics_v2_delete_job",
    summary = "Delete a job and its results (a running one only with force=true)",
    params(
        ("id" = String, Path, description = "The job's id"),
        ("force" = Option<bool>, Query, description = "Stop and delete a running job"),
    ),
    responses(
        (status = 200, description = "Deleted", body = JobAnswer),
        (status = 423, description = "The job is running and force was not given", body = super::error::SmErrorBody),
    )
)]
#[delete("/v2/jobs/<id>?<force>")]
pub async fn delete_job(
    app: &State<App>,
    who: Access<Operate>,
    id: &str,
    force: Option<&str>,
) -> SmResult<Json<JobAnswer>> {
    let force = match force.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(SmError::bad_request(format!(
                "force '{other}' is not true or false"
            )))
        }
    };
    let job = job::find(app, &who, id).await?;
    let running = !matches!(job.record.control, Control::Finished | Control::Failed);
    if running && !force {
        return Err(SmError::Running);
    }
    let removed = app.jobs.delete(job.record.id, true).await?;
    let mut details = Job {
        record: removed,
        ..job
    }
    .details();
    details.status = JobStatus::Deleted;
    Ok(Json(JobAnswer { job: details }))
}

/// A transcript in the format asked for.
pub struct TranscriptBody(Rendered);

impl<'r> rocket::response::Responder<'r, 'static> for TranscriptBody {
    fn respond_to(self, req: &'r rocket::Request<'_>) -> rocket::response::Result<'static> {
        let content_type =
            ContentType::parse_flexible(self.0.content_type).unwrap_or(ContentType::Plain);
        (content_type, self.0.body).respond_to(req)
    }
}

#[utoipa::path(
    tag = "speechmatics",
    operation_id = "speechmatics_v2_transcript",
    summary = "A done job's transcript: json-v2 (the default), json, txt or srt",
    params(
        ("id" = String, Path, description = "The job's id"),
        ("format" = Option<String>, Query, description = "json-v2 (default), json, txt or srt"),
    ),
    responses(
        (status = 200, description = "The transcript", content(
            ("application/json"),
            ("text/plain"),
        )),
        (status = 404, description = "Unknown job, or not done yet (the error says which)", body = super::error::SmErrorBody),
    )
)]
#[get("/v2/jobs/<id>/transcript?<format>")]
pub async fn transcript(
    app: &State<App>,
    who: Access<Read>,
    id: &str,
    format: Option<&str>,
) -> SmResult<TranscriptBody> {
    let job = job::find(app, &who, id).await?;
    render(app, &job, format.unwrap_or("json-v2")).await
}

/// The job's transcript in `format`; the "not ready" error until it is done.
pub async fn render(app: &App, job: &Job, format: &str) -> SmResult<TranscriptBody> {
    let format = TranscriptFormat::parse(format)?;
    match job.record.control {
        Control::Finished => {}
        Control::Failed => return Err(SmError::NotReady("rejected")),
        _ => return Err(SmError::NotReady("running")),
    }
    let (_, segments) = app.jobs.result(job.record.id).await?;
    Ok(TranscriptBody(job.render(&segments, format)?))
}
