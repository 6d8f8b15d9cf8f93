//! The console's own reads, under `/trd/console/`: who is signed in, the batches there are, and
//! a batch's files as table rows. Everything else the console shows comes from the routes every
//! client uses (status, results, start/stop/reset/delete, upload, health, metrics).

use std::collections::BTreeMap;

use rocket::serde::json::Json;
use rocket::{get, State};
use serde::Serialize;
use trd_core::store::identity::Scope;
use trd_core::store::{BatchSummary, FileRow};
use utoipa::ToSchema;

use crate::app::App;
use crate::error::ApiResult;
use crate::faces::trd::visible_batch;
use crate::identity::{Access, Read};

/// `GET /trd/console/me`: the principal the credential stands for, and what it may do.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `key:<id>`, `user:<name>`, `admin-token`, `anonymous@<address>`.
    pub label: String,
    /// The highest scope held.
    pub scope: Option<Scope>,
    /// The batches it is limited to; absent: every batch.
    pub batches: Option<Vec<String>>,
    /// Upload, start, stop, reset, delete.
    pub may_operate: bool,
    /// Hard resets, deletion on disk, keys and users.
    pub may_administer: bool,
}

/// A folder batch, as `GET /trd/console/batches` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchEntry {
    pub name: String,
    pub files: u64,
    pub bytes: i64,
    /// Files per control (`IDLE`, `RUNNING`, `PAUSED`, `FINISHED`, `FAILED`).
    pub by_control: BTreeMap<String, u64>,
}

/// One file of a batch, as its row in the console's table.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileEntry {
    pub id: String,
    pub filename: String,
    pub control: String,
    pub status: String,
    /// Seconds, once normalized.
    pub duration: Option<f64>,
    pub channels: u32,
    /// Speech found, in seconds, once diarized.
    pub speech: Option<f64>,
    /// Speech over the whole audio of every channel (0–1).
    pub speech_ratio: Option<f64>,
    pub segments: Option<i64>,
    pub speakers: u32,
    /// Mean recognition score of the recognized segments (0–100).
    pub score: Option<f64>,
    /// Why the file FAILED.
    pub error: Option<String>,
    pub warnings: u32,
}

impl From<BatchSummary> for BatchEntry {
    fn from(b: BatchSummary) -> Self {
        BatchEntry {
            name: b.name,
            files: b.files,
            bytes: b.bytes,
            by_control: b.by_control,
        }
    }
}

impl From<FileRow> for FileEntry {
    fn from(r: FileRow) -> Self {
        let audio = r.duration.map(|d| d * f64::from(r.channels.max(1)));
        FileEntry {
            id: r.id.to_hex(),
            filename: r.filename,
            control: r.control.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            duration: r.duration,
            channels: r.channels,
            speech: r.speech,
            speech_ratio: match (r.speech, audio) {
                (Some(speech), Some(audio)) if audio > 0.0 => Some((speech / audio).min(1.0)),
                _ => None,
            },
            segments: r.segments,
            speakers: r.speakers,
            score: r.score.map(|s| (s * 10.0).round() / 10.0),
            error: r.error,
            warnings: r.warnings,
        }
    }
}

#[utoipa::path(
    tag = "console",
    summary = "Who the credential stands for, and what it may do",
    responses((status = 200, description = "The principal", body = Me))
)]
#[get("/console/me")]
pub fn me(who: Access<Read>) -> Json<Me> {
    Json(Me {
        label: who.label.clone(),
        scope: who.scope,
        batches: who.batch_filter(),
        may_operate: who.allows(Scope::Operate),
        may_administer: who.allows(Scope::Admin),
    })
}

#[utoipa::path(
    tag = "console",
    summary = "Every folder batch the caller may see, with its files per control",
    responses((status = 200, description = "The batches, by name", body = Vec<BatchEntry>))
)]
#[get("/console/batches")]
pub async fn batches(app: &State<App>, who: Access<Read>) -> ApiResult<Json<Vec<BatchEntry>>> {
    let within = who.batch_filter();
    let summaries = app.store.batch_summaries(within.as_deref()).await?;
    Ok(Json(summaries.into_iter().map(BatchEntry::from).collect()))
}

#[utoipa::path(
    tag = "console",
    summary = "A batch's files, one small row each (for a table of thousands)",
    params(("batch" = String, Path, description = "The batch")),
    responses((status = 200, description = "The rows, by file name", body = Vec<FileEntry>))
)]
#[get("/console/batch/<batch>/files")]
pub async fn files(
    app: &State<App>,
    who: Access<Read>,
    batch: &str,
) -> ApiResult<Json<Vec<FileEntry>>> {
    let batch = visible_batch(&who, batch)?;
    let rows = app.store.file_rows(batch.as_str()).await?;
    Ok(Json(rows.into_iter().map(FileEntry::from).collect()))
}
