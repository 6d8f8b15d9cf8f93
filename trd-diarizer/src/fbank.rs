//! Kaldi-style 80-band log-mel filterbank features, the input CAM++ was trained on.
//!
//! Kaldi's defaults throughout (25 ms Povey window, 10 ms shift, pre-emphasis 0.97, DC removal,
//! power spectrum, mel bands from 20 Hz to Nyquist, no dither), because the embedding network is
//! only accurate on exactly the features it was trained with.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

pub const BANDS: usize = 80;
const FRAME_LENGTH: usize = 400;
const FRAME_SHIFT: usize = 160;
const FFT: usize = 512;
const PREEMPHASIS: f32 = 0.97;
const LOW_HZ: f32 = 20.0;

pub struct Fbank {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// Per band: the first FFT bin it covers and the weights from there.
    filters: Vec<(usize, Vec<f32>)>,
}

impl Fbank {
    pub fn new(sample_rate: u32) -> Self {
        let window = (0..FRAME_LENGTH)
            .map(|i| {
                let hann = 0.5
                    - 0.5
                        * (2.0 * std::f32::consts::PI * i as f32 / (FRAME_LENGTH - 1) as f32).cos();
                hann.powf(0.85)
            })
            .collect();
        Self {
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(FFT),
            window,
            filters: mel_filters(sample_rate as f32),
        }
    }

    /// Frames × [`BANDS`], row-major; a frame for every full 25 ms window (Kaldi's "snip edges").
    pub fn compute(&self, samples: &[f32]) -> Vec<f32> {
        if samples.len() < FRAME_LENGTH {
            return Vec::new();
        }
        let frames = 1 + (samples.len() - FRAME_LENGTH) / FRAME_SHIFT;
        let mut out = Vec::with_capacity(frames * BANDS);
        let mut buffer = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f32; spectrum.len()];
        for frame in samples.windows(FRAME_LENGTH).step_by(FRAME_SHIFT) {
            let mean = frame.iter().sum::<f32>() / FRAME_LENGTH as f32;
            buffer.fill(0.0);
            let mut previous = frame[0] - mean;
            for (i, &x) in frame.iter().enumerate() {
                let centred = x - mean;
                buffer[i] = (centred - PREEMPHASIS * previous) * self.window[i];
                previous = centred;
            }
            self.fft
                .process_with_scratch(&mut buffer, &mut spectrum, &mut scratch)
                .expect("buffers come from the same plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            out.extend(self.filters.iter().map(|(first, weights)| {
                let energy: f32 = weights
                    .iter()
                    .zip(&power[*first..])
                    .map(|(w, p)| w * p)
                    .sum();
                energy.max(f32::EPSILON).ln()
            }));
        }
        out
    }
}

fn mel(hz: f32) -> f32 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

/// Triangles evenly spaced on the mel scale, evaluated at each FFT bin's centre frequency.
fn mel_filters(sample_rate: f32) -> Vec<(usize, Vec<f32>)> {
    let (low, high) = (mel(LOW_HZ), mel(sample_rate / 2.0));
    let delta = (high - low) / (BANDS + 1) as f32;
    // Kaldi leaves out the Nyquist bin.
    let bin_mels: Vec<f32> = (0..FFT / 2)
        .map(|i| mel(i as f32 * sample_rate / FFT as f32))
        .collect();
    (0..BANDS)
        .map(|band| {
            let left = low + band as f32 * delta;
            let (centre, right) = (left + delta, left + 2.0 * delta);
            let weights: Vec<(usize, f32)> = bin_mels
                .iter()
                .enumerate()
                .filter(|(_, &m)| m > left && m < right)
                .map(|(i, &m)| {
                    let w = if m <= centre {
                        (m - left) / delta
                    } else {
                        (right - m) / delta
                    };
                    (i, w)
                })
                .collect();
            let first = weights.first().map_or(0, |&(i, _)| i);
            (first, weights.into_iter().map(|(_, w)| w).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count_follows_snip_edges() {
        let fbank = Fbank::new(16_000);
        assert!(fbank.compute(&[0.0; 399]).is_empty());
        assert_eq!(fbank.compute(&[0.0; 400]).len(), BANDS);
        assert_eq!(fbank.compute(&[0.0; 16_000]).len(), 98 * BANDS);
    }

    #[test]
    fn a_tone_lights_up_the_band_around_its_frequency() {
        let fbank = Fbank::new(16_000);
        let tone: Vec<f32> = (0..4000)
            .map(|i| 1000.0 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let features = fbank.compute(&tone);
        let first = &features[..BANDS];
        let loudest = (0..BANDS)
            .max_by(|&a, &b| first[a].total_cmp(&first[b]))
            .unwrap();
        let (left, right) = (mel(1000.0) - mel(LOW_HZ), mel(8000.0) - mel(LOW_HZ));
        let expected = (left / right * (BANDS + 1) as f32) as usize;
        assert!(
            loudest.abs_diff(expected) <= 1,
            "loudest band {loudest}, expected ≈{expected}"
        );
    }
}
