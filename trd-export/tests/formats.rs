//! Golden tests: every format rendered from realistic files and compared byte for byte with
//! `tests/golden/`, then read back by a real parser (the csv crate, srtlib, ffmpeg, roxmltree)
//! to show the output is valid and carries what it should.
//!
//! After an intended output change, regenerate with `UPDATE_GOLDEN=1 cargo test -p trd-export`
//! and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use mongodb::bson::{oid::ObjectId, DateTime};
use trd_core::domain::{
    AudioChannel, AudioFile, AudioInfo, Control, Segment, SegmentStatus, StageError, Status, Word,
};
use trd_export::{render, ExportFormat, ExportOptions};

/// The segment with every CSV and markup hazard: commas, double quotes, a newline, `<`/`&`, and
/// Korean text.
const TRICKY_TEXT: &str = "sim, ela disse \"안녕하세요\" ontem,\nà tarde <ok> & tal";

fn file(name: &str, channels: &[u32]) -> AudioFile {
    AudioFile {
        id: ObjectId::parse_str("5b76faed4d27fc0001331dcc").unwrap(),
        batch: Some("folder1".into()),
        filename: name.into(),
        format: "wav".into(),
        size: 8_320_044,
        md5: "bee0c78600f52fdf65edc1a742970313".into(),
        create_date: DateTime::from_millis(1_552_068_136_000),
        last_update: DateTime::from_millis(1_552_068_580_000),
        control: Control::Finished,
        status: Status::Recognized,
        info: Some(AudioInfo {
            bit_rate: "128000".into(),
            channels: channels.len().to_string(),
            ..AudioInfo::default()
        }),
        audio_channels: Some(
            channels
                .iter()
                .map(|&channel| AudioChannel {
                    bandwidth: "4000".into(),
                    channel,
                    duration: 40.0,
                })
                .collect(),
        ),
        error: None,
        total_segments: None,
        total_speech: None,
        options: Default::default(),
        warnings: Vec::new(),
        mtime: None,
        lease: None,
    }
}

/// A segment whose words are its whitespace-separated text tokens, stripped of punctuation,
/// spoken back to back over `start..end`.
fn segment(channel: u32, start: f64, end: f64, speaker: &str, score: u32, text: &str) -> Segment {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let step = (end - start) / tokens.len() as f64;
    // A token of punctuation alone (`&`) is no word: the counts then differ, as they do when a
    // recognizer's text is normalized, and SubRip must fall back to spreading time evenly.
    let words = tokens
        .iter()
        .enumerate()
        .filter_map(|(i, token)| {
            let text = token.trim_matches(|c: char| c.is_ascii_punctuation());
            (!text.is_empty()).then(|| Word {
                text: text.to_string(),
                start: start + step * i as f64,
                end: start + step * (i as f64 + 1.0),
                score: score.saturating_sub(i as u32 % 3),
            })
        })
        .collect();
    Segment {
        id: ObjectId::new(),
        audiofile_id: ObjectId::parse_str("5b76faed4d27fc0001331dcc").unwrap(),
        channel,
        start,
        end,
        speaker: speaker.into(),
        score,
        status: SegmentStatus::Recognized,
        text: text.into(),
        words,
        reason: None,
        lease: None,
        heard: None,
    }
}

fn failed(channel: u32, start: f64, end: f64, status: SegmentStatus, reason: &str) -> Segment {
    Segment {
        status,
        score: 0,
        text: String::new(),
        words: Vec::new(),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        ..segment(channel, start, end, "2", 0, "x")
    }
}

/// A finished single-channel call: two speakers, one long turn (several subtitle cues), the
/// tricky text, and a turn past the hour mark.
fn dialogue() -> (AudioFile, Vec<Segment>) {
    let segments = vec![
        segment(
            1,
            0.56,
            7.4,
            "1",
            97,
            "boa tarde eu posso falar com a sabrina",
        ),
        segment(1, 8.1, 9.0, "2", 92, "sou eu"),
        segment(
            1,
            9.5,
            21.25,
            "1",
            88,
            "aqui é o joão da central de atendimento e eu estou ligando para confirmar \
             os dados do seu cadastro antes da entrega",
        ),
        segment(1, 22.0, 27.5, "2", 81, TRICKY_TEXT),
        segment(1, 3725.25, 3727.0, "2", 95, "obrigada"),
    ];
    (file("file1.wav", &[1]), segments)
}

/// A two-channel recording that ran into trouble: a failed and a timed-out segment, a NO_MATCH
/// (shown nowhere but CSV), and a segment with no word timings.
fn stereo_with_errors() -> (AudioFile, Vec<Segment>) {
    let mut untimed = segment(2, 4.0, 6.5, "1", 90, "tudo bem, e com você?");
    untimed.words.clear();
    let mut no_match = failed(1, 7.0, 7.6, SegmentStatus::NoMatch, "");
    no_match.speaker = "1".into();
    let segments = vec![
        segment(1, 0.5, 3.75, "1", 96, "alô, bom dia"),
        untimed,
        no_match,
        failed(
            1,
            8.0,
            11.0,
            SegmentStatus::Failure,
            "recognizer crashed --> restart it",
        ),
        failed(2, 12.0, 15.0, SegmentStatus::RecognitionTimeout, ""),
        segment(2, 16.0, 18.0, "1", 93, "até logo"),
    ];
    (file("calls/stereo.wav", &[1, 2]), segments)
}

/// A file that failed before any segment existed.
fn failed_file() -> (AudioFile, Vec<Segment>) {
    let mut file = file("broken.mp3", &[]);
    file.control = Control::Failed;
    file.status = Status::Normalizing;
    file.info = None;
    file.audio_channels = None;
    file.error = Some(StageError {
        stage: Status::Normalizing,
        reason: "the audio could not be decoded: unsupported codec <amr>".into(),
    });
    (file, Vec::new())
}

fn format(name: &str) -> ExportFormat {
    ExportFormat::parse(name, ExportOptions::default()).unwrap()
}

fn rendered(format: &ExportFormat, (file, segments): &(AudioFile, Vec<Segment>)) -> String {
    let mut out = Vec::new();
    render(format, file, segments, &mut out).unwrap();
    String::from_utf8(out).expect("exports are UTF-8")
}

/// Compares with the golden file (or rewrites it under `UPDATE_GOLDEN`) and returns its path.
fn golden(name: &str, actual: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    assert!(
        expected == actual,
        "{name} differs from its golden file\n--- expected\n{expected}\n--- actual\n{actual}"
    );
    path
}

/// ffmpeg's subtitle demuxers are strict about timing lines; converting to SubRip also tells
/// how many cues it understood.
fn ffmpeg_cues(path: &Path) -> usize {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "srt", "-"])
        .output()
        .expect("ffmpeg is needed by these tests (scripts/lib/provision-test.sh installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "ffmpeg rejected {}: {stderr}",
        path.display()
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.contains(" --> "))
        .count()
}

mod csv_format {
    use super::*;

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

    fn read_back(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    }

    #[test]
    fn dialogue_matches_golden_and_round_trips() {
        let input = dialogue();
        let text = rendered(&format("csv"), &input);
        golden("dialogue.csv", &text);
        assert!(text.ends_with("\r\n"), "RFC 4180 records end with CRLF");

        let (header, rows) = read_back(&text);
        assert_eq!(header, HEADER);
        assert_eq!(rows.len(), input.1.len());
        for (i, (row, segment)) in rows.iter().zip(&input.1).enumerate() {
            assert_eq!(row[0], (i + 1).to_string());
            assert_eq!(row[1], segment.channel.to_string());
            assert_eq!(row[4], segment.speaker);
            assert_eq!(row[5], segment.text, "texto must round-trip exactly");
            assert_eq!(row[6], segment.score.to_string());
            assert_eq!([&row[7], &row[8], &row[10]], ["", "", ""]);
            assert_eq!(row[9], "128");
        }
        assert_eq!(rows[0][2..4], ["00:00:560", "00:07:400"]);
        assert_eq!(rows[3][5], TRICKY_TEXT);
        assert_eq!(rows[4][2..4], ["62:05:250", "62:07:000"]);
    }

    #[test]
    fn every_segment_gets_a_row_even_failed_ones() {
        let input = stereo_with_errors();
        let text = rendered(&format("csv"), &input);
        golden("stereo_with_errors.csv", &text);
        let (_, rows) = read_back(&text);
        let channels: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(channels, ["1", "2", "1", "1", "2", "2"]);
        assert_eq!(rows[3][5], "");
    }

    #[test]
    fn unknown_bitrate_is_an_empty_cell() {
        let (mut file, segments) = dialogue();
        file.info = None;
        let (_, rows) = read_back(&rendered(&format("csv"), &(file, segments)));
        assert!(rows.iter().all(|r| r[9].is_empty()));
    }

    #[test]
    fn a_failed_file_is_a_header_alone() {
        let text = rendered(&format("csv"), &failed_file());
        golden("failed_file.csv", &text);
        let (header, rows) = read_back(&text);
        assert_eq!(header, HEADER);
        assert!(rows.is_empty());
    }
}

mod txt_format {
    use super::*;

    #[test]
    fn dialogue_is_one_line_per_segment() {
        let input = dialogue();
        let text = rendered(&format("txt"), &input);
        golden("dialogue.txt", &text);
        assert_eq!(text.lines().count(), input.1.len());
        assert!(text.lines().all(|l| l.starts_with('[')));
        assert!(text.contains(
            "[00:22.000 - 00:27.500] speaker 2: sim, ela disse \"안녕하세요\" ontem, à tarde"
        ));
        assert!(!text.contains("channel"), "a mono file names no channel");
    }

    #[test]
    fn errors_are_hash_lines_and_channels_are_named() {
        let text = rendered(&format("plaintext"), &stereo_with_errors());
        golden("stereo_with_errors.txt", &text);
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("# ")).collect();
        assert_eq!(
            errors,
            [
                "# [00:08.000 - 00:11.000] channel 1, speaker 2: FAILURE: recognizer crashed --> restart it",
                "# [00:12.000 - 00:15.000] channel 2, speaker 2: RECOGNITION_TIMEOUT",
            ]
        );
        assert!(text.contains("[00:04.000 - 00:06.500] channel 2, speaker 1: tudo bem"));
    }

    #[test]
    fn a_failed_file_says_why() {
        let text = rendered(&format("txt"), &failed_file());
        golden("failed_file.txt", &text);
        assert_eq!(
            text,
            "# FAILED at NORMALIZING: the audio could not be decoded: unsupported codec <amr>\n"
        );
    }
}

mod vtt_format {
    use super::*;

    #[test]
    fn dialogue_parses_with_ffmpeg_and_names_speakers() {
        let input = dialogue();
        let text = rendered(&format("vtt"), &input);
        let path = golden("dialogue.vtt", &text);
        assert_eq!(ffmpeg_cues(&path), input.1.len());
        assert!(text.starts_with("WEBVTT\n\n00:00:00.560 --> 00:00:07.400\n<v speaker 1>boa"));
        assert!(text.contains("\n01:02:05.250 --> 01:02:07.000\n<v speaker 2>obrigada\n"));
        assert!(text.contains("ontem, à tarde &lt;ok&gt; &amp; tal\n"));
    }

    #[test]
    fn errors_are_notes_players_skip() {
        let text = rendered(&format("webvtt"), &stereo_with_errors());
        let path = golden("stereo_with_errors.vtt", &text);
        // Three speech cues; the two failures are comments, the NO_MATCH is not shown.
        assert_eq!(ffmpeg_cues(&path), 3);
        assert!(text.contains(
            "\nNOTE 00:00:08.000 - 00:00:11.000 channel 1, speaker 2: FAILURE: recognizer crashed -→ restart it\n"
        ));
        assert!(text.contains("<v channel 2, speaker 1>tudo bem, e com você?"));
    }

    #[test]
    fn a_failed_file_is_a_note_after_the_header() {
        let text = rendered(&format("vtt"), &failed_file());
        let path = golden("failed_file.vtt", &text);
        assert_eq!(ffmpeg_cues(&path), 0);
        assert_eq!(
            text,
            "WEBVTT\n\nNOTE FAILED at NORMALIZING: the audio could not be decoded: unsupported codec <amr>\n"
        );
    }
}

mod srt_format {
    use super::*;

    /// Parses with srtlib and checks the layout every cue must respect.
    fn parse(text: &str, max_line_length: usize, max_lines: usize) -> Vec<srtlib::Subtitle> {
        let subtitles = srtlib::Subtitles::parse_from_str(text.to_string())
            .unwrap()
            .to_vec();
        for (i, cue) in subtitles.iter().enumerate() {
            assert_eq!(cue.num, i + 1);
            assert!(cue.start_time <= cue.end_time, "{cue}");
            let lines: Vec<&str> = cue.text.lines().collect();
            assert!(!lines.is_empty() && lines.len() <= max_lines, "{cue}");
            for line in lines {
                let single_word = !line.contains(' ');
                assert!(
                    line.chars().count() <= max_line_length || single_word,
                    "line too long: {line:?}"
                );
            }
        }
        subtitles
    }

    fn millis(t: &srtlib::Timestamp) -> u32 {
        let (h, m, s, ms) = t.get();
        ((h as u32 * 60 + m as u32) * 60 + s as u32) * 1000 + ms as u32
    }

    #[test]
    fn long_segments_split_into_contiguous_cues_on_word_times() {
        let input = dialogue();
        let text = rendered(&format("srt"), &input);
        let path = golden("dialogue.srt", &text);
        let cues = parse(&text, 37, 2);
        assert_eq!(ffmpeg_cues(&path), cues.len());
        // The 112-character turn (9.5 s – 21.25 s) needs two cues of two lines.
        let long: Vec<&srtlib::Subtitle> = cues
            .iter()
            .filter(|c| millis(&c.start_time) >= 9_500 && millis(&c.end_time) <= 21_250)
            .collect();
        assert_eq!(long.len(), 2, "{text}");
        assert_eq!(millis(&long[0].start_time), 9_500);
        assert_eq!(long[0].end_time, long[1].start_time);
        assert_eq!(millis(&long[1].end_time), 21_250);
        // The second cue starts on a word boundary's recorded time, not a guess: the 22-word
        // segment has words every 11.75 / 22 s.
        let step = 11.75 / 22.0;
        let offset = f64::from(millis(&long[1].start_time)) / 1000.0 - 9.5;
        let words_before = (offset / step).round();
        assert!((offset - words_before * step).abs() < 0.001, "{offset}");
        let joined: Vec<String> = cues.iter().map(|c| c.text.replace('\n', " ")).collect();
        assert!(joined.iter().any(|t| t.contains("\"안녕하세요\"")));
    }

    #[test]
    fn options_change_the_layout() {
        let options = ExportOptions {
            max_line_length: Some(12),
            max_lines: Some(1),
        };
        let format = ExportFormat::parse("srt", options).unwrap();
        let text = rendered(&format, &dialogue());
        golden("dialogue_12x1.srt", &text);
        let cues = parse(&text, 12, 1);
        assert!(cues.len() > 15, "{}", cues.len());
    }

    #[test]
    fn errors_are_bracketed_cues() {
        let input = stereo_with_errors();
        let text = rendered(&format("srt"), &input);
        let path = golden("stereo_with_errors.srt", &text);
        let cues = parse(&text, 37, 2);
        assert_eq!(ffmpeg_cues(&path), cues.len());
        let failure = cues
            .iter()
            .find(|c| c.text.starts_with("[FAILURE"))
            .expect("a cue for the failed segment");
        assert_eq!(millis(&failure.start_time), 8_000);
        assert!(failure.text.contains("crashed -→"), "{}", failure.text);
        let untimed = cues.iter().find(|c| c.text.contains("tudo bem")).unwrap();
        assert_eq!(
            (millis(&untimed.start_time), millis(&untimed.end_time)),
            (4_000, 6_500)
        );
        assert!(cues.iter().any(|c| c.text == "[RECOGNITION_TIMEOUT]"));
    }

    #[test]
    fn a_failed_file_opens_with_its_error() {
        let text = rendered(&format("srt"), &failed_file());
        let path = golden("failed_file.srt", &text);
        let cues = parse(&text, 37, 2);
        assert_eq!(ffmpeg_cues(&path), cues.len());
        assert_eq!(millis(&cues[0].start_time), 0);
        assert_eq!(millis(&cues[cues.len() - 1].end_time), 5_000);
        let joined: Vec<String> = cues.iter().map(|c| c.text.replace('\n', " ")).collect();
        assert_eq!(
            joined.join(" "),
            "[FAILED at NORMALIZING: the audio could not be decoded: unsupported codec <amr>]"
        );
    }
}

mod trs_format {
    use super::*;

    struct Turn {
        speaker: String,
        start: String,
        end: String,
        text: String,
    }

    fn turns(doc: &roxmltree::Document<'_>) -> Vec<Turn> {
        doc.descendants()
            .filter(|n| n.has_tag_name("Turn"))
            .map(|n| Turn {
                speaker: n.attribute("speaker").unwrap().to_string(),
                start: n.attribute("startTime").unwrap().to_string(),
                end: n.attribute("endTime").unwrap().to_string(),
                text: n
                    .children()
                    .filter(|c| c.is_text())
                    .filter_map(|c| c.text())
                    .collect::<String>()
                    .trim()
                    .to_string(),
            })
            .collect()
    }

    fn speakers(doc: &roxmltree::Document<'_>) -> Vec<(String, String)> {
        doc.descendants()
            .filter(|n| n.has_tag_name("Speaker"))
            .map(|n| {
                (
                    n.attribute("id").unwrap().to_string(),
                    n.attribute("name").unwrap().to_string(),
                )
            })
            .collect()
    }

    fn parse_options<'a>() -> roxmltree::ParsingOptions<'a> {
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        }
    }

    #[test]
    fn dialogue_has_one_turn_per_segment() {
        let input = dialogue();
        let text = rendered(&format("trs"), &input);
        golden("dialogue.trs", &text);
        let doc = roxmltree::Document::parse_with_options(&text, parse_options()).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "Trans");
        assert_eq!(root.attribute("audio_filename"), Some("file1.wav"));
        assert_eq!(
            speakers(&doc),
            [
                ("spk1".to_string(), "speaker 1".to_string()),
                ("spk2".to_string(), "speaker 2".to_string())
            ]
        );
        let section = doc
            .descendants()
            .find(|n| n.has_tag_name("Section"))
            .unwrap();
        assert_eq!(section.attribute("endTime"), Some("3727"));
        let turns = turns(&doc);
        assert_eq!(turns.len(), input.1.len());
        let speakers: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
        assert_eq!(speakers, ["spk1", "spk2", "spk1", "spk2", "spk2"]);
        assert_eq!(
            (turns[0].start.as_str(), turns[0].end.as_str()),
            ("0.56", "7.4")
        );
        assert_eq!(
            turns[3].text, "sim, ela disse \"안녕하세요\" ontem, à tarde <ok> & tal",
            "escaped text must parse back"
        );
        assert!(
            !text.contains("<Word"),
            "plain TRS carries no word confidence"
        );
    }

    #[test]
    fn extended_carries_word_confidence() {
        let input = dialogue();
        let text = rendered(&format("extended_trs"), &input);
        golden("dialogue.extended.trs", &text);
        let doc = roxmltree::Document::parse_with_options(&text, parse_options()).unwrap();
        let turns: Vec<roxmltree::Node<'_, '_>> = doc
            .descendants()
            .filter(|n| n.has_tag_name("Turn"))
            .collect();
        assert_eq!(turns.len(), input.1.len());
        for (turn, segment) in turns.iter().zip(&input.1) {
            let expected = format!("{:.2}", f64::from(segment.score) / 100.0);
            assert_eq!(turn.attribute("conf"), Some(expected.as_str()));
            let words: Vec<roxmltree::Node<'_, '_>> =
                turn.children().filter(|n| n.has_tag_name("Word")).collect();
            assert_eq!(words.len(), segment.words.len());
            for (node, word) in words.iter().zip(&segment.words) {
                assert_eq!(node.text(), Some(word.text.as_str()));
                let conf: f64 = node.attribute("conf").unwrap().parse().unwrap();
                assert!((conf - f64::from(word.score) / 100.0).abs() < 1e-9);
                let start: f64 = node.attribute("start").unwrap().parse().unwrap();
                assert!((start - word.start).abs() < 0.0005);
            }
        }
    }

    #[test]
    fn failures_are_comments_and_channels_separate_speakers() {
        for (name, golden_name) in [
            ("trs", "stereo_with_errors.trs"),
            ("extended_trs", "stereo_with_errors.extended.trs"),
        ] {
            let text = rendered(&format(name), &stereo_with_errors());
            golden(golden_name, &text);
            let doc = roxmltree::Document::parse_with_options(&text, parse_options()).unwrap();
            assert_eq!(
                speakers(&doc)
                    .into_iter()
                    .map(|(_, name)| name)
                    .collect::<Vec<_>>(),
                [
                    "channel 1, speaker 1",
                    "channel 2, speaker 1",
                    "channel 1, speaker 2",
                    "channel 2, speaker 2"
                ]
            );
            let comments: Vec<&str> = doc
                .descendants()
                .filter(|n| n.has_tag_name("Comment"))
                .map(|n| n.attribute("desc").unwrap())
                .collect();
            assert_eq!(
                comments,
                [
                    "FAILURE: recognizer crashed --> restart it",
                    "RECOGNITION_TIMEOUT"
                ]
            );
            // NO_MATCH has no turn; the failures keep theirs.
            assert_eq!(turns(&doc).len(), 5);
        }
    }

    #[test]
    fn a_failed_file_carries_error_elements() {
        let text = rendered(&format("trs"), &failed_file());
        golden("failed_file.trs", &text);
        let doc = roxmltree::Document::parse_with_options(&text, parse_options()).unwrap();
        let episode = doc
            .descendants()
            .find(|n| n.has_tag_name("Episode"))
            .unwrap();
        let child = |tag: &str| {
            episode
                .children()
                .find(|n| n.has_tag_name(tag))
                .and_then(|n| n.text())
                .map(String::from)
        };
        assert_eq!(child("ErrorStage").as_deref(), Some("NORMALIZING"));
        assert_eq!(
            child("ErrorReason").as_deref(),
            Some("the audio could not be decoded: unsupported codec <amr>")
        );
        assert!(turns(&doc).is_empty());
    }
}

#[test]
fn render_writes_through_any_writer() {
    // The batch ZIP hands `render` a writer it keeps using afterwards.
    let (file, segments) = dialogue();
    let mut sink = std::io::Cursor::new(Vec::new());
    render(&format("txt"), &file, &segments, &mut sink).unwrap();
    render(&format("txt"), &file, &segments, &mut sink).unwrap();
    let text = String::from_utf8(sink.into_inner()).unwrap();
    assert_eq!(text.lines().count(), 2 * segments.len());
}

#[test]
fn content_types_and_extensions() {
    let cases = [
        ("csv", "text/csv; charset=utf-8", "csv"),
        ("txt", "text/plain; charset=utf-8", "txt"),
        ("vtt", "text/vtt; charset=utf-8", "vtt"),
        ("srt", "application/x-subrip; charset=utf-8", "srt"),
        ("trs", "text/xml; charset=utf-8", "trs"),
        ("extended_trs", "text/xml; charset=utf-8", "trs"),
    ];
    for (name, content_type, extension) in cases {
        let f = format(name);
        assert_eq!((f.content_type(), f.extension()), (content_type, extension));
    }
}
