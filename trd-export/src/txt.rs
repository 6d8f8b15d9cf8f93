//! Plain text, one line per shown segment (see `view::entries`), UTF-8:
//!
//! ```text
//! [00:00.560 - 00:07.400] speaker 1: boa tarde eu posso falar com a sabrina
//! [00:08.100 - 00:09.000] channel 2, speaker 1: sim
//! ```
//!
//! Times are `mm:ss.mmm` (minutes keep counting past an hour); the channel is named only when the
//! file has more than one. Newlines inside a segment's text become spaces, so one line is always
//! one segment.
//!
//! Errors are lines starting with `#` (the UWebASR plaintext convention), so a reader can drop
//! them with one filter: a failed file opens with `# FAILED at <STAGE>: <reason>`, a failed
//! segment keeps its place in time as `# [start - end] speaker: FAILURE: <reason>`.

use std::io::{self, Write};

use trd_core::domain::{AudioFile, Segment};

use crate::time::Millis;
use crate::view::{self, Entry, Speakers};

pub(crate) fn write(
    file: &AudioFile,
    segments: &[Segment],
    out: &mut impl Write,
) -> io::Result<()> {
    if let Some(error) = view::file_error(file) {
        writeln!(out, "# {error}")?;
    }
    let speakers = Speakers::new(file, segments);
    for entry in view::entries(segments) {
        let segment = entry.segment();
        let (marker, text) = match &entry {
            Entry::Speech { text, .. } => ("", text),
            Entry::Failed { message, .. } => ("# ", message),
        };
        writeln!(
            out,
            "{marker}[{} - {}] {}: {text}",
            Millis::from_secs(segment.start).minutes(),
            Millis::from_secs(segment.end).minutes(),
            speakers.label(segment),
        )?;
    }
    Ok(())
}
