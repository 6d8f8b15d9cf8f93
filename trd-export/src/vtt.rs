//! WebVTT: one cue per shown segment (see `view::entries`), the speaker as a voice span, times
//! `HH:MM:SS.mmm`:
//!
//! ```text
//! WEBVTT
//!
//! 00:00:00.560 --> 00:00:07.400
//! <v speaker 1>boa tarde eu posso falar com a sabrina
//! ```
//!
//! Cue text is escaped (`&amp;`, `&lt;`, `&gt;`) so a `<` in speech is not read as a tag; a
//! segment's newlines become spaces, because a blank line would end the cue.
//!
//! Errors are `NOTE` comment blocks (the UWebASR WebVTT convention): players skip them, people
//! and scripts can read them. A failed file gets `NOTE FAILED at <STAGE>: <reason>` right after
//! the header; a failed segment gets `NOTE <start> - <end> <speaker>: FAILURE: <reason>` in its
//! place in time. A comment may not contain `-->`, so any `->` in an error becomes `→`; in cue
//! text the escaping of `>` already prevents it.

use std::io::{self, Write};

use trd_core::domain::{AudioFile, Segment};

use crate::time::Millis;
use crate::view::{self, Entry, Speakers};

pub(crate) fn write(
    file: &AudioFile,
    segments: &[Segment],
    out: &mut impl Write,
) -> io::Result<()> {
    out.write_all(b"WEBVTT\n")?;
    if let Some(error) = view::file_error(file) {
        write!(out, "\nNOTE {}\n", view::without_cue_arrows(&error))?;
    }
    let speakers = Speakers::new(file, segments);
    for entry in view::entries(segments) {
        let segment = entry.segment();
        let start = Millis::from_secs(segment.start).clock('.');
        let end = Millis::from_secs(segment.end.max(segment.start)).clock('.');
        let speaker = speakers.label(segment);
        match &entry {
            Entry::Speech { text, .. } => write!(
                out,
                "\n{start} --> {end}\n<v {}>{}\n",
                escape(&speaker),
                escape(text)
            )?,
            Entry::Failed { message, .. } => write!(
                out,
                "\nNOTE {start} - {end} {}\n",
                view::without_cue_arrows(&format!("{speaker}: {message}"))
            )?,
        }
    }
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_characters() {
        assert_eq!(escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    }
}
