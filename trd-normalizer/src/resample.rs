//! Streaming resampling of all channels to one output rate, with the resampler's delay
//! removed so output time matches input time exactly (segment times depend on it).

use rubato::{FftFixedIn, Resampler};

use crate::error::NormalizeError;

const CHUNK_FRAMES: usize = 4096;

pub enum ChannelResampler {
    /// Input already at the output rate.
    Passthrough,
    Fft(Box<FftState>),
}

pub struct FftState {
    resampler: FftFixedIn<f32>,
    pending: Vec<Vec<f32>>,
    /// Output frames still to drop at the start (the resampler's delay).
    to_skip: usize,
    input_frames: u64,
    output_frames: u64,
    ratio: f64,
    out: Vec<Vec<f32>>,
}

impl ChannelResampler {
    pub fn new(input_rate: u32, output_rate: u32, channels: usize) -> Result<Self, NormalizeError> {
        if input_rate == output_rate {
            return Ok(Self::Passthrough);
        }
        let resampler = FftFixedIn::<f32>::new(
            input_rate as usize,
            output_rate as usize,
            CHUNK_FRAMES,
            2,
            channels,
        )
        .map_err(|source| NormalizeError::UnresamplableRate {
            rate: input_rate,
            source,
        })?;
        let out = resampler.output_buffer_allocate(true);
        Ok(Self::Fft(Box::new(FftState {
            to_skip: resampler.output_delay(),
            resampler,
            pending: vec![Vec::with_capacity(CHUNK_FRAMES * 2); channels],
            input_frames: 0,
            output_frames: 0,
            ratio: output_rate as f64 / input_rate as f64,
            out,
        })))
    }

    /// Feeds a block; `emit` receives resampled frames as they become available.
    pub fn push(
        &mut self,
        block: &[Vec<f32>],
        emit: &mut impl FnMut(&[Vec<f32>]) -> Result<(), NormalizeError>,
    ) -> Result<(), NormalizeError> {
        match self {
            Self::Passthrough => emit(block),
            Self::Fft(state) => {
                for (p, b) in state.pending.iter_mut().zip(block) {
                    p.extend_from_slice(b);
                }
                state.input_frames += block.first().map_or(0, Vec::len) as u64;
                while state.pending[0].len() >= state.resampler.input_frames_next() {
                    let need = state.resampler.input_frames_next();
                    state.run(need, emit)?;
                }
                Ok(())
            }
        }
    }

    /// Flushes the tail, so the output holds exactly `input × ratio` frames.
    pub fn finish(
        &mut self,
        emit: &mut impl FnMut(&[Vec<f32>]) -> Result<(), NormalizeError>,
    ) -> Result<(), NormalizeError> {
        let Self::Fft(state) = self else {
            return Ok(());
        };
        let expected = (state.input_frames as f64 * state.ratio).round() as u64;
        while state.output_frames < expected {
            let need = state.resampler.input_frames_next();
            for p in state.pending.iter_mut() {
                p.resize(p.len().max(need), 0.0);
            }
            state.run(need, emit)?;
            if state.pending[0].is_empty() && state.output_frames >= expected {
                break;
            }
        }
        Ok(())
    }
}

impl FftState {
    fn run(
        &mut self,
        need: usize,
        emit: &mut impl FnMut(&[Vec<f32>]) -> Result<(), NormalizeError>,
    ) -> Result<(), NormalizeError> {
        let input: Vec<&[f32]> = self.pending.iter().map(|p| &p[..need]).collect();
        let (_, produced) = self
            .resampler
            .process_into_buffer(&input, &mut self.out, None)
            .map_err(NormalizeError::Resampling)?;
        for p in self.pending.iter_mut() {
            p.drain(..need);
        }
        let skip = self.to_skip.min(produced);
        self.to_skip -= skip;
        let expected = (self.input_frames as f64 * self.ratio).round() as u64;
        let available = (produced - skip) as u64;
        let keep = available.min(expected.saturating_sub(self.output_frames)) as usize;
        if keep > 0 {
            let frames: Vec<Vec<f32>> = self
                .out
                .iter()
                .map(|o| o[skip..skip + keep].to_vec())
                .collect();
            self.output_frames += keep as u64;
            emit(&frames)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resample_all(input: &[f32], from: u32, to: u32) -> Vec<f32> {
        let mut r = ChannelResampler::new(from, to, 1).unwrap();
        let mut out = Vec::new();
        let mut emit = |b: &[Vec<f32>]| {
            out.extend_from_slice(&b[0]);
            Ok(())
        };
        for chunk in input.chunks(1000) {
            r.push(&[chunk.to_vec()], &mut emit).unwrap();
        }
        r.finish(&mut emit).unwrap();
        out
    }

    #[test]
    fn keeps_duration_and_timing() {
        // A click at 0.5 s must stay at 0.5 s after 8 kHz → 16 kHz.
        let mut input = vec![0.0f32; 8000];
        input[4000] = 1.0;
        let out = resample_all(&input, 8000, 16_000);
        assert_eq!(out.len(), 16_000);
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        assert!((peak as i64 - 8000).abs() <= 2, "peak at {peak}");
    }

    #[test]
    fn odd_rates_round_to_the_expected_length() {
        let input = vec![0.1f32; 44_100 * 2 + 17];
        let out = resample_all(&input, 44_100, 16_000);
        assert_eq!(
            out.len(),
            ((44_100 * 2 + 17) as f64 * 16_000.0 / 44_100.0).round() as usize
        );
    }
}
