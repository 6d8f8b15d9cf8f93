//! One file through decode → measure → resample → 16-bit PCM, in constant memory.

use std::path::Path;

use trd_core::domain::{AudioChannel, AudioInfo};

use crate::analysis::{format_duration, format_file_date, BandwidthMeter, RedundancyMeter};
use crate::decode::AudioSource;
use crate::error::NormalizeError;
use crate::resample::ChannelResampler;

#[derive(Debug, Clone)]
pub struct NormalizeReport {
    pub info: AudioInfo,
    /// One entry per output channel (a single one when the file is redundant).
    pub channels: Vec<AudioChannel>,
    pub redundant: bool,
    pub warnings: Vec<String>,
}

/// Normalizes `path`, handing each block of 16-bit PCM (`block[channel][frame]`, every input
/// channel) to `sink`. When the report says `redundant`, only channel 1 needs keeping.
pub fn normalize_file(
    path: &Path,
    output_rate: u32,
    sink: impl FnMut(&[Vec<i16>]) -> Result<(), NormalizeError>,
) -> Result<NormalizeReport, NormalizeError> {
    let file = std::fs::File::open(path).map_err(NormalizeError::Unreadable)?;
    normalize_opened(file, path, output_rate, u64::MAX, sink)
}

/// [`normalize_file`] of a file already opened (the stage opens it without following links);
/// `path` names it. Audio longer than `max_seconds` is refused: at once when its header says
/// so, else as soon as decoding passes it (a header may declare no length at all), so a small
/// file that decodes to days of audio costs at most `max_seconds` of PCM.
pub fn normalize_opened(
    file: std::fs::File,
    path: &Path,
    output_rate: u32,
    max_seconds: u64,
    sink: impl FnMut(&[Vec<i16>]) -> Result<(), NormalizeError>,
) -> Result<NormalizeReport, NormalizeError> {
    // Decoders read hostile bytes; one that panics on them must fail the file, not the worker.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        normalize_unguarded(file, path, output_rate, max_seconds, sink)
    }))
    .unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown error".into());
        Err(NormalizeError::DecoderCrashed(message))
    })
}

fn normalize_unguarded(
    file: std::fs::File,
    path: &Path,
    output_rate: u32,
    max_seconds: u64,
    mut sink: impl FnMut(&[Vec<i16>]) -> Result<(), NormalizeError>,
) -> Result<NormalizeReport, NormalizeError> {
    let metadata = file.metadata().map_err(NormalizeError::Unreadable)?;
    let mut source = AudioSource::from_file(file, path)?;
    let channels = source.channels;
    let input_rate = source.sample_rate;
    let max_frames = max_seconds.saturating_mul(u64::from(input_rate));
    if let Some(declared) = source.declared_frames.filter(|&d| d > max_frames) {
        return Err(NormalizeError::TooLong {
            max_seconds,
            found: format!(
                "its header declares {}",
                format_duration(declared as f64 / f64::from(input_rate))
            ),
        });
    }
    let mut resampler = ChannelResampler::new(input_rate, output_rate, channels)?;
    let mut redundancy = RedundancyMeter::new(channels);
    let mut meters: Vec<BandwidthMeter> = (0..channels)
        .map(|_| BandwidthMeter::new(output_rate))
        .collect();
    let mut input_frames: u64 = 0;
    let mut output_frames: u64 = 0;
    let mut pcm: Vec<Vec<i16>> = vec![Vec::new(); channels];

    let mut emit = |block: &[Vec<f32>]| -> Result<(), NormalizeError> {
        for ((out, samples), meter) in pcm.iter_mut().zip(block).zip(meters.iter_mut()) {
            meter.push(samples);
            out.clear();
            out.extend(samples.iter().map(|&s| to_pcm(s)));
        }
        output_frames += block.first().map_or(0, Vec::len) as u64;
        sink(&pcm)
    };
    let end = source.decode_all(|block| {
        input_frames += block.first().map_or(0, Vec::len) as u64;
        if input_frames > max_frames {
            return Err(NormalizeError::TooLong {
                max_seconds,
                found: "decoding went past it".to_owned(),
            });
        }
        redundancy.push(block);
        resampler.push(block, &mut emit)
    })?;
    resampler.finish(&mut emit)?;

    if input_frames == 0 {
        let why = end.truncated.map(|t| format!(" ({t})")).unwrap_or_default();
        return Err(NormalizeError::NoSamples(why));
    }
    let mut warnings = Vec::new();
    if let Some(damage) = &end.truncated {
        warnings.push(format!(
            "the file is damaged after {}: normalized up to the damage ({damage})",
            format_duration(input_frames as f64 / input_rate as f64)
        ));
    }
    if let Some(declared) = source
        .declared_frames
        .filter(|&d| end.truncated.is_none() && d > input_frames + input_rate as u64 / 10)
    {
        warnings.push(format!(
            "the file is truncated: its header declares {} but only {} of audio are present; normalized what is there",
            format_duration(declared as f64 / input_rate as f64),
            format_duration(input_frames as f64 / input_rate as f64)
        ));
    }
    if end.skipped_packets > 0 {
        warnings.push(format!(
            "{} undecodable packets were skipped",
            end.skipped_packets
        ));
    }

    let duration = input_frames as f64 / input_rate as f64;
    let redundant = redundancy.redundant();
    let kept = if redundant { 1 } else { channels };
    let channel_duration = (output_frames as f64 / output_rate as f64 * 1000.0).round() / 1000.0;
    let input_nyquist = input_rate as f64 / 2.0;
    let audio_channels = meters
        .iter()
        .take(kept)
        .enumerate()
        .map(|(i, m)| AudioChannel {
            bandwidth: m.bandwidth(input_nyquist).to_string(),
            channel: i as u32 + 1,
            duration: channel_duration,
        })
        .collect();
    let lossless_pcm = source.codec == "PCM" || source.codec.starts_with("G.711");
    let bit_rate = match (lossless_pcm, source.bits_per_sample) {
        (true, Some(bits)) => bits as u64 * input_rate as u64 * channels as u64,
        _ => (metadata.len() as f64 * 8.0 / duration).round() as u64,
    };
    let info = AudioInfo {
        bit_rate: bit_rate.to_string(),
        bit_rate_mode: if lossless_pcm { "Constant" } else { "Variable" }.to_owned(),
        channels: channels.to_string(),
        codec: source.codec.clone(),
        comment: source.tags.comment.clone(),
        compression_mode: if lossless_pcm || source.codec == "FLAC" {
            "Lossless"
        } else {
            "Lossy"
        }
        .to_owned(),
        duration: format_duration(duration),
        encoded_library: source.tags.encoder.clone(),
        file_created_date: metadata.created().map(format_file_date).unwrap_or_default(),
        file_modified_date: metadata
            .modified()
            .map(format_file_date)
            .unwrap_or_default(),
        file_size: metadata.len().to_string(),
        format: source.container.clone(),
        input_sampling_rate: input_rate.to_string(),
        output_sampling_rate: output_rate.to_string(),
        redundant_channel: redundant,
        track: source.tags.track.clone(),
    };
    Ok(NormalizeReport {
        info,
        channels: audio_channels,
        redundant,
        warnings,
    })
}

/// 16-bit mono PCM arriving piece by piece (a live stream), turned into the same samples
/// normalizing a file of that audio stores: through the same resampler and the same scaling.
pub struct PcmStream {
    resampler: ChannelResampler,
}

impl PcmStream {
    pub fn new(input_rate: u32, output_rate: u32) -> Result<Self, NormalizeError> {
        Ok(Self {
            resampler: ChannelResampler::new(input_rate, output_rate, 1)?,
        })
    }

    /// The normalized samples that `samples` complete.
    pub fn push(&mut self, samples: &[i16]) -> Result<Vec<i16>, NormalizeError> {
        // As a decoder reads 16-bit PCM.
        let block = [samples.iter().map(|&s| f32::from(s) / 32768.0).collect()];
        let mut out = Vec::new();
        self.resampler.push(&block, &mut |b| {
            out.extend(b[0].iter().map(|&s| to_pcm(s)));
            Ok(())
        })?;
        Ok(out)
    }

    /// The last normalized samples, once the audio has ended.
    pub fn finish(&mut self) -> Result<Vec<i16>, NormalizeError> {
        let mut out = Vec::new();
        self.resampler.finish(&mut |b| {
            out.extend(b[0].iter().map(|&s| to_pcm(s)));
            Ok(())
        })?;
        Ok(out)
    }
}

/// A decoded sample as stored PCM.
fn to_pcm(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * 32767.0).round() as i16
}
