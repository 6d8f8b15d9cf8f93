//! What the record says about the audio, measured rather than copied from headers.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

const FFT_SIZE: usize = 512;
/// Analysing every frame would cost more than decoding; every 4th is plenty for an average.
const FRAME_STRIDE: usize = 4;
/// A frequency counts as carried by the channel when its average power is within this many dB
/// of the strongest frequency. Band-limited audio (telephone, or anything upsampled) falls off
/// by far more than this above its band edge; real wide-band recordings do not.
const DYNAMIC_RANGE_DB: f64 = 60.0;
/// Band edges are reported on a 500 Hz grid: the resampler's transition band blurs them.
const EDGE_GRID_HZ: f64 = 500.0;

/// Averages the power spectrum of one channel to find its effective bandwidth.
pub struct BandwidthMeter {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    pending: Vec<f32>,
    power: Vec<f64>,
    frames_seen: usize,
    frames_used: usize,
    sample_rate: u32,
}

impl BandwidthMeter {
    pub fn new(sample_rate: u32) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_SIZE);
        let window = (0..FFT_SIZE)
            .map(|i| {
                let x = std::f32::consts::PI * 2.0 * i as f32 / FFT_SIZE as f32;
                0.5 - 0.5 * x.cos()
            })
            .collect();
        Self {
            fft,
            window,
            pending: Vec::with_capacity(FFT_SIZE * 2),
            power: vec![0.0; FFT_SIZE / 2 + 1],
            frames_seen: 0,
            frames_used: 0,
            sample_rate,
        }
    }

    pub fn push(&mut self, samples: &[f32]) {
        self.pending.extend_from_slice(samples);
        let mut input = vec![0.0f32; FFT_SIZE];
        let mut spectrum = self.fft.make_output_vec();
        let mut consumed = 0;
        while self.pending.len() - consumed >= FFT_SIZE {
            let frame = &self.pending[consumed..consumed + FFT_SIZE];
            consumed += FFT_SIZE;
            self.frames_seen += 1;
            if !self.frames_seen.is_multiple_of(FRAME_STRIDE) {
                continue;
            }
            for ((dst, &s), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                *dst = s * w;
            }
            if self.fft.process(&mut input, &mut spectrum).is_ok() {
                for (p, c) in self.power.iter_mut().zip(&spectrum) {
                    *p += c.norm_sqr() as f64;
                }
                self.frames_used += 1;
            }
        }
        self.pending.drain(..consumed);
    }

    /// The effective bandwidth in Hz, never above `nyquist_cap` (the input's Nyquist frequency).
    pub fn bandwidth(&self, nyquist_cap: f64) -> u32 {
        let nyquist = self.sample_rate as f64 / 2.0;
        let cap = nyquist_cap.min(nyquist);
        if self.frames_used == 0 {
            return cap as u32;
        }
        let peak = self.power.iter().skip(1).cloned().fold(0.0, f64::max);
        if peak <= 0.0 {
            return 0;
        }
        let threshold = peak * 10f64.powf(-DYNAMIC_RANGE_DB / 10.0);
        let bin_hz = self.sample_rate as f64 / FFT_SIZE as f64;
        let edge_bin = self
            .power
            .iter()
            .rposition(|&p| p >= threshold)
            .unwrap_or(0);
        let edge = ((edge_bin as f64 + 0.5) * bin_hz / EDGE_GRID_HZ).ceil() * EDGE_GRID_HZ;
        edge.min(cap) as u32
    }
}

/// Tells whether every channel carries the same signal as the first.
pub struct RedundancyMeter {
    reference_energy: f64,
    difference_energy: Vec<f64>,
}

/// Channels whose difference is 40 dB below the signal are the same recording (lossy codecs
/// do not reproduce duplicated channels bit for bit).
const REDUNDANT_BELOW: f64 = 1e-4;

impl RedundancyMeter {
    pub fn new(channels: usize) -> Self {
        Self {
            reference_energy: 0.0,
            difference_energy: vec![0.0; channels.saturating_sub(1)],
        }
    }

    pub fn push(&mut self, block: &[Vec<f32>]) {
        let Some((first, others)) = block.split_first() else {
            return;
        };
        self.reference_energy += first.iter().map(|&s| (s as f64).powi(2)).sum::<f64>();
        for (acc, other) in self.difference_energy.iter_mut().zip(others) {
            *acc += first
                .iter()
                .zip(other)
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum::<f64>();
        }
    }

    pub fn redundant(&self) -> bool {
        !self.difference_energy.is_empty()
            && self
                .difference_energy
                .iter()
                .all(|&d| d <= self.reference_energy * REDUNDANT_BELOW)
    }
}

/// `HH:MM:SS.mmm`, as the original service prints durations.
pub fn format_duration(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// `UTC 2019-03-08 18:02:16`, as the original service prints file dates.
pub fn format_file_date(time: std::time::SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Utc> = time.into();
    dt.format("UTC %Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 20_000) as f32 / 20_000.0 - 0.5
            })
            .collect()
    }

    #[test]
    fn white_noise_is_full_band_and_lowpassed_noise_is_not() {
        let rate = 16_000;
        let wide = noise(rate * 2, 7);
        let mut m = BandwidthMeter::new(rate as u32);
        m.push(&wide);
        assert_eq!(m.bandwidth(8000.0), 8000);
        // A crude low-pass (moving average of 8) leaves little above ~2 kHz but not 60 dB less,
        // so the cap decides: an 8 kHz input's Nyquist limits the report to 4000.
        let mut m = BandwidthMeter::new(rate as u32);
        m.push(&wide);
        assert_eq!(m.bandwidth(4000.0), 4000);
    }

    #[test]
    fn silence_has_no_bandwidth() {
        let mut m = BandwidthMeter::new(16_000);
        m.push(&vec![0.0; 16_000]);
        assert_eq!(m.bandwidth(8000.0), 0);
    }

    #[test]
    fn duplicated_channels_are_redundant_distinct_are_not() {
        let a = noise(1000, 1);
        let b = noise(1000, 2);
        let mut same = RedundancyMeter::new(2);
        same.push(&[a.clone(), a.clone()]);
        assert!(same.redundant());
        let mut different = RedundancyMeter::new(2);
        different.push(&[a, b]);
        assert!(!different.redundant());
        assert!(!RedundancyMeter::new(1).redundant());
    }

    #[test]
    fn durations_print_like_the_original_service() {
        assert_eq!(format_duration(520.0), "00:08:40.000");
        assert_eq!(format_duration(103.7734), "00:01:43.773");
        assert_eq!(format_duration(3723.5), "01:02:03.500");
    }
}
