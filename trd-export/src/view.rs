//! What every reading format (txt, WebVTT, SubRip, Transcriber) sees of a file: which segments
//! are shown, how a speaker is named, and the text of an error. CSV does not use this; its rows
//! are fixed by the contract.

use trd_core::domain::{AudioFile, Segment, SegmentStatus};

/// One segment as the reading formats show it.
pub(crate) enum Entry<'a> {
    /// Recognized words (`text` has its whitespace, newlines included, collapsed to one space).
    Speech { segment: &'a Segment, text: String },
    /// A segment whose recognition failed; `message` says how and why.
    Failed {
        segment: &'a Segment,
        message: String,
    },
}

impl<'a> Entry<'a> {
    pub(crate) fn segment(&self) -> &'a Segment {
        match self {
            Entry::Speech { segment, .. } | Entry::Failed { segment, .. } => segment,
        }
    }
}

/// The segments worth showing: failures always, others only when they have words. Silence,
/// NO_MATCH and not-yet-recognized segments carry nothing a reader could use.
pub(crate) fn entries(segments: &[Segment]) -> impl Iterator<Item = Entry<'_>> {
    segments.iter().filter_map(|segment| {
        if let Some(message) = failure_message(segment) {
            return Some(Entry::Failed { segment, message });
        }
        let text = one_line(&segment.text);
        (!text.is_empty()).then_some(Entry::Speech { segment, text })
    })
}

/// `FAILURE: <reason>` for the statuses that mean recognition broke (as opposed to finding no
/// speech), `None` otherwise.
fn failure_message(segment: &Segment) -> Option<String> {
    let status = segment.status;
    if !matches!(
        status,
        SegmentStatus::Failure | SegmentStatus::RecognitionTimeout
    ) {
        return None;
    }
    Some(match segment.reason.as_deref().map(one_line) {
        Some(reason) if !reason.is_empty() => format!("{}: {reason}", status.as_str()),
        _ => status.as_str().to_owned(),
    })
}

/// `FAILED at <STAGE>: <reason>` when the whole file failed.
pub(crate) fn file_error(file: &AudioFile) -> Option<String> {
    file.error
        .as_ref()
        .map(|e| format!("FAILED at {}: {}", e.stage, one_line(&e.reason)))
}

/// Collapses every run of whitespace (newlines included) to one space: the reading formats are
/// line-oriented, and a stray newline would end a cue or a text line early.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Rewrites every `->` as `→`, so no `-->` remains: in WebVTT and SubRip that arrow marks a
/// timing line, and a parser meeting it inside text would lose the cue.
pub(crate) fn without_cue_arrows(text: &str) -> String {
    text.replace("->", "→")
}

/// Names speakers. `Segment.speaker` is only unique within a channel, so a file with several
/// channels names the channel too.
pub(crate) struct Speakers {
    multichannel: bool,
}

impl Speakers {
    pub(crate) fn new(file: &AudioFile, segments: &[Segment]) -> Self {
        let declared = file.audio_channels.as_ref().map_or(0, Vec::len);
        let first = segments.first().map(|s| s.channel);
        let mixed = segments.iter().any(|s| Some(s.channel) != first);
        Self {
            multichannel: declared > 1 || mixed,
        }
    }

    /// `speaker 1`, or `channel 2, speaker 1` in a multi-channel file.
    pub(crate) fn label(&self, segment: &Segment) -> String {
        if self.multichannel {
            format!("channel {}, speaker {}", segment.channel, segment.speaker)
        } else {
            format!("speaker {}", segment.speaker)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cue_arrow_survives() {
        for text in ["a --> b", "--->", "-->-->", "x->y", "<!-- x -->"] {
            assert!(!without_cue_arrows(text).contains("-->"), "{text}");
        }
    }

    #[test]
    fn one_line_collapses_all_whitespace() {
        assert_eq!(one_line("  a,\n\tb  \r\n c "), "a, b c");
    }
}
