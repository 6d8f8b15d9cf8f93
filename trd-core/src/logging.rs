//! Structured logs for every TRD process, and the one way an error is written into them: with
//! its whole chain of causes.

use std::error::Error;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors (and the tests that read the logs).
    Json,
}

/// Installs the process's subscriber: `RUST_LOG` filters (a convention of the tracing
/// ecosystem, not a TRD setting), `format` from the typed settings shapes the lines.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lapin=warn,mongodb=warn"))
        // Rocket's server logs each request's raw head at debug level, before the identity
        // layer has taken the credential out of it: never below info, whatever RUST_LOG says.
        .add_directive("rocket::server=info".parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Displays an error followed by each of its causes: `outer: cause: root cause`. A cause whose
/// message the previous one already ends with (errors that print their source themselves) is
/// not repeated.
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        // Where the last link starts, so that a cause repeating it is not said twice.
        let mut last = 0;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let message = error.to_string();
            if message.starts_with(&text[last..]) {
                // The cause says the same and more ("X is unavailable: why"): it replaces it.
                text.truncate(last);
                text.push_str(&message);
            } else if !text.ends_with(&message) {
                text.push_str(": ");
                last = text.len();
                text.push_str(&message);
            }
            cause = error.source();
        }
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the stage failed")]
    struct Outer(#[source] Middle);

    /// Prints its source itself, as many library errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("storage trouble: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn every_cause_is_shown_once() {
        let root = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = Outer(Middle(root));
        assert_eq!(
            ErrorChain(&error).to_string(),
            "the stage failed: storage trouble: refused"
        );
    }

    #[test]
    fn the_format_is_read_from_its_lowercase_name() {
        let json: LogFormat = serde_json::from_str("\"json\"").unwrap();
        assert_eq!(json, LogFormat::Json);
        assert_eq!(LogFormat::default(), LogFormat::Text);
    }
}
