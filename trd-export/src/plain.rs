//! Plain text: the words only, one line per segment with speech (UWebASR's `plaintext`,
//! whisper's `txt`). Errors are lines starting with `#` (the UWebASR convention): a failed
//! file ends with `# FAILED at <STAGE>: <reason>`, a failed segment is `# FAILURE: <reason>`
//! in its place. Every line depends only on its own segment, so the text of the first
//! segments is always the beginning of the whole text: it streams.

use trd_core::domain::{AudioFile, Segment};

use crate::view::{self, Entry};

/// The text of `segments` (by start time); with `done`, the file's error, if it failed, last.
pub fn text(file: &AudioFile, segments: &[Segment], done: bool) -> String {
    let mut out = String::new();
    for entry in view::entries(segments) {
        match entry {
            Entry::Speech { text, .. } => out.push_str(&text),
            Entry::Failed { message, .. } => {
                out.push_str("# ");
                out.push_str(&message);
            }
        }
        out.push('\n');
    }
    if done {
        if let Some(error) = view::file_error(file) {
            out.push_str(&format!("# {error}\n"));
        }
    }
    out
}
