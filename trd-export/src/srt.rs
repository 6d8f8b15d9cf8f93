//! SubRip: numbered cues of at most `max_lines` lines of at most `max_line_length` characters
//! (Unicode scalar values), times `HH:MM:SS,mmm`, LF line ends, a blank line after every cue.
//!
//! Text is broken at spaces, greedily. A word longer than a line gets a line of its own rather
//! than being cut. A segment whose lines do not fit one cue becomes several consecutive cues:
//! when the segment's words line up one-to-one with its text, a cue starts at its first word's
//! start time; otherwise the segment's time is shared out in proportion to characters. The first
//! cue starts at the segment's start, each cue ends where the next one starts, and the last ends
//! with the segment, so a segment stays on screen without gaps.
//!
//! SubRip has no speaker markup and subtitles have little room, so speakers are left out; use
//! WebVTT or Transcriber XML to keep them.
//!
//! Errors are cues a viewer sees, their text in brackets: a failed file opens with a cue
//! `[FAILED at <STAGE>: <reason>]` over the first [`FILE_ERROR_SECS`] seconds, a failed segment
//! is shown over its own time as `[FAILURE: <reason>]`. They are wrapped like speech.
//!
//! An `->` anywhere in the text becomes `→`, so no line can pass for a timing line.

use std::io::{self, Write};

use trd_core::domain::{AudioFile, Segment};

use crate::time::Millis;
use crate::view::{self, Entry};

/// How long a file-level error stays on screen: long enough to read a one-line message.
const FILE_ERROR_SECS: f64 = 5.0;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) max_line_length: usize,
    pub(crate) max_lines: usize,
}

pub(crate) fn write(
    file: &AudioFile,
    segments: &[Segment],
    layout: Layout,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut cues = Cues {
        out,
        layout,
        written: 0,
    };
    if let Some(error) = view::file_error(file) {
        let text = format!("[{}]", view::without_cue_arrows(&error));
        cues.write_span(&spread(&text, 0.0, FILE_ERROR_SECS), 0.0, FILE_ERROR_SECS)?;
    }
    for entry in view::entries(segments) {
        let segment = entry.segment();
        match &entry {
            Entry::Speech { text, .. } => {
                let text = view::without_cue_arrows(text);
                cues.write_span(&timed(&text, segment), segment.start, segment.end)?
            }
            Entry::Failed { message, .. } => {
                let text = format!("[{}]", view::without_cue_arrows(message));
                let tokens = spread(&text, segment.start, segment.end);
                cues.write_span(&tokens, segment.start, segment.end)?
            }
        }
    }
    Ok(())
}

/// A word of the displayed text and when it starts being spoken.
#[derive(Debug)]
struct Token<'a> {
    text: &'a str,
    start: f64,
}

/// Tokens of a segment's (one-line) text, timed by the recognizer's words when they match the
/// text word for word. They differ in punctuation only, so a count match is taken as alignment.
fn timed<'a>(text: &'a str, segment: &Segment) -> Vec<Token<'a>> {
    let parts: Vec<&str> = text.split(' ').collect();
    if parts.len() != segment.words.len() {
        return spread(text, segment.start, segment.end);
    }
    parts
        .into_iter()
        .zip(&segment.words)
        .map(|(text, word)| Token {
            text,
            start: word.start,
        })
        .collect()
}

/// Tokens of a one-line text, each starting when its share of the characters would be reached
/// if `start..end` were spoken at an even pace.
fn spread(text: &str, start: f64, end: f64) -> Vec<Token<'_>> {
    let total = text.chars().count().max(1) as f64;
    let span = (end - start).max(0.0);
    let mut before = 0;
    text.split(' ')
        .map(|word| {
            let token = Token {
                text: word,
                start: start + span * before as f64 / total,
            };
            before += word.chars().count() + 1;
            token
        })
        .collect()
}

struct Cues<'w, W: Write> {
    out: &'w mut W,
    layout: Layout,
    written: usize,
}

impl<W: Write> Cues<'_, W> {
    /// Writes the tokens spoken over `start..end` as as many cues as the layout needs.
    fn write_span(&mut self, tokens: &[Token<'_>], start: f64, end: f64) -> io::Result<()> {
        let lines = break_lines(tokens, self.layout.max_line_length);
        let cues: Vec<&[&[Token<'_>]]> = lines.chunks(self.layout.max_lines).collect();
        for (index, cue) in cues.iter().enumerate() {
            let cue_start = if index == 0 { start } else { cue[0][0].start };
            let cue_end = match cues.get(index + 1) {
                Some(next) => next[0][0].start,
                None => end,
            };
            self.write_cue(cue, cue_start, cue_end.max(cue_start))?;
        }
        Ok(())
    }

    fn write_cue(&mut self, lines: &[&[Token<'_>]], start: f64, end: f64) -> io::Result<()> {
        self.written += 1;
        writeln!(
            self.out,
            "{}\n{} --> {}",
            self.written,
            Millis::from_secs(start).clock(','),
            Millis::from_secs(end).clock(','),
        )?;
        for line in lines {
            let words: Vec<&str> = line.iter().map(|t| t.text).collect();
            writeln!(self.out, "{}", words.join(" "))?;
        }
        writeln!(self.out)
    }
}

/// Greedy line filling at word boundaries; a word wider than `max` sits alone on its line.
fn break_lines<'t, 'a>(tokens: &'t [Token<'a>], max: usize) -> Vec<&'t [Token<'a>]> {
    let mut lines = Vec::new();
    let mut line_start = 0;
    let mut width = 0;
    for (index, token) in tokens.iter().enumerate() {
        let len = token.text.chars().count();
        if index == line_start {
            width = len;
        } else if width + 1 + len > max {
            lines.push(&tokens[line_start..index]);
            line_start = index;
            width = len;
        } else {
            width += 1 + len;
        }
    }
    if line_start < tokens.len() {
        lines.push(&tokens[line_start..]);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[&[Token<'_>]]) -> Vec<String> {
        lines
            .iter()
            .map(|line| line.iter().map(|t| t.text).collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn breaks_at_word_boundaries_within_the_limit() {
        let tokens = spread("aa bb cc dd ee", 0.0, 1.0);
        assert_eq!(texts(&break_lines(&tokens, 5)), ["aa bb", "cc dd", "ee"]);
        assert_eq!(texts(&break_lines(&tokens, 8)), ["aa bb cc", "dd ee"]);
        assert_eq!(texts(&break_lines(&tokens, 100)), ["aa bb cc dd ee"]);
    }

    #[test]
    fn a_word_longer_than_the_line_stays_whole_and_alone() {
        let tokens = spread("a extraordinarily b c", 0.0, 1.0);
        assert_eq!(
            texts(&break_lines(&tokens, 4)),
            ["a", "extraordinarily", "b c"]
        );
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        // Six Hangul syllables are 18 bytes but six characters.
        let tokens = spread("안녕 하세요 네", 0.0, 1.0);
        assert_eq!(texts(&break_lines(&tokens, 6)), ["안녕 하세요", "네"]);
    }

    #[test]
    fn spread_times_follow_character_positions() {
        let tokens = spread("abc defghi", 10.0, 20.0);
        assert_eq!(tokens[0].start, 10.0);
        assert!((tokens[1].start - 14.0).abs() < 1e-9, "{:?}", tokens[1]);
    }

    #[test]
    fn splits_into_contiguous_cues() {
        let mut out = Vec::new();
        let layout = Layout {
            max_line_length: 5,
            max_lines: 1,
        };
        let mut cues = Cues {
            out: &mut out,
            layout,
            written: 0,
        };
        let tokens = [
            Token {
                text: "one",
                start: 1.0,
            },
            Token {
                text: "two",
                start: 2.0,
            },
            Token {
                text: "three",
                start: 3.5,
            },
        ];
        cues.write_span(&tokens, 0.5, 4.0).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1\n00:00:00,500 --> 00:00:02,000\none\n\n\
             2\n00:00:02,000 --> 00:00:03,500\ntwo\n\n\
             3\n00:00:03,500 --> 00:00:04,000\nthree\n\n"
        );
    }
}
