//! TRD's transcript export formats: pure functions from a file record and its segments to bytes.
//! No HTTP and no database; the API crate picks a format from the query and streams the output.
//!
//! A short tour:
//!
//! - [`ExportFormat`] (here): parses a `format=` name and its options once, at the edge, and
//!   knows each format's content type and file extension.
//! - [`render`] (here): the single entry point; writes one file's transcript incrementally, so
//!   the batch ZIP can stream thousands of files.
//! - `view`: what every format shares — which segments are shown, speaker labels, error text.
//! - `time`: the clock notations the formats use (`mm:ss:sss`, `HH:MM:SS.mmm`, …).
//! - one module per format: `csv` (the contract's columns), `txt`, `vtt` (WebVTT), `srt`
//!   (SubRip, with line-length–driven cue splitting), `trs` (Transcriber XML, plain and
//!   extended with word confidence).
//! - [`json_v2`]: Speechmatics' `json-v2` document, a typed value rather than bytes, since the
//!   Speechmatics face needs the job's details and request beside the segments.
//! - The recognize-now faces' own formats, each written so that the document for the first
//!   segments is the beginning of the whole one (they stream): [`openai`] (json,
//!   verbose_json, stream events), [`plain`] (the words only), [`uwebasr`] (word-per-line
//!   JSON, SpeechCloud events, errors in each format), [`whisper`] (tsv, Whisper's JSON),
//!   [`nanotrix`] (engine-stream NDJSON).
//! - [`openai`]: OpenAI's transcription shapes (`json`, `verbose_json`, streamed events).
//!
//! Errors travel inside each format, the way the format allows (a `#` line in text, a `NOTE` in
//! WebVTT, a cue in SubRip, elements in Transcriber XML); each module's docs say how. CSV is the
//! exception: the contract fixes its columns, so a failed segment is just a row with its text.

use std::io::{BufWriter, Write};
use std::num::NonZeroUsize;

use trd_core::domain::{AudioFile, Segment};

mod csv;
pub mod json_v2;
pub mod nanotrix;
pub mod openai;
pub mod plain;
mod srt;
#[cfg(test)]
mod test_support;
mod time;
mod trs;
mod txt;
pub mod uwebasr;
mod view;
mod vtt;
pub mod whisper;

/// Why a format could not be chosen or an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("unknown export format `{name}`; accepted formats: {}", ExportFormat::NAMES.join(", "))]
    UnknownFormat { name: String },
    #[error("`{option}` must be a positive number")]
    ZeroOption { option: &'static str },
    #[error("writing the export failed: {0}")]
    Write(#[from] std::io::Error),
}

/// Query options a format may take; each format ignores those it has no use for, so a client
/// can send the same query for every format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// SubRip: characters per subtitle line (default 37).
    pub max_line_length: Option<usize>,
    /// SubRip: lines per cue (default 2).
    pub max_lines: Option<usize>,
}

/// An export format, with its options already validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Txt,
    Vtt,
    Srt {
        max_line_length: NonZeroUsize,
        max_lines: NonZeroUsize,
    },
    Trs,
    ExtendedTrs,
}

impl ExportFormat {
    /// Every name [`ExportFormat::parse`] accepts (`plaintext` and `webvtt` are the names the
    /// UWebASR-style clients use).
    pub const NAMES: [&'static str; 8] = [
        "csv",
        "txt",
        "plaintext",
        "vtt",
        "webvtt",
        "srt",
        "trs",
        "extended_trs",
    ];

    pub const DEFAULT_MAX_LINE_LENGTH: NonZeroUsize = NonZeroUsize::new(37).unwrap();
    pub const DEFAULT_MAX_LINES: NonZeroUsize = NonZeroUsize::new(2).unwrap();

    /// Parses a format name (case-insensitive) and the options that format uses.
    pub fn parse(name: &str, options: ExportOptions) -> Result<Self, ExportError> {
        let format = match name.to_ascii_lowercase().as_str() {
            "csv" => Self::Csv,
            "txt" | "plaintext" => Self::Txt,
            "vtt" | "webvtt" => Self::Vtt,
            "srt" => Self::Srt {
                max_line_length: positive(
                    "max_line_length",
                    options.max_line_length,
                    Self::DEFAULT_MAX_LINE_LENGTH,
                )?,
                max_lines: positive("max_lines", options.max_lines, Self::DEFAULT_MAX_LINES)?,
            },
            "trs" => Self::Trs,
            "extended_trs" => Self::ExtendedTrs,
            _ => {
                return Err(ExportError::UnknownFormat {
                    name: name.to_owned(),
                })
            }
        };
        Ok(format)
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Txt => "text/plain; charset=utf-8",
            Self::Vtt => "text/vtt; charset=utf-8",
            Self::Srt { .. } => "application/x-subrip; charset=utf-8",
            Self::Trs | Self::ExtendedTrs => "text/xml; charset=utf-8",
        }
    }

    /// The file extension (without the dot) for a download or a ZIP entry.
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Txt => "txt",
            Self::Vtt => "vtt",
            Self::Srt { .. } => "srt",
            Self::Trs | Self::ExtendedTrs => "trs",
        }
    }
}

fn positive(
    option: &'static str,
    value: Option<usize>,
    default: NonZeroUsize,
) -> Result<NonZeroUsize, ExportError> {
    match value {
        None => Ok(default),
        Some(n) => NonZeroUsize::new(n).ok_or(ExportError::ZeroOption { option }),
    }
}

/// Writes `file`'s transcript in `format` to `out`. `segments` must be ordered by start time.
/// Output is buffered here and flushed at the end, so `out` may be a raw socket or ZIP entry.
pub fn render(
    format: &ExportFormat,
    file: &AudioFile,
    segments: &[Segment],
    out: &mut impl Write,
) -> Result<(), ExportError> {
    let mut out = BufWriter::new(out);
    match *format {
        ExportFormat::Csv => csv::write(file, segments, &mut out)?,
        ExportFormat::Txt => txt::write(file, segments, &mut out)?,
        ExportFormat::Vtt => vtt::write(file, segments, &mut out)?,
        ExportFormat::Srt {
            max_line_length,
            max_lines,
        } => srt::write(
            file,
            segments,
            srt::Layout {
                max_line_length: max_line_length.get(),
                max_lines: max_lines.get(),
            },
            &mut out,
        )?,
        ExportFormat::Trs => trs::write(file, segments, trs::Detail::Text, &mut out)?,
        ExportFormat::ExtendedTrs => trs::write(file, segments, trs::Detail::Words, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_advertised_name() {
        for name in ExportFormat::NAMES {
            assert!(
                ExportFormat::parse(name, ExportOptions::default()).is_ok(),
                "{name}"
            );
        }
        assert_eq!(
            ExportFormat::parse("WebVTT", ExportOptions::default()).unwrap(),
            ExportFormat::Vtt
        );
    }

    #[test]
    fn unknown_format_names_the_accepted_ones() {
        let err = ExportFormat::parse("docx", ExportOptions::default()).unwrap_err();
        assert!(matches!(err, ExportError::UnknownFormat { ref name } if name == "docx"));
        let message = err.to_string();
        assert!(message.contains("`docx`"), "{message}");
        assert!(message.contains("csv, txt, plaintext, vtt, webvtt, srt, trs, extended_trs"));
    }

    #[test]
    fn srt_options_default_and_refuse_zero() {
        let default = ExportFormat::parse("srt", ExportOptions::default()).unwrap();
        assert_eq!(
            default,
            ExportFormat::Srt {
                max_line_length: NonZeroUsize::new(37).unwrap(),
                max_lines: NonZeroUsize::new(2).unwrap(),
            }
        );
        let custom = ExportOptions {
            max_line_length: Some(20),
            max_lines: Some(3),
        };
        assert_eq!(
            ExportFormat::parse("srt", custom).unwrap(),
            ExportFormat::Srt {
                max_line_length: NonZeroUsize::new(20).unwrap(),
                max_lines: NonZeroUsize::new(3).unwrap(),
            }
        );
        let zero = ExportOptions {
            max_lines: Some(0),
            ..ExportOptions::default()
        };
        assert!(matches!(
            ExportFormat::parse("srt", zero),
            Err(ExportError::ZeroOption {
                option: "max_lines"
            })
        ));
        // Options a format has no use for are ignored rather than refused.
        assert_eq!(ExportFormat::parse("csv", zero).unwrap(), ExportFormat::Csv);
    }
}
