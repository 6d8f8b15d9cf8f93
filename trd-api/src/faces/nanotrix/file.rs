//! Nanotrix's file API: `POST /api/v1/file/v2t` with an `ntx-token`, multipart `file`, and
//! optionally `lexicon` (JSON; its user words become hints) and `channel` (`downmix`, the
//! default, or `left` / `right`: only that channel is recognized). The answer is
//! newline-delimited JSON engine-stream objects, a line per recognised segment as the workers
//! store it, then `{"end": {}}` (`trd_export::nanotrix`).

use futures::StreamExt;
use rocket::form::{Errors, Form};
use rocket::fs::TempFile;
use rocket::http::ContentType;
use rocket::{post, FromForm, State};
use serde_json::Value;
use trd_core::domain::{AudioFile, Segment, StartOptions};
use utoipa::ToSchema;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::faces::now::{self, PacedAudio, Streamed};
use crate::identity::guard::{Access, Operate};
use crate::identity::paced::Paced;
use crate::jobs::NowRequest;
use crate::shapes::Binary;

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![v2t]
}

#[derive(FromForm, ToSchema)]
#[schema(as = NanotrixFileForm)]
pub struct FileForm<'r> {
    #[schema(value_type = Option<Binary>)]
    file: Option<TempFile<'r>>,
    /// JSON: user words (`{"items": [{"user": "word"}]}`, or a list of words).
    lexicon: Option<String>,
    /// `downmix` (default), `left` or `right`.
    channel: Option<String>,
}

/// Which channel the caller wants heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Downmix,
    Left,
    Right,
}

#[utoipa::path(
    tag = "nanotrix",
    summary = "Transcribe a file (Nanotrix's file API; NDJSON, streamed as the workers recognize it)",
    request_body(content = FileForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "Engine-stream objects, one per line", body = String, content_type = "application/x-ndjson"))
)]
#[post("/api/v1/file/v2t", data = "<form>")]
pub async fn v2t(
    app: &State<App>,
    who: Access<Operate>,
    form: PacedAudio<Result<Form<FileForm<'_>>, Errors<'_>>>,
) -> ApiResult<Streamed<futures::stream::BoxStream<'static, Vec<u8>>>> {
    let Paced { body: form, slot } = form;
    let mut form = form.map_err(|e| now::form_error(app, e))?;
    let channel = match form.channel.as_deref().map(str::trim) {
        None | Some("") | Some("downmix") => Channel::Downmix,
        Some("left") => Channel::Left,
        Some("right") => Channel::Right,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "channel '{other}' is not one of downmix, left, right"
            )))
        }
    };
    let hints = match form
        .lexicon
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        Some(lexicon) => lexicon_words(lexicon)?,
        None => Vec::new(),
    };
    let Some(part) = form.file.as_mut() else {
        return Err(ApiError::BadRequest("the request has no `file`".into()));
    };
    let (audio, name) = now::spooled(app, part).await?;
    let request = NowRequest {
        location: now::location(&who, None, name.as_deref())?,
        audio,
        options: StartOptions {
            hints,
            // Channels are kept apart when one of them is asked for.
            diarization: Some(
                if channel == Channel::Downmix {
                    "none"
                } else {
                    "channel"
                }
                .to_owned(),
            ),
            ..StartOptions::default()
        },
        keep: false,
    };
    let (live, decoded) = now::run(app, slot, request).await?;
    let body = now::document_stream(live, decoded, move |r: &AudioFile, s: &[Segment], done| {
        let heard: Vec<Segment> = s
            .iter()
            .filter(|segment| wanted(channel, r, segment))
            .cloned()
            .collect();
        trd_export::nanotrix::ndjson(&heard, done).into_bytes()
    })
    .boxed();
    Ok(Streamed {
        content_type: ContentType::new("application", "x-ndjson"),
        headers: Vec::new(),
        body,
    })
}

/// Whether a segment is on the channel asked for. A file with one channel has it on both
/// sides.
fn wanted(channel: Channel, record: &AudioFile, segment: &Segment) -> bool {
    let channels = record.audio_channels.as_ref().map_or(1, Vec::len);
    match channel {
        Channel::Downmix => true,
        _ if channels < 2 => true,
        Channel::Left => segment.channel == 1,
        Channel::Right => segment.channel == 2,
    }
}

/// The words of a lexicon: the `user` (or `word`, `text`) field of each item, or the strings
/// of a plain list.
fn lexicon_words(lexicon: &str) -> ApiResult<Vec<String>> {
    let value: Value = serde_json::from_str(lexicon)
        .map_err(|e| ApiError::BadRequest(format!("the lexicon is not JSON: {e}")))?;
    let items = match &value {
        Value::Array(items) => items.clone(),
        Value::Object(object) => object
            .get("items")
            .or_else(|| object.get("lexicon"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut words: Vec<String> = items
        .iter()
        .filter_map(|item| match item {
            Value::String(word) => Some(word.clone()),
            Value::Object(entry) => ["user", "word", "text"]
                .iter()
                .find_map(|key| entry.get(*key).and_then(Value::as_str))
                .map(str::to_owned),
            _ => None,
        })
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty())
        .collect();
    words.dedup();
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_words_come_from_items_or_a_list() {
        assert_eq!(
            lexicon_words(
                r#"{"items": [{"user": "Praha", "sampa": "p r a h a"}, {"word": "Brno"}]}"#
            )
            .unwrap(),
            ["Praha", "Brno"]
        );
        assert_eq!(lexicon_words(r#"["a", " ", "b"]"#).unwrap(), ["a", "b"]);
        assert!(lexicon_words("not json").is_err());
    }
}
