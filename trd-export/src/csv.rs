//! CSV exactly as the contract fixes it (section 5): a header row, then one row per segment,
//! RFC 4180 (CRLF line ends, fields quoted only when needed), UTF-8 without a byte-order mark.
//!
//! Errors: the contract fixes the columns and leaves the reserved ones empty, so there is no
//! place for them. Every segment still gets its row — a failed one with whatever text it has
//! (usually none) — and a failed file with no segments is a header alone; clients read the
//! error from the JSON record.

use std::io::{self, Write};

use trd_core::domain::{AudioFile, Segment};

use crate::time::Millis;

const HEADER: [&str; 11] = [
    "contador",
    "canal",
    "início",
    "fim",
    "speaker",
    "texto",
    "score",
    "reservado 1",
    "reservado 2",
    "bitrate",
    "reservado 3",
];

pub(crate) fn write(file: &AudioFile, segments: &[Segment], out: impl Write) -> io::Result<()> {
    let mut csv = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(out);
    csv.write_record(HEADER)?;
    let bitrate = kbps(file);
    for (index, segment) in segments.iter().enumerate() {
        csv.write_record([
            (index + 1).to_string().as_str(),
            &segment.channel.to_string(),
            &Millis::from_secs(segment.start).csv(),
            &Millis::from_secs(segment.end).csv(),
            &segment.speaker,
            &segment.text,
            &segment.score.to_string(),
            "",
            "",
            &bitrate,
            "",
        ])?;
    }
    csv.flush()
}

/// The file's bit rate in kbps, from the normalizer's `BitRate` (bit/s, as a string); empty when
/// it is unknown rather than a misleading 0.
fn kbps(file: &AudioFile) -> String {
    file.info
        .as_ref()
        .and_then(|info| info.bit_rate.trim().parse::<f64>().ok())
        .filter(|bps| bps.is_finite() && *bps > 0.0)
        .map(|bps| format!("{:.0}", (bps / 1000.0).round()))
        .unwrap_or_default()
}
