//! Who is speaking in a live stream: one voiceprint per utterance, the CAM++ embedding that
//! batch diarization uses, pooled over the whole utterance. The stream's speakers are told
//! apart from these as utterances come (`trd_core::live::Voices`).

use crate::embedding::normalise_means;
use crate::models::Models;
use crate::vad;

/// Shortest utterance a voiceprint is taken of: under half a second the embedding says more
/// about the words than the voice.
const MIN_SECONDS: f64 = 0.5;

/// The voiceprint of an utterance of 16 kHz PCM, or `None` for audio too short to tell, or
/// at another rate.
pub fn voiceprint(models: &Models, samples: &[i16], sample_rate: u32) -> Option<Vec<f32>> {
    if sample_rate != vad::SAMPLE_RATE || (samples.len() as f64) < MIN_SECONDS * sample_rate as f64
    {
        return None;
    }
    // Kaldi features are computed on 16-bit sample values.
    let samples: Vec<f32> = samples.iter().map(|&s| f32::from(s)).collect();
    let features = normalise_means(&models.fbank.compute(&samples));
    if features.is_empty() {
        return None;
    }
    let frames = models.embedder.frame_level(&features);
    Some(unit(&models.embedder.pool(&frames, 0..frames.len.max(1))))
}

fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / norm).collect()
}
