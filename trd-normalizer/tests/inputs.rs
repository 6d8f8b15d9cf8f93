//! What users drop into the work directory: every supported format normalizes with honest
//! metadata; broken files fail with a specific reason (or normalize with a warning), never
//! crash and never hang.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use trd_normalizer::{normalize_file, NormalizeError, NormalizeReport};

fn data() -> PathBuf {
    std::env::var_os("TRD_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// Normalizes in a thread with a time bound, counting the samples handed on per channel.
fn normalize(path: &Path) -> (Result<NormalizeReport, NormalizeError>, Vec<u64>) {
    let (tx, rx) = mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::spawn(move || {
        let mut counts: Vec<u64> = Vec::new();
        let result = normalize_file(&owned, 16_000, |block| {
            counts.resize(block.len(), 0);
            for (c, ch) in counts.iter_mut().zip(block) {
                *c += ch.len() as u64;
            }
            Ok(())
        });
        let _ = tx.send((result, counts));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("normalizing {} took over 60 s", path.display()))
}

fn reference_duration(stem: &str) -> f64 {
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data().join("dialogues/summary.json")).unwrap(),
    )
    .unwrap();
    summary[stem]["duration_s"].as_f64().unwrap()
}

#[test]
fn every_shared_dialogue_normalizes_with_exact_durations_and_measured_bandwidth() {
    let mut checked = 0;
    for entry in std::fs::read_dir(data().join("dialogues")).unwrap() {
        let path = entry.unwrap().path();
        let ext = path.extension().unwrap().to_string_lossy().to_string();
        if !["wav", "flac", "mp3", "ogg", "m4a"].contains(&ext.as_str()) {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let stem = name
            .trim_end_matches("_stereo_8k_ulaw")
            .trim_end_matches("_stereo");
        let (result, counts) = normalize(&path);
        let report = result.unwrap_or_else(|e| panic!("{name}.{ext}: {e}"));
        let expected = reference_duration(stem);
        let stereo = name.contains("_stereo");
        assert_eq!(
            report.channels.len(),
            if stereo { 2 } else { 1 },
            "{name}.{ext}"
        );
        assert!(!report.info.redundant_channel, "{name}.{ext}");
        for (ch, samples) in report.channels.iter().zip(&counts) {
            assert!(
                (ch.duration - expected).abs() <= 0.030,
                "{name}.{ext}: {} vs {expected}",
                ch.duration
            );
            assert!(
                (*samples as f64 / 16_000.0 - expected).abs() <= 0.030,
                "{name}.{ext}: {samples} samples"
            );
            let bandwidth: u32 = ch.bandwidth.parse().unwrap();
            if name.ends_with("_8k_ulaw") {
                assert_eq!(ch.bandwidth, "4000", "{name}.{ext}");
            } else {
                assert!(bandwidth > 6000, "{name}.{ext}: bandwidth {bandwidth}");
            }
        }
        let info = &report.info;
        assert_eq!(info.output_sampling_rate, "16000");
        assert_eq!(info.channels, if stereo { "2" } else { "1" });
        assert!(!info.codec.is_empty() && !info.format.is_empty() && !info.bit_rate.is_empty());
        if name.ends_with("_8k_ulaw") {
            assert_eq!(info.input_sampling_rate, "8000");
            assert_eq!(info.codec, "G.711 µ-law");
            assert_eq!(info.bit_rate, "128000");
        }
        checked += 1;
    }
    assert_eq!(checked, 19, "expected 15 mono and 4 stereo dialogue files");
}

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg is installed by scripts/lib/provision-test.sh");
    assert!(status.success(), "ffmpeg {args:?}");
}

#[test]
fn a_duplicated_mono_file_is_redundant_and_keeps_one_channel() {
    let dir = tempfile::tempdir().unwrap();
    let mono = data().join("dialogues/dlg_104_110.wav");
    let out = dir.path().join("dup.wav");
    ffmpeg(&[
        "-i",
        mono.to_str().unwrap(),
        "-ac",
        "2",
        out.to_str().unwrap(),
    ]);
    let (result, _) = normalize(&out);
    let report = result.unwrap();
    assert!(report.redundant && report.info.redundant_channel);
    assert_eq!(report.channels.len(), 1);
    assert_eq!(report.info.channels, "2");
}

#[test]
fn wav_variants_and_odd_rates_normalize() {
    let dir = tempfile::tempdir().unwrap();
    let src = data().join("dialogues/dlg_104_109_stereo.wav");
    let variants: [(&str, &[&str]); 8] = [
        ("u8.wav", &["-c:a", "pcm_u8"]),
        ("s24.wav", &["-c:a", "pcm_s24le"]),
        ("s32.wav", &["-c:a", "pcm_s32le"]),
        ("f32.wav", &["-c:a", "pcm_f32le"]),
        ("alaw.wav", &["-c:a", "pcm_alaw", "-ar", "8000"]),
        ("ima.wav", &["-c:a", "adpcm_ima_wav"]),
        ("ms.wav", &["-c:a", "adpcm_ms"]),
        ("44k.flac", &["-ar", "44100"]),
    ];
    for (name, args) in variants {
        let out = dir.path().join(name);
        let mut all = vec!["-i", src.to_str().unwrap(), "-t", "10"];
        all.extend_from_slice(args);
        all.push(out.to_str().unwrap());
        ffmpeg(&all);
        let (result, counts) = normalize(&out);
        let report = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.channels.len(), 2, "{name}");
        for c in &counts {
            assert!(
                (*c as f64 / 16_000.0 - 10.0).abs() < 0.06,
                "{name}: {c} samples"
            );
        }
    }
}

/// The broken-input corpus: each case fails with a reason that names the problem, or
/// normalizes with a warning where partial decoding is right.
#[test]
fn broken_inputs_fail_with_specific_reasons_or_warn() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wav = std::fs::read(data().join("dialogues/dlg_104_109.wav")).unwrap();
    let mp3 = std::fs::read(data().join("dialogues/dlg_104_109.mp3")).unwrap();
    let flac = std::fs::read(data().join("dialogues/dlg_104_109.flac")).unwrap();
    let ogg = std::fs::read(data().join("dialogues/dlg_104_109.ogg")).unwrap();
    let m4a = std::fs::read(data().join("dialogues/dlg_104_109.m4a")).unwrap();
    let mut noise = Vec::new();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push(x as u8);
    }
    let header = |rate: u32, channels: u16, data_len: u32| {
        let mut h = Vec::new();
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&(36 + data_len).to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&channels.to_le_bytes());
        h.extend_from_slice(&rate.to_le_bytes());
        h.extend_from_slice(&(rate.wrapping_mul(2 * channels as u32)).to_le_bytes());
        h.extend_from_slice(&(2 * channels).to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&data_len.to_le_bytes());
        h
    };
    let opus = d.join("speech.opus.ogg");
    let src = data().join("dialogues/dlg_104_110.wav");
    ffmpeg(&[
        "-i",
        src.to_str().unwrap(),
        "-t",
        "3",
        "-c:a",
        "libopus",
        opus.to_str().unwrap(),
    ]);

    // (file name, bytes, expected: Err(fragment of the reason) or Ok(fragment of a warning))
    let cases: Vec<(&str, Vec<u8>, Result<&str, &str>)> = vec![
        ("empty.wav", vec![], Err("empty")),
        (
            "random.wav",
            noise.clone(),
            Err("not a recognised audio file"),
        ),
        ("random.mp3", noise.clone(), Err("")),
        (
            "random.flac",
            noise[..5000].to_vec(),
            Err("not a recognised audio file"),
        ),
        (
            "notes.wav",
            b"these are meeting notes, not audio\n".repeat(50),
            Err("not a recognised audio file"),
        ),
        (
            "header-only.wav",
            header(16_000, 1, 0),
            Err("no decodable audio samples"),
        ),
        (
            "huge-rate.wav",
            [header(4_000_000_000, 1, 3200), vec![0; 3200]].concat(),
            Err("sample rate"),
        ),
        (
            "zero-rate.wav",
            [header(0, 1, 3200), vec![0; 3200]].concat(),
            Err(""),
        ),
        (
            "zero-channels.wav",
            [header(16_000, 0, 3200), vec![0; 3200]].concat(),
            Err(""),
        ),
        (
            "many-channels.wav",
            [header(16_000, 200, 3200), vec![0; 3200]].concat(),
            Err(""),
        ),
        (
            "png.wav",
            [b"\x89PNG\r\n\x1a\n".to_vec(), noise[..2000].to_vec()].concat(),
            Err("not a recognised audio file"),
        ),
        (
            "riff-garbage.wav",
            [b"RIFF\x00\x10\x00\x00WAVE".to_vec(), noise[..4000].to_vec()].concat(),
            Err(""),
        ),
        ("truncated-header.wav", wav[..30].to_vec(), Err("")),
        ("half.m4a", m4a[..m4a.len() / 2].to_vec(), Err("")),
        ("opus.ogg", std::fs::read(&opus).unwrap(), Err("Opus")),
        (
            "claims-more.wav",
            wav[..wav.len() / 2].to_vec(),
            Ok("truncated"),
        ),
        ("half.mp3", mp3[..mp3.len() / 2].to_vec(), Ok("")),
        ("half.flac", flac[..flac.len() / 2].to_vec(), Ok("")),
        ("half.ogg", ogg[..ogg.len() / 2].to_vec(), Ok("")),
        (
            "mp3-with-garbage-middle.mp3",
            {
                let mut m = mp3.clone();
                let mid = m.len() / 2;
                m[mid..mid + 3000].copy_from_slice(&noise[..3000]);
                m
            },
            Ok(""),
        ),
        ("mp3-named-wav.wav", mp3.clone(), Ok("")),
    ];
    assert!(cases.len() >= 20);
    for (name, bytes, expected) in cases {
        let path = d.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let (result, counts) = normalize(&path);
        match (expected, result) {
            (Err(fragment), Err(e)) => {
                let reason = e.to_string();
                assert!(
                    !e.is_transient(),
                    "{name}: a broken file is not a transient error: {reason}"
                );
                assert!(
                    reason.contains(fragment),
                    "{name}: reason {reason:?} lacks {fragment:?}"
                );
            }
            (Ok(fragment), Ok(report)) => {
                assert!(
                    counts.iter().all(|&c| c > 16_000),
                    "{name}: too little audio kept: {counts:?}"
                );
                if !fragment.is_empty() {
                    assert!(
                        report.warnings.iter().any(|w| w.contains(fragment)),
                        "{name}: warnings {:?} lack {fragment:?}",
                        report.warnings
                    );
                }
            }
            (expected, got) => panic!(
                "{name}: expected {expected:?}, got {:?}",
                got.map(|r| r.warnings)
            ),
        }
    }
}
