//! The start options any protocol may set, checked before anything is queued: a job that would
//! fail later for a reason known now is refused now.

use trd_core::domain::StartOptions;

use super::{JobError, JobResult, Jobs};
use crate::webhooks::allow::AllowList;

/// Diarization modes the diarizer knows.
pub const DIARIZATION_MODES: [&str; 4] = ["auto", "speaker", "channel", "none"];

/// Speaker counts the diarizer can be held to.
pub const SPEAKERS: std::ops::RangeInclusive<u32> = 1..=32;

/// Start options the service has checked it can honour: the only kind [`Jobs::start`] takes,
/// so a batch start checks once (webhook targets mean DNS look-ups), not once per file.
#[derive(Debug, Clone)]
pub struct CheckedOptions(StartOptions);

/// Bounds on what one start may ask for: each webhook is called for every file of the batch,
/// and every hint goes into each recognizer's grammar.
const MAX_WEBHOOKS: usize = 10;
const MAX_URL_BYTES: usize = 2_048;
const MAX_HINTS: usize = 1_000;
const MAX_HINT_CHARS: usize = 100;

/// The language a model id serves: the id up to its first `-` or `_` (`en-large` → `en`).
pub fn language_of(model_id: &str) -> &str {
    model_id.split(['-', '_']).next().unwrap_or(model_id)
}

impl CheckedOptions {
    pub fn options(&self) -> &StartOptions {
        &self.0
    }
}

impl Jobs {
    /// The languages the configured models serve: a model id up to its first `-` or `_`
    /// (`en-large` serves `en`), each once.
    pub fn languages(&self) -> Vec<String> {
        let mut served: Vec<String> = self
            .settings
            .models
            .keys()
            .map(|id| language_of(id).to_owned())
            .collect();
        served.dedup();
        served
    }

    /// The model serving `language`: the model of that id, or one whose id is the language
    /// and a variant (`en-large`). Refused, naming the languages served, otherwise.
    pub fn model_for_language(&self, language: &str) -> JobResult<String> {
        let models = &self.settings.models;
        if models.contains_key(language) {
            return Ok(language.to_owned());
        }
        if let Some(id) = models.keys().find(|id| language_of(id) == language) {
            return Ok(id.clone());
        }
        Err(JobError::InvalidOptions(format!(
            "language '{language}' is not served here; languages served: {}",
            self.languages().join(", ")
        )))
    }

    /// Refuses options the service cannot honour: an unknown model, an unknown diarization
    /// mode, impossible speaker counts, a webhook it may never call.
    pub async fn check_options(&self, options: StartOptions) -> JobResult<CheckedOptions> {
        let invalid = |message: String| Err(JobError::InvalidOptions(message));
        if let Some(model) = &options.model {
            if self.settings.model_dir(model).is_none() {
                let known: Vec<&str> = self.settings.models.keys().map(String::as_str).collect();
                return invalid(format!(
                    "unknown recognition model 'lm.uri={model}'; configured models: {}",
                    known.join(", ")
                ));
            }
        }
        if let Some(mode) = &options.diarization {
            if !DIARIZATION_MODES.contains(&mode.as_str()) {
                return invalid(format!(
                    "diarization '{mode}' is not one of {}",
                    DIARIZATION_MODES.join(", ")
                ));
            }
        }
        for (name, count) in [
            ("min_speakers", options.min_speakers),
            ("max_speakers", options.max_speakers),
        ] {
            if let Some(n) = count.filter(|n| !SPEAKERS.contains(n)) {
                return invalid(format!(
                    "{name} must be a whole number from {} to {}, not '{n}'",
                    SPEAKERS.start(),
                    SPEAKERS.end()
                ));
            }
        }
        if let (Some(min), Some(max)) = (options.min_speakers, options.max_speakers) {
            if min > max {
                return invalid(format!("min_speakers {min} is above max_speakers {max}"));
            }
        }
        if let Some(s) = options
            .speaker_sensitivity
            .filter(|s| !(0.0..=1.0).contains(s))
        {
            return invalid(format!(
                "speaker sensitivity must be from 0 to 1, not '{s}'"
            ));
        }
        let targets: Vec<String> = options
            .webhooks
            .iter()
            .chain(options.notices.iter().map(|n| &n.url))
            .cloned()
            .collect();
        if targets.len() > MAX_WEBHOOKS {
            return invalid(format!(
                "{} webhooks and notifications: at most {MAX_WEBHOOKS} per start",
                targets.len()
            ));
        }
        if let Some(url) = targets.iter().find(|u| u.len() > MAX_URL_BYTES) {
            return invalid(format!(
                "a webhook URL of {} bytes: at most {MAX_URL_BYTES}",
                url.len()
            ));
        }
        for (name, words) in [
            ("hints.words", &options.hints),
            ("avoided words", &options.avoided_words),
        ] {
            if words.len() > MAX_HINTS {
                return invalid(format!("{} {name}: at most {MAX_HINTS}", words.len()));
            }
            if let Some(hint) = words.iter().find(|h| h.chars().count() > MAX_HINT_CHARS) {
                return invalid(format!(
                    "the word '{}…' is longer than {MAX_HINT_CHARS} characters",
                    hint.chars().take(20).collect::<String>()
                ));
            }
        }
        self.check_webhook_targets(&targets).await?;
        Ok(CheckedOptions(options))
    }

    /// Refuses webhook URLs the service would never be allowed to call.
    async fn check_webhook_targets(&self, webhooks: &[String]) -> JobResult<()> {
        if webhooks.is_empty() {
            return Ok(());
        }
        let allow = AllowList::new(&self.settings.webhook_allow);
        for url in webhooks {
            let refused =
                |why: String| Err(JobError::InvalidOptions(format!("webhook '{url}': {why}")));
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(JobError::InvalidOptions(format!(
                    "webhook '{url}' must be an http:// or https:// URL"
                )));
            }
            let parsed = match reqwest::Url::parse(url) {
                Ok(parsed) => parsed,
                Err(e) => return refused(e.to_string()),
            };
            let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default())
            else {
                return Err(JobError::InvalidOptions(format!(
                    "webhook '{url}' has no host"
                )));
            };
            if let Err(e) = allow.check(host, port).await {
                return refused(e.to_string());
            }
        }
        Ok(())
    }
}
