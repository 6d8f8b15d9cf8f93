//! The optional query parameters of a start, on a file or a batch, read from the query string
//! (Rocket's forms would read the dotted names `lm.uri` and `hints.words` as nested fields)
//! and turned into the job core's [`StartOptions`].

use rocket::request::{FromRequest, Outcome, Request};
use serde::Deserialize;
use trd_core::domain::StartOptions;
use utoipa::IntoParams;

use crate::error::ApiError;

/// Optional query parameters of a start, as the client wrote them.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct StartQuery {
    /// Recognition model id (one of the configured models; unknown ids are refused).
    #[serde(rename = "lm.uri")]
    #[param(rename = "lm.uri")]
    pub lm_uri: Option<String>,
    /// Comma-separated words or phrases expected in the audio (repeatable).
    #[serde(rename = "hints.words")]
    #[param(rename = "hints.words")]
    pub hints_words: Vec<String>,
    /// URL to notify when the file ends (repeatable).
    pub webhook: Vec<String>,
    /// `auto`, `speaker`, `channel` or `none`.
    pub diarization: Option<String>,
    /// Exact number of speakers (1–32).
    pub speakers: Option<String>,
    /// Fewest speakers (1–32).
    pub min_speakers: Option<String>,
    /// Most speakers (1–32).
    pub max_speakers: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for StartQuery {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let mut query = StartQuery::default();
        for field in req.query_fields() {
            let value = field.value.trim().to_owned();
            match field.name.source().as_str() {
                "lm.uri" => query.lm_uri = Some(value),
                "hints.words" => query.hints_words.push(value),
                "webhook" => query.webhook.push(value),
                "diarization" => query.diarization = Some(value),
                "speakers" => query.speakers = Some(value),
                "min_speakers" => query.min_speakers = Some(value),
                "max_speakers" => query.max_speakers = Some(value),
                _ => {}
            }
        }
        Outcome::Success(query)
    }
}

impl StartQuery {
    /// The start options the parameters spell; whether the service can honour them is the
    /// job core's question (`Jobs::check_options`).
    pub fn into_options(self) -> Result<StartOptions, ApiError> {
        let speakers = self
            .speakers
            .as_deref()
            .map(|v| count("speakers", v))
            .transpose()?;
        Ok(StartOptions {
            model: self.lm_uri.filter(|m| !m.is_empty()),
            hints: self
                .hints_words
                .iter()
                .flat_map(|words| words.split(','))
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect(),
            webhooks: self.webhook,
            notices: Vec::new(),
            diarization: self.diarization,
            min_speakers: match &self.min_speakers {
                Some(v) => Some(count("min_speakers", v)?),
                None => speakers,
            },
            max_speakers: match &self.max_speakers {
                Some(v) => Some(count("max_speakers", v)?),
                None => speakers,
            },
            ..StartOptions::default()
        })
    }
}

fn count(name: &str, value: &str) -> Result<u32, ApiError> {
    value.parse::<u32>().map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be a whole number from 1 to 32, not '{value}'"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_split_on_commas_and_speakers_set_both_bounds() {
        let query = StartQuery {
            hints_words: vec!["서울, 부산".into(), "대전".into()],
            speakers: Some("2".into()),
            ..StartQuery::default()
        };
        let options = query.into_options().unwrap();
        assert_eq!(options.hints, ["서울", "부산", "대전"]);
        assert_eq!(
            (options.min_speakers, options.max_speakers),
            (Some(2), Some(2))
        );
    }

    #[test]
    fn a_count_that_is_no_number_is_refused() {
        let query = StartQuery {
            max_speakers: Some("many".into()),
            ..StartQuery::default()
        };
        let e = query.into_options().unwrap_err();
        assert!(
            e.to_string()
                .contains("max_speakers must be a whole number"),
            "{e}"
        );
    }
}
