//! Request guards: the app's shared services, the public base URL, and the start parameters.

use std::sync::Arc;

use rocket::request::{FromRequest, Outcome, Request};
use trd_core::domain::{AudioFileId, BatchName, StartOptions};
use trd_core::{Queue, Settings, Store};

use crate::error::ApiError;

/// What every route may use.
#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub queue: Queue,
}

/// `http://host:port` as the client addressed us, for the URLs we hand back.
pub struct BaseUrl(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BaseUrl {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let host = req
            .host()
            .map(|h| h.to_string())
            .or_else(|| req.rocket().config().port.to_string().into())
            .unwrap_or_default();
        let host = if host.contains(':') || host.is_empty() {
            host
        } else {
            format!("{host}:{}", req.rocket().config().port)
        };
        Outcome::Success(BaseUrl(format!("http://{host}")))
    }
}

impl BaseUrl {
    pub fn audiofile_url(&self, id: impl std::fmt::Display) -> String {
        format!("{}/trd/audiofile/{id}", self.0)
    }
}

pub fn parse_id(raw: &str) -> Result<AudioFileId, ApiError> {
    Ok(AudioFileId::parse(raw)?)
}

pub fn parse_batch(raw: &str) -> Result<BatchName, ApiError> {
    Ok(BatchName::parse(raw)?)
}

/// Query parameters of a start: `lm.uri`, `hints.words`, repeatable `webhook`.
pub struct StartParams(pub Result<StartOptions, ApiError>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for StartParams {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let app = req.rocket().state::<App>().expect("App is managed");
        Outcome::Success(StartParams(parse_start_options(req, &app.settings)))
    }
}

fn parse_start_options(req: &Request<'_>, settings: &Settings) -> Result<StartOptions, ApiError> {
    let mut options = StartOptions::default();
    for field in req.query_fields() {
        let value = field.value.trim();
        match field.name.source().as_str() {
            "lm.uri" => {
                if value.is_empty() {
                    continue;
                }
                if settings.model_dir(value).is_none() {
                    let known: Vec<&str> = settings.models.keys().map(String::as_str).collect();
                    return Err(ApiError::BadRequest(format!(
                        "unknown recognition model 'lm.uri={value}'; configured models: {}",
                        known.join(", ")
                    )));
                }
                options.model = Some(value.to_owned());
            }
            "hints.words" => options.hints.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned),
            ),
            "webhook" => {
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    return Err(ApiError::BadRequest(format!(
                        "webhook '{value}' must be an http:// or https:// URL"
                    )));
                }
                options.webhooks.push(value.to_owned());
            }
            "diarization" => {
                const MODES: [&str; 4] = ["auto", "speaker", "channel", "none"];
                if !MODES.contains(&value) {
                    return Err(ApiError::BadRequest(format!(
                        "diarization '{value}' is not one of {}",
                        MODES.join(", ")
                    )));
                }
                options.diarization = Some(value.to_owned());
            }
            "speakers" => {
                let n = speaker_count("speakers", value)?;
                options.min_speakers = Some(n);
                options.max_speakers = Some(n);
            }
            "min_speakers" => options.min_speakers = Some(speaker_count("min_speakers", value)?),
            "max_speakers" => options.max_speakers = Some(speaker_count("max_speakers", value)?),
            _ => {}
        }
    }
    if let (Some(min), Some(max)) = (options.min_speakers, options.max_speakers) {
        if min > max {
            return Err(ApiError::BadRequest(format!(
                "min_speakers {min} is above max_speakers {max}"
            )));
        }
    }
    Ok(options)
}

fn speaker_count(name: &str, value: &str) -> Result<u32, ApiError> {
    match value.parse::<u32>() {
        Ok(n @ 1..=32) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "{name} must be a whole number from 1 to 32, not '{value}'"
        ))),
    }
}
