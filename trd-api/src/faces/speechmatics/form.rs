//! The submit form, the same on `/v2/jobs` and the v1 paths: `config` (a JSON string) and
//! `data_file`, or the appliance's older fields (`model`, `diarisation`, `meta`,
//! `notification`, `callback`). With `config.fetch_data` instead of a file, TRD downloads the
//! audio itself, through the webhook allow-list and within the upload size limit.

use rocket::form::{Errors, Form};
use rocket::fs::TempFile;
use rocket::FromForm;
use serde_json::json;
use utoipa::ToSchema;

use super::config::{FetchData, JobConfig, Notification};
use super::error::{SmError, SmResult};
use super::job::{LegacyNote, Note, Submission};
use crate::app::App;
use crate::error::ApiError;
use crate::fetch::FetchError;
use crate::jobs::Audio;
use crate::shapes::Binary;

/// `POST /v2/jobs` (and the v1 submit): multipart.
#[derive(FromForm, ToSchema)]
#[schema(as = SpeechmaticsSubmitForm)]
pub struct SubmitForm<'r> {
    /// The job config, a JSON object as a string.
    config: Option<String>,
    /// The audio; its file name becomes the job's `data_name`.
    #[schema(value_type = Option<Binary>)]
    data_file: Option<TempFile<'r>>,
    /// v1: the language, when there is no `config`.
    model: Option<String>,
    /// v1: `speaker` or `none`, when there is no `config` (either spelling).
    diarization: Option<String>,
    diarisation: Option<String>,
    /// v1: the caller's description of the job, given back with it.
    meta: Option<String>,
    /// v1: how the caller wants to hear of the end (kept and shown).
    notification: Option<String>,
    /// v1: a URL POSTed to when the job ends.
    callback: Option<String>,
    /// A transcript to align the audio to: alignment is not something TRD does (501). Left
    /// out of the document, which describes what the service does.
    #[schema(ignore)]
    text_file: Option<TempFile<'r>>,
    /// v1: what the callback carries: `json` (the default), `json-v2`, `txt` or `srt`.
    callback_format: Option<String>,
}

/// The form parsed, or a 400/413 saying what is wrong with it.
pub fn parsed<'r>(
    app: &App,
    form: Result<Form<SubmitForm<'r>>, Errors<'_>>,
) -> SmResult<Form<SubmitForm<'r>>> {
    form.map_err(|errors| {
        if errors.status().code == 413 {
            SmError::Api(ApiError::PayloadTooLarge(format!(
                "the upload exceeds the size limit of {} bytes",
                app.settings.upload_limit_bytes
            )))
        } else {
            SmError::bad_request(format!("malformed job submission: {errors}"))
        }
    })
}

/// The config a v1 submit describes with form fields.
fn legacy_config(form: &SubmitForm<'_>) -> SmResult<String> {
    let language = form
        .model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            SmError::bad_request("the submission has neither a `config` nor a `model` (language)")
        })?;
    let diarization = match form.diarization.as_deref().or(form.diarisation.as_deref()) {
        Some("speaker" | "true" | "1") => "speaker",
        _ => "none",
    };
    let config = json!({
        "type": "transcription",
        "transcription_config": {"language": language, "diarization": diarization},
    });
    Ok(config.to_string())
}

/// The v1 `callback`, as a notification: sent unless `notification` asks for something
/// else, carrying the transcript in `callback_format`.
fn legacy_callback(form: &SubmitForm<'_>) -> SmResult<Option<Notification>> {
    let Some(url) = form
        .callback
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    if form
        .notification
        .as_deref()
        .is_some_and(|n| !n.eq_ignore_ascii_case("callback"))
    {
        return Ok(None);
    }
    let contents = match form.callback_format.as_deref().unwrap_or("json") {
        "json" => "transcript.json",
        "json-v2" => "transcript.json-v2",
        "txt" => "transcript.txt",
        "srt" => "transcript.srt",
        other => {
            return Err(SmError::bad_request(format!(
                "callback_format '{other}' is not one of json, json-v2, txt, srt"
            )))
        }
    };
    Ok(Some(Notification {
        url: url.to_owned(),
        contents: vec![contents.to_owned()],
        auth_headers: Vec::new(),
        method: None,
    }))
}

/// The submission the form makes, its audio stored in the spool.
pub async fn submission(
    app: &App,
    form: &mut SubmitForm<'_>,
    legacy_user: Option<u64>,
) -> SmResult<Submission> {
    if form.text_file.is_some() {
        return Err(SmError::NotImplemented(
            "alignment (`text_file`) is not supported by this server".into(),
        ));
    }
    let config_text = match form.config.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(text) => text.to_owned(),
        None => legacy_config(form)?,
    };
    let config = JobConfig::parse(&config_text)?;
    let mut notifications = config.notifications.clone();
    notifications.extend(legacy_callback(form)?);
    let (audio, data_name) = match (form.data_file.as_mut(), &config.fetch_data) {
        (Some(_), Some(_)) => {
            return Err(SmError::bad_request(
                "the submission has both a `data_file` and `fetch_data`; give one",
            ))
        }
        (Some(file), None) => {
            let name = file
                .raw_name()
                .map(|n| n.dangerous_unsafe_unsanitized_raw().as_str().to_owned())
                .unwrap_or_default();
            let spooled = crate::faces::now::spool_part(app, file).await?;
            (Audio::Spooled(spooled), base_name(&name, "data_file"))
        }
        (None, Some(fetch)) => {
            let spooled = fetch_audio(app, fetch).await?;
            (Audio::Spooled(spooled), base_name(&fetch.url, "fetched"))
        }
        (None, None) => {
            return Err(SmError::bad_request(
                "the submission has no `data_file` and the config no `fetch_data`",
            ))
        }
    };
    let note = Note {
        data_name,
        config: config_text,
        meta: form.meta.clone(),
        legacy: legacy_user.map(|user_id| LegacyNote {
            user_id,
            notification: form.notification.clone(),
            callback: form.callback.clone(),
        }),
    };
    Ok(Submission {
        config,
        notifications,
        note,
        audio,
    })
}

/// The last path component of a file name or URL (without its query), as the vendor shows a
/// job's `data_name`.
fn base_name(name: &str, fallback: &str) -> String {
    let path = name.split(['?', '#']).next().unwrap_or_default();
    let base = path.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.is_empty() {
        fallback.to_owned()
    } else {
        base.to_owned()
    }
}

/// Downloads `fetch.url` (with its `auth_headers`) into the spool, through the allow-list.
async fn fetch_audio(app: &App, fetch: &FetchData) -> SmResult<std::path::PathBuf> {
    crate::fetch::download(app, &fetch.url, &fetch.auth_headers)
        .await
        .map_err(|e| match e {
            FetchError::TooLarge { .. } => {
                SmError::Api(ApiError::PayloadTooLarge(format!("fetch_data.url {e}")))
            }
            FetchError::Refused { .. } => SmError::bad_request(format!("fetch_data.url {e}")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_names_are_the_last_path_component() {
        assert_eq!(base_name("calls/2026/a.wav", "x"), "a.wav");
        assert_eq!(base_name("https://h/x/b.mp3?sig=1", "x"), "b.mp3");
        assert_eq!(base_name("", "data_file"), "data_file");
        assert_eq!(base_name("https://h/", "fetched"), "fetched");
    }
}
