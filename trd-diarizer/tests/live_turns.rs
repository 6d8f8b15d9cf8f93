//! A live stream's turns equal, to the bit, those the batch cuts from the whole file with
//! speech detection alone, however the audio arrives, and a stream taken up at a rest point
//! goes on exactly as an undisturbed one.

// The shared dialogue helpers; this test needs only the decoding and the models.
#[allow(dead_code)]
mod common;

use trd_diarizer::live_turns::{heard_turns, HeardTurn, LiveTurns, REST_CONTEXT_SAMPLES};
use trd_diarizer::{diarize, DiarizationMode, DiarizationRequest};

const MAX_SEGMENT_SECONDS: f64 = 30.0;

fn batch_turns(samples: &[i16], max_segment_seconds: f64) -> Vec<HeardTurn> {
    let models = common::models();
    let mut request = DiarizationRequest::new(vec![samples], 16_000, max_segment_seconds);
    request.how.mode = DiarizationMode::None;
    let turns = diarize(&request, &models).expect("diarizes");
    let duration = samples.len() as f64 / 16_000.0;
    heard_turns(&turns, duration)
}

/// Pushes `samples` in pieces of varying size; returns the turns with the number of samples
/// heard when each was given out, and the rest points seen.
fn stream(live: &mut LiveTurns, samples: &[i16]) -> (Vec<(HeardTurn, u64)>, Vec<u64>) {
    let models = common::models();
    let sizes = [320usize, 4000, 1, 8000, 1234, 16000, 640];
    let (mut out, mut rests, mut at, mut i) = (Vec::new(), Vec::new(), 0, 0);
    while at < samples.len() {
        let end = (at + sizes[i % sizes.len()]).min(samples.len());
        i += 1;
        for turn in live.push(&models, &samples[at..end]) {
            out.push((turn, live.samples()));
        }
        rests.extend(live.rest_point());
        at = end;
    }
    for turn in live.finish(&models) {
        out.push((turn, live.samples()));
    }
    (out, rests)
}

#[test]
fn streamed_turns_equal_the_files_and_come_while_it_plays() {
    for (name, max) in [
        ("dlg_108_111_104", MAX_SEGMENT_SECONDS),
        ("dlg_104_109", MAX_SEGMENT_SECONDS),
        // Short turns force cuts inside speech.
        ("dlg_104_110", 4.0),
    ] {
        let samples =
            &common::read_channels(&common::dialogues_dir().join(format!("{name}.wav")))[0];
        let expected = batch_turns(samples, max);
        assert!(expected.len() > 3, "{name}: {expected:?}");
        let (got, _) = stream(&mut LiveTurns::new(max), samples);
        let turns: Vec<HeardTurn> = got.iter().map(|(t, _)| *t).collect();
        assert_eq!(turns, expected, "{name}");
        // Each turn comes out within 2 s of its heard audio's end, or of the moment its long
        // turn had to be cut.
        for (turn, at) in &got {
            let due = (turn.heard_end + 2.0).max(turn.start + max + 2.0);
            assert!((*at as f64 / 16_000.0) < due, "{name}: {turn:?} at {at}");
        }
    }
}

#[test]
fn a_stream_taken_up_at_a_rest_point_goes_on_as_before() {
    // A call with a silence across the first rest point (60 s): speech, 37 s of hold, speech.
    let dialogue = &common::read_channels(&common::dialogues_dir().join("dlg_104_109.wav"))[0];
    let cut = 24 * 16_000;
    let mut samples = dialogue[..cut].to_vec();
    samples.resize(61 * 16_000, 0);
    samples.extend_from_slice(&dialogue[cut..]);
    let samples = &samples;
    let (whole, rests) = stream(&mut LiveTurns::new(MAX_SEGMENT_SECONDS), samples);
    let Some(&rest) = rests.first() else {
        panic!("no rest point in a silence across 60 s: {rests:?}");
    };
    assert_eq!(rest, 60 * 16_000);
    let from = rest as usize;
    let context = &samples[from - REST_CONTEXT_SAMPLES as usize..from];
    let mut resumed = LiveTurns::resume(MAX_SEGMENT_SECONDS, rest, context);
    let (after, _) = stream(&mut resumed, &samples[from..]);
    let expected: Vec<HeardTurn> = whole
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| t.heard_start >= rest as f64 / 16_000.0)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(after.iter().map(|(t, _)| *t).collect::<Vec<_>>(), expected);
}
