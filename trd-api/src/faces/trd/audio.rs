//! `/trd/audiofile/audio/{id}`: a file's audio, for listening (the console's player), with
//! HTTP Range support, under the same rules as its record: the original recording, or a WAV
//! copy for formats browsers do not play.

use rocket::http::ContentType;
use rocket::{get, State};

use super::parse_id;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::identity::{Access, Read};
use crate::ranged::{Part, RangeHeader, RangedFile};

#[utoipa::path(
    tag = "audiofile",
    summary = "A file's original audio, with Range requests",
    description = "The recording as it lies in the work directory, or (`format=wav`) decoded into WAV for players that cannot read its format. A `Range: bytes=…` header with one range is answered 206 with those bytes; a range past the end is 416. A principal that may not see the record gets 404, as for a missing one.",
    params(
        ("id" = String, Path, pattern = "^[0-9a-f]{24}$", description = "The file's id"),
        ("format" = Option<String>, Query, description = "`original` (default): the recording as it is; `wav`: 16-bit PCM WAV at the service's sample rate, every channel, for formats browsers do not play"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-1023`"),
    ),
    responses(
        (status = 200, description = "The whole recording, typed by its file name's extension", content(
            (crate::shapes::Binary = "audio/*"),
            (crate::shapes::Binary = "application/octet-stream"),
        )),
        (status = 206, description = "The range asked for", content(
            (crate::shapes::Binary = "audio/*"),
            (crate::shapes::Binary = "application/octet-stream"),
        )),
        (status = 416, description = "The range lies past the end"),
    )
)]
#[get("/audiofile/audio/<id>?<format>")]
pub async fn audio(
    app: &State<App>,
    who: Access<Read>,
    id: &str,
    format: Option<&str>,
    range: RangeHeader,
) -> ApiResult<RangedFile> {
    let record = app.jobs.record(parse_id(id)?.object_id()).await?;
    who.check_record(&record)?;
    let name = record
        .filename
        .rsplit('/')
        .next()
        .unwrap_or(&record.filename)
        .to_owned();
    let (file, content_type, filename) = match format.unwrap_or("original") {
        "original" => (
            app.jobs.open_audio(&record)?,
            content_type_of(&record.filename),
            name,
        ),
        "wav" => {
            let copy = app.jobs.playable_copy(&record).await?;
            let file = std::fs::File::open(&copy)
                .map_err(|e| ApiError::internal("cannot open the playable copy", e))?;
            (
                file,
                ContentType::new("audio", "wav"),
                format!("{name}.wav"),
            )
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown format '{other}': `original` (default) or `wav`"
            )))
        }
    };
    let len = file
        .metadata()
        .map_err(|e| ApiError::internal("cannot read the audio file's size", e))?
        .len();
    Ok(RangedFile {
        file,
        len,
        content_type,
        filename,
        part: Part::of(&range, len),
    })
}

/// The media type a browser needs to play the file, from its extension.
fn content_type_of(filename: &str) -> ContentType {
    let extension = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let known = match extension.as_str() {
        "wav" | "wave" => Some(("audio", "wav")),
        "mp3" => Some(("audio", "mpeg")),
        "flac" => Some(("audio", "flac")),
        "ogg" | "oga" => Some(("audio", "ogg")),
        "opus" => Some(("audio", "ogg")),
        "m4a" | "mp4" | "aac" => Some(("audio", "mp4")),
        "webm" => Some(("audio", "webm")),
        _ => None,
    };
    known.map_or(ContentType::Binary, |(top, sub)| ContentType::new(top, sub))
}
