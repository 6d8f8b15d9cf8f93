//! The shared test dialogues: decoding, reference turns and scoring, for the tests and the bench.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rubato::{FftFixedIn, Resampler};
use trd_diarizer::der::{self, DerReport, SpeakerTurn};
use trd_diarizer::{Models, Turn};

pub const COLLAR: f64 = 0.25;
pub const DIALOGUES: [&str; 3] = ["dlg_104_109", "dlg_104_110", "dlg_108_111_104"];
pub const STEREO: [&str; 2] = ["dlg_104_109", "dlg_104_110"];

/// The models the `diarizer_models` setting names (`TRD_DIARIZER_MODELS` overrides it).
pub fn models() -> Arc<Models> {
    let settings = trd_core::Settings::load().expect("settings load");
    Models::shared(&settings.diarizer_models)
        .expect("diarizer models are provisioned (scripts/lib/provision-diarizer.sh)")
}

pub fn dialogues_dir() -> PathBuf {
    std::env::var_os("TRD_TEST_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
        .join("dialogues")
}

/// 16-bit PCM per channel from a WAV file, µ-law and 8 kHz files decoded and upsampled to 16 kHz.
pub fn read_channels(path: &Path) -> Vec<Vec<i16>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let format_tag = u16::from_le_bytes([bytes[20], bytes[21]]);
    let (rate, channels) = if format_tag == MULAW {
        read_mulaw(&bytes)
    } else {
        let mut reader = hound::WavReader::open(path).expect("a PCM WAV file");
        let spec = reader.spec();
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        let count = spec.channels as usize;
        let channels = (0..count)
            .map(|c| samples.iter().skip(c).step_by(count).copied().collect())
            .collect();
        (spec.sample_rate, channels)
    };
    if rate == 16_000 {
        channels
    } else {
        channels.iter().map(|c| resample(c, rate, 16_000)).collect()
    }
}

const MULAW: u16 = 7;

/// G.711 µ-law WAV, which hound does not read: the `fmt ` and `data` chunks by hand.
fn read_mulaw(bytes: &[u8]) -> (u32, Vec<Vec<i16>>) {
    let mut pos = 12;
    let (mut rate, mut count, mut data) = (0, 1, &[][..]);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..(pos + 8 + size).min(bytes.len())];
        match id {
            b"fmt " => {
                count = u16::from_le_bytes([body[2], body[3]]) as usize;
                rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
            }
            b"data" => data = body,
            _ => {}
        }
        pos += 8 + size + size % 2;
    }
    let channels = (0..count)
        .map(|c| {
            data.iter()
                .skip(c)
                .step_by(count)
                .map(|&b| mulaw_to_linear(b))
                .collect()
        })
        .collect();
    (rate, channels)
}

fn mulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    const CHUNK: usize = 1024;
    let mut resampler = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 1, 1).unwrap();
    let input: Vec<f32> = samples.iter().map(|&s| s as f32 / 32768.0).collect();
    let mut out = Vec::new();
    let mut chunks = input.chunks_exact(CHUNK);
    for chunk in &mut chunks {
        out.extend_from_slice(&resampler.process(&[chunk], None).unwrap()[0]);
    }
    out.extend_from_slice(
        &resampler
            .process_partial(Some(&[chunks.remainder()]), None)
            .unwrap()[0],
    );
    out.extend_from_slice(&resampler.process_partial::<&[f32]>(None, None).unwrap()[0]);
    let delay = resampler.output_delay();
    let length = samples.len() * to as usize / from as usize;
    out[delay..(delay + length).min(out.len())]
        .iter()
        .map(|&s| (s * 32768.0).clamp(-32768.0, 32767.0) as i16)
        .collect()
}

pub fn reference(name: &str) -> Vec<SpeakerTurn> {
    let path = dialogues_dir().join(format!("{name}.rttm"));
    der::parse_rttm(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn as_rttm(file: &str, turns: &[Turn]) -> Vec<SpeakerTurn> {
    turns
        .iter()
        .map(|t| SpeakerTurn {
            file: file.to_owned(),
            channel: t.channel,
            start: t.start,
            duration: t.end - t.start,
            speaker: t.speaker.clone(),
        })
        .collect()
}

pub fn speaker_count(turns: &[Turn]) -> usize {
    let mut speakers: Vec<&str> = turns.iter().map(|t| t.speaker.as_str()).collect();
    speakers.sort_unstable();
    speakers.dedup();
    speakers.len()
}

pub fn score(name: &str, turns: &[Turn]) -> DerReport {
    der::score(&reference(name), &as_rttm(name, turns), COLLAR)
}
