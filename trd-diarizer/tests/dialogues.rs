//! Diarization of the shared test dialogues against their reference RTTMs.
//! Needs the model weights: scripts/lib/provision-diarizer.sh fetches them.

mod common;

use common::{dialogues_dir, read_channels, score, speaker_count, DIALOGUES, STEREO};
use trd_diarizer::diarize::Diarization;
use trd_diarizer::{diarize, DiarizationMode, DiarizationRequest, DiarizeError, SpeakerConstraint};

const MAX_SEGMENT: f64 = 30.0;

#[test]
fn mono_dialogues_find_every_speaker_within_ten_percent_der() {
    let mut failures = Vec::new();
    for name in DIALOGUES {
        let channels = read_channels(&dialogues_dir().join(format!("{name}.wav")));
        let turns = diarize(
            &DiarizationRequest::new(
                channels.iter().map(Vec::as_slice).collect(),
                16_000,
                MAX_SEGMENT,
            ),
            &common::models(),
        )
        .expect("diarization runs");
        let expected = common::reference(name)
            .iter()
            .map(|t| t.speaker.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let report = score(name, &turns);
        eprintln!(
            "{name}: {} speakers, DER {:.2} % {report:?}",
            speaker_count(&turns),
            100.0 * report.der()
        );
        if speaker_count(&turns) != expected || report.der() > 0.10 {
            failures.push(format!(
                "{name}: {} speakers (expected {expected}), DER {:.2} %",
                speaker_count(&turns),
                100.0 * report.der()
            ));
        }
        assert!(turns
            .iter()
            .all(|t| t.end - t.start <= MAX_SEGMENT + 1e-6 && t.channel == 1));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The compressed twins of the dialogues, decoded by the normalizer as the pipeline does: the
/// codecs' delays and losses must not move turns or merge speakers.
#[test]
fn compressed_twins_decoded_by_the_normalizer_diarize_as_well() {
    let mut failures = Vec::new();
    for name in DIALOGUES {
        let expected = common::reference(name)
            .iter()
            .map(|t| t.speaker.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        for ext in ["flac", "mp3", "ogg", "m4a"] {
            let path = dialogues_dir().join(format!("{name}.{ext}"));
            let mut pcm: Vec<i16> = Vec::new();
            trd_normalizer::normalize_file(&path, 16_000, |block| {
                pcm.extend_from_slice(&block[0]);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let turns = diarize(
                &DiarizationRequest::new(vec![&pcm], 16_000, MAX_SEGMENT),
                &common::models(),
            )
            .expect("diarization runs");
            let report = score(name, &turns);
            eprintln!(
                "{name}.{ext}: {} speakers, DER {:.2} %",
                speaker_count(&turns),
                100.0 * report.der()
            );
            if speaker_count(&turns) != expected || report.der() > 0.10 {
                failures.push(format!(
                    "{name}.{ext}: {} speakers (expected {expected}), DER {:.2} %",
                    speaker_count(&turns),
                    100.0 * report.der()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn stereo_dialogues_put_each_speaker_on_their_channel() {
    let mut failures = Vec::new();
    for name in STEREO {
        for suffix in ["_stereo.wav", "_stereo_8k_ulaw.wav"] {
            let channels = read_channels(&dialogues_dir().join(format!("{name}{suffix}")));
            assert_eq!(channels.len(), 2);
            let turns = diarize(
                &DiarizationRequest::new(
                    channels.iter().map(Vec::as_slice).collect(),
                    16_000,
                    MAX_SEGMENT,
                ),
                &common::models(),
            )
            .expect("diarization runs");
            let report = score(&format!("{name}_stereo"), &turns);
            eprintln!(
                "{name}{suffix}: {} speakers, DER {:.2} % {report:?}",
                speaker_count(&turns),
                100.0 * report.der()
            );
            if speaker_count(&turns) != 2 || report.der() > 0.05 {
                failures.push(format!(
                    "{name}{suffix}: {} speakers, DER {:.2} %",
                    speaker_count(&turns),
                    100.0 * report.der()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn modes_and_constraints_shape_the_labels() {
    let name = "dlg_108_111_104";
    let channels = read_channels(&dialogues_dir().join(format!("{name}.wav")));
    let request = |mode, speakers| DiarizationRequest {
        how: Diarization {
            mode,
            speakers,
            ..Diarization::new(16_000, 10.0)
        },
        channels: channels.iter().map(Vec::as_slice).collect(),
    };
    let none = diarize(
        &request(DiarizationMode::None, SpeakerConstraint::default()),
        &common::models(),
    )
    .unwrap();
    assert_eq!(speaker_count(&none), 1);
    assert!(
        none.iter().all(|t| t.end - t.start <= 10.0 + 1e-6),
        "max segment length is honoured"
    );
    let two = diarize(
        &request(
            DiarizationMode::Speaker,
            SpeakerConstraint::exactly(2).unwrap(),
        ),
        &common::models(),
    )
    .unwrap();
    assert_eq!(speaker_count(&two), 2);
    // Speech found is the same whatever the labelling.
    let speech = |turns: &[trd_diarizer::Turn]| turns.iter().map(|t| t.end - t.start).sum::<f64>();
    assert!(
        (speech(&none) - speech(&two)).abs() < 0.5,
        "{} vs {}",
        speech(&none),
        speech(&two)
    );

    let stereo = read_channels(&dialogues_dir().join("dlg_104_109_stereo.wav"));
    let by_channel = diarize(
        &DiarizationRequest {
            how: Diarization {
                mode: DiarizationMode::Channel,
                ..Diarization::new(16_000, MAX_SEGMENT)
            },
            channels: stereo.iter().map(Vec::as_slice).collect(),
        },
        &common::models(),
    )
    .unwrap();
    assert!(
        by_channel
            .iter()
            .all(|t| t.speaker == if t.channel == 1 { "1" } else { "2" }),
        "{by_channel:?}"
    );
}

#[test]
fn rejects_bad_input_with_typed_errors() {
    let silence = vec![0i16; 8000];
    let err = diarize(
        &DiarizationRequest::new(vec![&silence], 8000, MAX_SEGMENT),
        &common::models(),
    )
    .unwrap_err();
    assert!(matches!(err, DiarizeError::UnsupportedSampleRate(8000)));
    assert!(matches!(
        SpeakerConstraint::between(3, 2),
        Err(DiarizeError::BadSpeakerConstraint { min: 3, max: 2 })
    ));
    assert!(diarize(
        &DiarizationRequest::new(vec![&silence], 16_000, MAX_SEGMENT),
        &common::models()
    )
    .unwrap()
    .is_empty());
}

/// Channels read one at a time (a budget smaller than one channel) give the turns that all
/// channels held at once give, in every mode that compares voices.
#[test]
fn channels_loaded_one_at_a_time_diarize_as_all_at_once() {
    use trd_diarizer::diarize::diarize_loading;
    let stereo = read_channels(&dialogues_dir().join("dlg_104_109_stereo.wav"));
    for mode in [DiarizationMode::Auto, DiarizationMode::Speaker] {
        let how = Diarization {
            mode,
            ..Diarization::new(16_000, MAX_SEGMENT)
        };
        let whole = diarize(
            &DiarizationRequest {
                how,
                channels: stereo.iter().map(Vec::as_slice).collect(),
            },
            &common::models(),
        )
        .unwrap();
        let mut loaded = Vec::new();
        let streamed = diarize_loading(
            &how,
            stereo.len(),
            1,
            |channel| -> Result<Vec<i16>, DiarizeError> {
                loaded.push(channel);
                Ok(stereo[channel].clone())
            },
            &common::models(),
        )
        .unwrap();
        assert_eq!(loaded, vec![0, 1]);
        assert!(whole.len() > 2, "{whole:?}");
        assert_eq!(streamed, whole, "{mode:?}");
    }
}

/// Speech too short to build a similarity graph from is one voice without running the network
/// (most short calls of a batch); a caller who demands more voices still has them told apart.
#[test]
fn a_short_stretch_is_one_voice_unless_more_are_demanded() {
    // 13–20 s of dlg_104_109: zeroth-104 until 16.1 s, zeroth-109 from 17.06 s (its RTTM).
    let whole = read_channels(&dialogues_dir().join("dlg_104_109.wav")).remove(0);
    let stretch = &whole[13 * 16_000..20 * 16_000];
    let request = |mode, speakers| DiarizationRequest {
        how: Diarization {
            mode,
            speakers,
            ..Diarization::new(16_000, MAX_SEGMENT)
        },
        channels: vec![stretch],
    };
    let speaker_at = |turns: &[trd_diarizer::Turn], t: f64| {
        turns
            .iter()
            .find(|turn| turn.start <= t && t < turn.end)
            .map(|turn| turn.speaker.clone())
    };

    let default = diarize(
        &request(DiarizationMode::Auto, SpeakerConstraint::default()),
        &common::models(),
    )
    .unwrap();
    assert_eq!(speaker_count(&default), 1, "{default:?}");
    assert!(speaker_at(&default, 1.5).is_some() && speaker_at(&default, 5.5).is_some());

    for mode in [DiarizationMode::Auto, DiarizationMode::Speaker] {
        let two = diarize(
            &request(mode, SpeakerConstraint::exactly(2).unwrap()),
            &common::models(),
        )
        .unwrap();
        assert_eq!(speaker_count(&two), 2, "{mode:?}: {two:?}");
        let (first, second) = (speaker_at(&two, 1.5), speaker_at(&two, 5.5));
        assert!(
            first.is_some() && second.is_some() && first != second,
            "{mode:?}: the voices either side of 3.1–4.06 s are told apart: {two:?}"
        );
    }
}
