//! Transcriber XML (the annotation tool's `trans-14.dtd` format), plain and extended:
//!
//! ```xml
//! <Trans scribe="TRD" audio_filename="file1.wav">
//!   <Speakers><Speaker id="spk1" name="speaker 1"/>…</Speakers>
//!   <Episode>
//!     <Section type="report" startTime="0" endTime="520">
//!       <Turn speaker="spk1" startTime="0.56" endTime="7.4">
//!         <Sync time="0.56"/>boa tarde eu posso falar com a sabrina</Turn>
//! ```
//!
//! One `Section` spans the audio; each shown segment (see `view::entries`) is one `Turn`, in
//! start order. Turns mirror segments as they are: gaps are not padded with empty turns, and the
//! turns of different channels may overlap, which Transcriber's single time line cannot express
//! otherwise. Speaker ids are `spk1`, `spk2`, … in order of first appearance (XML ids must not
//! start with a digit); the `name` is the label the other formats use.
//!
//! Extended adds confidence, scaled 0–1 with two decimals like UWebASR's: a `conf` attribute on
//! each `Turn` (the segment's score) and, in place of the text, one
//! `<Word start=".." end=".." conf="..">word</Word>` per recognized word. A segment without word
//! timings keeps its plain text.
//!
//! Errors are elements, as in UWebASR's TRS: a failed file has `<ErrorStage>` and
//! `<ErrorReason>` at the top of `Episode`; a failed segment keeps its `Turn`, holding
//! Transcriber's own `<Comment desc="FAILURE: <reason>"/>` instead of text.

use std::io::{self, Write};

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use trd_core::domain::{AudioFile, Segment};

use crate::time::Millis;
use crate::view::{self, Entry, Speakers};

/// What a turn holds besides its time and speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    Text,
    /// Words with times and confidence (`extended_trs`).
    Words,
}

pub(crate) fn write(
    file: &AudioFile,
    segments: &[Segment],
    detail: Detail,
    out: &mut impl Write,
) -> io::Result<()> {
    let entries: Vec<Entry<'_>> = view::entries(segments).collect();
    let speakers = SpeakerIds::collect(file, segments, &entries);
    let mut xml = Writer::new_with_indent(out, b' ', 2);
    xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    xml.write_event(Event::DocType(BytesText::from_escaped(
        "Trans SYSTEM \"trans-14.dtd\"",
    )))?;
    xml.create_element("Trans")
        .with_attributes([
            ("scribe", "TRD"),
            ("audio_filename", file.filename.as_str()),
        ])
        .write_inner_content(|xml| {
            xml.create_element("Speakers").write_inner_content(|xml| {
                for (id, name) in speakers.ids.iter().zip(&speakers.names) {
                    xml.create_element("Speaker")
                        .with_attributes([("id", id.as_str()), ("name", name.as_str())])
                        .write_empty()?;
                }
                Ok(())
            })?;
            xml.create_element("Episode").write_inner_content(|xml| {
                if let Some(error) = &file.error {
                    xml.create_element("ErrorStage")
                        .write_text_content(BytesText::new(error.stage.as_str()))?;
                    xml.create_element("ErrorReason")
                        .write_text_content(BytesText::new(&view::one_line(&error.reason)))?;
                }
                let end = Millis::from_secs(audio_end(file, segments)).seconds();
                xml.create_element("Section")
                    .with_attributes([("type", "report"), ("startTime", "0"), ("endTime", &end)])
                    .write_inner_content(|xml| {
                        for entry in &entries {
                            write_turn(xml, entry, speakers.id_of(entry.segment()), detail)?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
            Ok(())
        })?;
    // Transcriber files end with a newline; the writer does not add one.
    xml.get_mut().write_all(b"\n")
}

fn write_turn<W: Write>(
    xml: &mut Writer<W>,
    entry: &Entry<'_>,
    speaker: &str,
    detail: Detail,
) -> io::Result<()> {
    let segment = entry.segment();
    let start = Millis::from_secs(segment.start).seconds();
    let end = Millis::from_secs(segment.end.max(segment.start)).seconds();
    let mut turn = xml.create_element("Turn").with_attributes([
        ("speaker", speaker),
        ("startTime", &start),
        ("endTime", &end),
    ]);
    let words = detail == Detail::Words && matches!(entry, Entry::Speech { .. });
    if words {
        turn = turn.with_attribute(("conf", confidence(segment.score).as_str()));
    }
    turn.write_inner_content(|xml| {
        xml.create_element("Sync")
            .with_attribute(("time", start.as_str()))
            .write_empty()?;
        match entry {
            Entry::Failed { message, .. } => {
                xml.create_element("Comment")
                    .with_attribute(("desc", message.as_str()))
                    .write_empty()?;
            }
            Entry::Speech { segment, .. } if words && !segment.words.is_empty() => {
                for word in &segment.words {
                    xml.create_element("Word")
                        .with_attributes([
                            ("start", Millis::from_secs(word.start).seconds().as_str()),
                            ("end", &Millis::from_secs(word.end).seconds()),
                            ("conf", &confidence(word.score)),
                        ])
                        .write_text_content(BytesText::new(&view::one_line(&word.text)))?;
                }
            }
            Entry::Speech { text, .. } => {
                xml.write_event(Event::Text(BytesText::new(text)))?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// A 0–100 score as a 0–1 confidence with two decimals.
fn confidence(score: u32) -> String {
    format!("{:.2}", f64::from(score.min(100)) / 100.0)
}

/// Where the section ends: the longest channel, or the last segment if the file's channels are
/// not known yet (or the recognizer ran past them).
fn audio_end(file: &AudioFile, segments: &[Segment]) -> f64 {
    let channels = file.audio_channels.iter().flatten().map(|c| c.duration);
    let ends = segments.iter().map(|s| s.end);
    channels.chain(ends).fold(0.0, f64::max)
}

/// Transcriber speaker ids and names, in order of first appearance.
struct SpeakerIds {
    /// The label each speaker has in the other formats; its position gives the id.
    names: Vec<String>,
    ids: Vec<String>,
    labels: Speakers,
}

impl SpeakerIds {
    fn collect(file: &AudioFile, segments: &[Segment], entries: &[Entry<'_>]) -> Self {
        let labels = Speakers::new(file, segments);
        let mut names: Vec<String> = Vec::new();
        for entry in entries {
            let name = labels.label(entry.segment());
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let ids = (1..=names.len()).map(|n| format!("spk{n}")).collect();
        Self { names, ids, labels }
    }

    fn id_of(&self, segment: &Segment) -> &str {
        let name = self.labels.label(segment);
        let index = self.names.iter().position(|n| *n == name);
        // Every shown segment's speaker was collected from the same entries.
        index.map_or("", |i| self.ids[i].as_str())
    }
}
