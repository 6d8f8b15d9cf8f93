//! Diarization error rate, the standard measure of "who spoke when", and the RTTM files that
//! references and hypotheses are exchanged in.
//!
//! Scoring follows NIST md-eval: a collar around every reference boundary is not scored,
//! overlapping speech is scored (each speaker counts), and hypothesis speakers are mapped
//! one-to-one onto reference speakers so as to maximise the time they agree.

use std::collections::BTreeSet;

use thiserror::Error;

/// One speaker's stretch of speech on one channel, as an RTTM `SPEAKER` line holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerTurn {
    pub file: String,
    pub channel: u32,
    pub start: f64,
    pub duration: f64,
    pub speaker: String,
}

#[derive(Debug, Error, PartialEq)]
pub enum RttmError {
    #[error("RTTM line {line}: {reason}")]
    BadLine { line: usize, reason: String },
}

/// The `SPEAKER` lines of an RTTM document; other line types are skipped.
pub fn parse_rttm(text: &str) -> Result<Vec<SpeakerTurn>, RttmError> {
    let mut turns = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() != Some(&"SPEAKER") {
            continue;
        }
        let bad = |reason: &str| RttmError::BadLine {
            line: index + 1,
            reason: reason.to_owned(),
        };
        if fields.len() < 8 {
            return Err(bad("a SPEAKER line needs at least 8 fields"));
        }
        let number = |field: &str, what: &str| {
            field
                .parse::<f64>()
                .map_err(|_| bad(&format!("bad {what} {field:?}")))
        };
        turns.push(SpeakerTurn {
            file: fields[1].to_owned(),
            channel: fields[2]
                .parse()
                .map_err(|_| bad(&format!("bad channel {:?}", fields[2])))?,
            start: number(fields[3], "start")?,
            duration: number(fields[4], "duration")?,
            speaker: fields[7].to_owned(),
        });
    }
    Ok(turns)
}

pub fn write_rttm(turns: &[SpeakerTurn]) -> String {
    turns
        .iter()
        .map(|t| {
            format!(
                "SPEAKER {} {} {:.3} {:.3} <NA> <NA> {} <NA> <NA>\n",
                t.file, t.channel, t.start, t.duration, t.speaker
            )
        })
        .collect()
}

/// The error components, in seconds of speaker time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DerReport {
    /// Reference speaker time scored (the denominator).
    pub scored: f64,
    pub missed: f64,
    pub false_alarm: f64,
    pub confusion: f64,
}

impl DerReport {
    pub fn der(&self) -> f64 {
        if self.scored == 0.0 {
            return 0.0;
        }
        (self.missed + self.false_alarm + self.confusion) / self.scored
    }
}

/// Scores `hypothesis` against `reference`, both for one file. Channels are kept apart: speech
/// on the wrong channel counts as missed on one and false alarm on the other.
pub fn score(reference: &[SpeakerTurn], hypothesis: &[SpeakerTurn], collar: f64) -> DerReport {
    let ref_speakers = names(reference);
    let hyp_speakers = names(hypothesis);
    let channels: BTreeSet<u32> = reference
        .iter()
        .chain(hypothesis)
        .map(|t| t.channel)
        .collect();

    // Elementary stretches in which nobody starts or stops, with who is active in each.
    struct Piece {
        duration: f64,
        refs: Vec<usize>,
        hyps: Vec<usize>,
    }
    let mut pieces = Vec::new();
    for &channel in &channels {
        let on = |turns: &[SpeakerTurn]| -> Vec<SpeakerTurn> {
            turns
                .iter()
                .filter(|t| t.channel == channel)
                .cloned()
                .collect()
        };
        let (refs, hyps) = (on(reference), on(hypothesis));
        let unscored: Vec<(f64, f64)> = refs
            .iter()
            .flat_map(|t| [t.start, t.start + t.duration])
            .map(|edge| (edge - collar, edge + collar))
            .collect();
        let mut times: Vec<f64> = refs
            .iter()
            .chain(&hyps)
            .flat_map(|t| [t.start, t.start + t.duration])
            .chain(unscored.iter().flat_map(|&(a, b)| [a, b]))
            .collect();
        times.sort_by(f64::total_cmp);
        times.dedup();
        for span in times.windows(2) {
            let (a, b) = (span[0], span[1]);
            let mid = 0.5 * (a + b);
            if b <= a || unscored.iter().any(|&(s, e)| s < mid && mid < e) {
                continue;
            }
            let active = |turns: &[SpeakerTurn], speakers: &[String]| -> Vec<usize> {
                let mut who: Vec<usize> = turns
                    .iter()
                    .filter(|t| t.start < mid && mid < t.start + t.duration)
                    .map(|t| {
                        speakers
                            .iter()
                            .position(|s| *s == t.speaker)
                            .expect("listed by names()")
                    })
                    .collect();
                who.sort_unstable();
                who.dedup();
                who
            };
            pieces.push(Piece {
                duration: b - a,
                refs: active(&refs, &ref_speakers),
                hyps: active(&hyps, &hyp_speakers),
            });
        }
    }

    let mut agreement = vec![vec![0.0; hyp_speakers.len()]; ref_speakers.len()];
    for piece in &pieces {
        for &r in &piece.refs {
            for &h in &piece.hyps {
                agreement[r][h] += piece.duration;
            }
        }
    }
    let mapping = best_mapping(&agreement);

    let mut report = DerReport::default();
    for piece in &pieces {
        let (n_ref, n_hyp) = (piece.refs.len() as f64, piece.hyps.len() as f64);
        let correct = piece
            .refs
            .iter()
            .filter(|&&r| mapping[r].is_some_and(|h| piece.hyps.contains(&h)))
            .count() as f64;
        report.scored += piece.duration * n_ref;
        report.missed += piece.duration * (n_ref - n_hyp).max(0.0);
        report.false_alarm += piece.duration * (n_hyp - n_ref).max(0.0);
        report.confusion += piece.duration * (n_ref.min(n_hyp) - correct);
    }
    report
}

fn names(turns: &[SpeakerTurn]) -> Vec<String> {
    let set: BTreeSet<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
    set.into_iter().map(str::to_owned).collect()
}

/// For each reference speaker, the hypothesis speaker it is mapped to: the one-to-one
/// assignment with the largest total agreement (Hungarian algorithm on the negated matrix).
fn best_mapping(agreement: &[Vec<f64>]) -> Vec<Option<usize>> {
    let rows = agreement.len();
    let cols = agreement.first().map_or(0, Vec::len);
    let n = rows.max(cols);
    if n == 0 {
        return vec![None; rows];
    }
    let cost = |r: usize, c: usize| -> f64 {
        if r < rows && c < cols {
            -agreement[r][c]
        } else {
            0.0
        }
    };
    // Potentials u (rows) and v (columns), 1-based with 0 as the virtual start column.
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; n + 1];
    let mut column_row = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for row in 1..=n {
        column_row[0] = row;
        let mut current = 0;
        let mut min_to = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[current] = true;
            let r = column_row[current];
            let mut delta = f64::INFINITY;
            let mut next = 0;
            for c in 1..=n {
                if !used[c] {
                    let reduced = cost(r - 1, c - 1) - u[r] - v[c];
                    if reduced < min_to[c] {
                        min_to[c] = reduced;
                        way[c] = current;
                    }
                    if min_to[c] < delta {
                        delta = min_to[c];
                        next = c;
                    }
                }
            }
            for c in 0..=n {
                if used[c] {
                    u[column_row[c]] += delta;
                    v[c] -= delta;
                } else {
                    min_to[c] -= delta;
                }
            }
            current = next;
            if column_row[current] == 0 {
                break;
            }
        }
        loop {
            let previous = way[current];
            column_row[current] = column_row[previous];
            current = previous;
            if current == 0 {
                break;
            }
        }
    }
    let mut mapping = vec![None; rows];
    for c in 1..=n {
        let r = column_row[c];
        if r >= 1 && r <= rows && c <= cols && agreement[r - 1][c - 1] > 0.0 {
            mapping[r - 1] = Some(c - 1);
        }
    }
    mapping
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(channel: u32, start: f64, end: f64, speaker: &str) -> SpeakerTurn {
        SpeakerTurn {
            file: "f".into(),
            channel,
            start,
            duration: end - start,
            speaker: speaker.into(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn perfect_hypothesis_with_other_names_scores_zero() {
        let reference = [turn(1, 0.0, 5.0, "alice"), turn(1, 6.0, 9.0, "bob")];
        let hypothesis = [turn(1, 0.0, 5.0, "2"), turn(1, 6.0, 9.0, "1")];
        let report = score(&reference, &hypothesis, 0.0);
        assert!(close(report.scored, 8.0));
        assert!(close(report.der(), 0.0));
    }

    #[test]
    fn hand_computed_miss_false_alarm_and_confusion() {
        // Reference: A 0–10, B 10–20. Hypothesis: x 0–8, y 8–15, x 15–22.
        // Mapping A→x (8 s agree) and B→y (5 s): 0–8 correct, 8–10 confusion (2 s),
        // 10–15 correct, 15–20 confusion (5 s), 20–22 false alarm (2 s). Scored 20 s.
        let reference = [turn(1, 0.0, 10.0, "A"), turn(1, 10.0, 20.0, "B")];
        let hypothesis = [
            turn(1, 0.0, 8.0, "x"),
            turn(1, 8.0, 15.0, "y"),
            turn(1, 15.0, 22.0, "x"),
        ];
        let report = score(&reference, &hypothesis, 0.0);
        assert!(close(report.scored, 20.0), "{report:?}");
        assert!(close(report.confusion, 7.0), "{report:?}");
        assert!(close(report.false_alarm, 2.0), "{report:?}");
        assert!(close(report.missed, 0.0), "{report:?}");
        assert!(close(report.der(), 9.0 / 20.0));
    }

    #[test]
    fn collar_removes_time_around_reference_boundaries() {
        // Reference A 1–5; hypothesis A 1.2–5.5. With a 0.25 s collar, 0.75–1.25 and 4.75–5.25
        // are not scored: what remains is 1.25–4.75 correct (3.5 s) and 5.25–5.5 false alarm.
        let reference = [turn(1, 1.0, 5.0, "A")];
        let hypothesis = [turn(1, 1.2, 5.5, "A")];
        let report = score(&reference, &hypothesis, 0.25);
        assert!(close(report.scored, 3.5), "{report:?}");
        assert!(close(report.false_alarm, 0.25), "{report:?}");
        assert!(close(report.missed, 0.0), "{report:?}");
        let without = score(&reference, &hypothesis, 0.0);
        assert!(
            close(without.missed, 0.2) && close(without.false_alarm, 0.5),
            "{without:?}"
        );
    }

    #[test]
    fn overlap_counts_every_speaker() {
        // A 0–4 and B 2–6 overlap on 2–4; the hypothesis only has one speaker, x, 0–6.
        // Scored speaker time 8 s; on 2–4 one of the two is missed (2 s); B is confused on 4–6
        // (x maps to A), so 2 s confusion.
        let reference = [turn(1, 0.0, 4.0, "A"), turn(1, 2.0, 6.0, "B")];
        let hypothesis = [turn(1, 0.0, 6.0, "x")];
        let report = score(&reference, &hypothesis, 0.0);
        assert!(close(report.scored, 8.0), "{report:?}");
        assert!(close(report.missed, 2.0), "{report:?}");
        assert!(close(report.confusion, 2.0), "{report:?}");
        assert!(close(report.false_alarm, 0.0), "{report:?}");
    }

    #[test]
    fn speech_on_the_wrong_channel_is_missed_and_false_alarm() {
        let reference = [turn(1, 0.0, 4.0, "A"), turn(2, 4.0, 8.0, "B")];
        let hypothesis = [turn(1, 0.0, 4.0, "1"), turn(1, 4.0, 8.0, "2")];
        let report = score(&reference, &hypothesis, 0.0);
        assert!(
            close(report.missed, 4.0) && close(report.false_alarm, 4.0),
            "{report:?}"
        );
        assert!(close(report.der(), 1.0));
    }

    #[test]
    fn more_hypothesis_speakers_than_reference_ones() {
        // The one reference speaker maps to the hypothesis speaker with most agreement (y, 6 s);
        // x's 4 s become confusion.
        let reference = [turn(1, 0.0, 10.0, "A")];
        let hypothesis = [turn(1, 0.0, 4.0, "x"), turn(1, 4.0, 10.0, "y")];
        let report = score(&reference, &hypothesis, 0.0);
        assert!(close(report.confusion, 4.0), "{report:?}");
    }

    #[test]
    fn rttm_round_trips_and_reports_bad_lines() {
        let turns = vec![turn(2, 1.5, 3.25, "spk1")];
        let text = write_rttm(&turns);
        assert_eq!(text, "SPEAKER f 2 1.500 1.750 <NA> <NA> spk1 <NA> <NA>\n");
        assert_eq!(parse_rttm(&text).unwrap(), turns);
        assert!(matches!(
            parse_rttm("SPEAKER f 1 x 1 <NA> <NA> a"),
            Err(RttmError::BadLine { line: 1, .. })
        ));
    }
}
