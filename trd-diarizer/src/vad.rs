//! Silero VAD v6: the probability that each 32 ms chunk of 16 kHz audio is speech.
//!
//! Everything before the LSTM depends only on the chunk's own samples, so that part runs for
//! all chunks of a block as a few large matrix products; only the LSTM steps one chunk at a time.

use std::path::Path;

use rayon::prelude::*;

use crate::error::ModelError;
use crate::nn::{matmul, relu, sigmoid, Conv, Weights};

/// Where provisioning puts the weights, relative to the models directory.
pub const WEIGHTS_FILE: &str = "silero-vad-6.2.3/silero_vad_16k.safetensors";

pub const SAMPLE_RATE: u32 = 16_000;
/// Samples per chunk, i.e. per probability.
pub const CHUNK: usize = 512;
/// The model sees each chunk prefixed with the last samples of the chunk before.
pub const CONTEXT: usize = 64;
const FFT: usize = 256;
const HOP: usize = 128;
const BINS: usize = FFT / 2 + 1;
const HIDDEN: usize = 128;
/// Chunks per independently run block: the LSTM state restarts at each block so that blocks
/// run in parallel; a minute is long enough that the restart's brief warm-up costs nothing.
pub const BLOCK_CHUNKS: usize = 60 * SAMPLE_RATE as usize / CHUNK;
/// Chunks whose front end runs as one product. A live stream is heard in these same groups
/// (a product's rounding depends on its shape), so that its probabilities, and so its speech
/// regions, equal the file's to the bit; 160 ms keeps a stream's wait for a group short.
const GROUP_CHUNKS: usize = 5;
const _: () = assert!(BLOCK_CHUNKS.is_multiple_of(GROUP_CHUNKS));

/// The LSTM's memory between chunks.
struct LstmState {
    h: [f32; HIDDEN],
    c: [f32; HIDDEN],
}

impl Default for LstmState {
    fn default() -> Self {
        Self {
            h: [0.0; HIDDEN],
            c: [0.0; HIDDEN],
        }
    }
}

/// Speech probabilities of audio that arrives piece by piece: they equal, to the bit, those
/// of the whole audio.
#[derive(Default)]
pub struct VadStream {
    /// The last chunk's context, then samples not yet in a group.
    buffer: Vec<i16>,
    /// How many samples at the start of `buffer` are context.
    context: usize,
    /// Chunks already scored.
    chunks: usize,
    state: LstmState,
}

impl VadStream {
    /// A stream taken up at chunk `chunks` (the start of a block), given the samples before it.
    pub fn resume(chunks: usize, context: &[i16]) -> Self {
        let context = &context[context.len().saturating_sub(CONTEXT)..];
        Self {
            buffer: context.to_vec(),
            context: context.len(),
            chunks,
            state: LstmState::default(),
        }
    }

    /// Adds samples; gives the probabilities of every group they complete.
    pub fn push(&mut self, vad: &SileroVad, samples: &[i16]) -> Vec<f32> {
        self.buffer.extend_from_slice(samples);
        let mut out = Vec::new();
        while self.buffer.len() - self.context >= GROUP_CHUNKS * CHUNK {
            self.score(vad, GROUP_CHUNKS, &mut out);
        }
        out
    }

    /// The probabilities of the last samples, the final chunk padded with silence; the
    /// stream is then empty.
    pub fn finish(&mut self, vad: &SileroVad) -> Vec<f32> {
        let mut out = Vec::new();
        let chunks = (self.buffer.len() - self.context).div_ceil(CHUNK);
        if chunks > 0 {
            self.score(vad, chunks, &mut out);
        }
        out
    }

    fn score(&mut self, vad: &SileroVad, count: usize, out: &mut Vec<f32>) {
        if self.chunks.is_multiple_of(BLOCK_CHUNKS) {
            self.state = LstmState::default();
        }
        vad.run_group(&self.buffer, self.context, count, &mut self.state, out);
        self.chunks += count;
        let used = (self.context + count * CHUNK).min(self.buffer.len());
        let keep_from = used.saturating_sub(CONTEXT);
        self.buffer.drain(..keep_from);
        self.context = used - keep_from;
    }
}

pub struct SileroVad {
    stft: Vec<f32>,
    convs: [Conv; 4],
    /// The LSTM's input weights transposed (input × gates), to project all chunks at once.
    input_weights: Vec<f32>,
    weight_hh: Vec<f32>,
    bias: Vec<f32>,
    out_weight: Vec<f32>,
    out_bias: f32,
}

impl SileroVad {
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let mut w = Weights::from_safetensors(path)?;
        let stft = w.take("stft_conv.weight", &[2 * BINS, 1, FFT])?;
        let convs = [
            Conv::load1d(&mut w, "conv1", 128, BINS, 3, true)?,
            Conv::load1d(&mut w, "conv2", 64, 128, 3, true)?,
            Conv::load1d(&mut w, "conv3", 64, 64, 3, true)?,
            Conv::load1d(&mut w, "conv4", HIDDEN, 64, 3, true)?,
        ];
        let weight_ih = w.take("lstm_cell.weight_ih", &[4 * HIDDEN, HIDDEN])?;
        let mut input_weights = vec![0.0; 4 * HIDDEN * HIDDEN];
        for (r, row) in weight_ih.chunks_exact(HIDDEN).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                input_weights[c * 4 * HIDDEN + r] = v;
            }
        }
        let weight_hh = w.take("lstm_cell.weight_hh", &[4 * HIDDEN, HIDDEN])?;
        let bias_ih = w.take("lstm_cell.bias_ih", &[4 * HIDDEN])?;
        let bias_hh = w.take("lstm_cell.bias_hh", &[4 * HIDDEN])?;
        let bias = bias_ih.iter().zip(&bias_hh).map(|(a, b)| a + b).collect();
        let out_weight = w.take("final_conv.weight", &[1, HIDDEN, 1])?;
        let out_bias = w.take("final_conv.bias", &[1])?[0];
        Ok(Self {
            stft,
            convs,
            input_weights,
            weight_hh,
            bias,
            out_weight,
            out_bias,
        })
    }

    /// One speech probability per started chunk of [`CHUNK`] samples.
    pub fn speech_probabilities(&self, samples: &[i16]) -> Vec<f32> {
        let chunks = samples.len().div_ceil(CHUNK);
        let blocks: Vec<usize> = (0..chunks).step_by(BLOCK_CHUNKS).collect();
        blocks
            .par_iter()
            .flat_map_iter(|&first| {
                let end = (first + BLOCK_CHUNKS).min(chunks);
                let mut state = LstmState::default();
                let mut probabilities = Vec::with_capacity(end - first);
                for group in (first..end).step_by(GROUP_CHUNKS) {
                    let count = GROUP_CHUNKS.min(end - group);
                    self.run_group(
                        samples,
                        group * CHUNK,
                        count,
                        &mut state,
                        &mut probabilities,
                    );
                }
                probabilities
            })
            .collect()
    }

    /// Probabilities of `count` chunks, the first starting at `samples[first_sample]` (the
    /// samples before it are its context; missing ones count as silence), appended to `out`.
    fn run_group(
        &self,
        samples: &[i16],
        first_sample: usize,
        count: usize,
        state: &mut LstmState,
        out: &mut Vec<f32>,
    ) {
        let features = self.encode(samples, first_sample, count);
        // The input projection of every chunk at once; the recurrence adds the hidden part.
        let mut gates_in = vec![0.0; count * 4 * HIDDEN];
        matmul(
            &mut gates_in,
            &features,
            &self.input_weights,
            count,
            HIDDEN,
            4 * HIDDEN,
        );

        let LstmState { h, c } = state;
        let mut gates = [0.0f32; 4 * HIDDEN];
        for step in gates_in.chunks_exact(4 * HIDDEN) {
            for (g, ((row, input), bias)) in gates.iter_mut().zip(
                self.weight_hh
                    .chunks_exact(HIDDEN)
                    .zip(step)
                    .zip(&self.bias),
            ) {
                *g = input + bias + dot(row, h);
            }
            // PyTorch's gate order: input, forget, cell, output.
            for j in 0..HIDDEN {
                let i = sigmoid(gates[j]);
                let f = sigmoid(gates[HIDDEN + j]);
                let g = gates[2 * HIDDEN + j].tanh();
                let o = sigmoid(gates[3 * HIDDEN + j]);
                c[j] = f * c[j] + i * g;
                h[j] = o * c[j].tanh();
            }
            let logit: f32 = self
                .out_weight
                .iter()
                .zip(h.iter())
                .map(|(w, v)| w * v.max(0.0))
                .sum();
            out.push(sigmoid(logit + self.out_bias));
        }
    }

    /// The convolutional front end for `count` chunks from `samples[first_sample]`: one
    /// HIDDEN-wide row per chunk.
    fn encode(&self, samples: &[i16], first_sample: usize, count: usize) -> Vec<f32> {
        let padded = CONTEXT + CHUNK + CONTEXT;
        let frames = (padded - FFT) / HOP + 1;
        // Short-time spectra of every chunk as one product: windows are columns.
        let mut windows = vec![0.0; FFT * count * frames];
        let mut input = [0.0f32; CONTEXT + CHUNK + CONTEXT];
        for chunk in 0..count {
            let start = (first_sample + chunk * CHUNK) as isize - CONTEXT as isize;
            for (i, v) in input[..CONTEXT + CHUNK].iter_mut().enumerate() {
                let pos = start + i as isize;
                *v = if pos >= 0 {
                    samples
                        .get(pos as usize)
                        .map_or(0.0, |&s| s as f32 / 32768.0)
                } else {
                    0.0
                };
            }
            // Reflection padding on the right, as the model was exported with.
            for i in 0..CONTEXT {
                input[CONTEXT + CHUNK + i] = input[CONTEXT + CHUNK - 2 - i];
            }
            for f in 0..frames {
                let column = chunk * frames + f;
                for k in 0..FFT {
                    windows[k * count * frames + column] = input[f * HOP + k];
                }
            }
        }
        let columns = count * frames;
        let mut spectrum = vec![0.0; 2 * BINS * columns];
        matmul(&mut spectrum, &self.stft, &windows, 2 * BINS, FFT, columns);

        let mut features = vec![0.0; count * HIDDEN];
        let mut magnitude = vec![0.0; BINS * frames];
        for chunk in 0..count {
            for b in 0..BINS {
                for f in 0..frames {
                    let column = chunk * frames + f;
                    let re = spectrum[b * columns + column];
                    let im = spectrum[(b + BINS) * columns + column];
                    magnitude[b * frames + f] = (re * re + im * im).sqrt();
                }
            }
            let mut x = magnitude.clone();
            let mut len = frames;
            for (conv, stride) in self.convs.iter().zip([1, 2, 2, 1]) {
                let (mut y, out_len) = conv.forward1d(&x, len, stride, 1, 1);
                relu(&mut y);
                (x, len) = (y, out_len);
            }
            debug_assert_eq!(len, 1);
            features[chunk * HIDDEN..(chunk + 1) * HIDDEN].copy_from_slice(&x);
        }
        features
    }
}

/// Seconds of audio per probability.
pub const FRAME_SECONDS: f64 = CHUNK as f64 / SAMPLE_RATE as f64;
/// Speech starts where the probability reaches ONSET and lasts until it drops below OFFSET:
/// quiet speech hovers well under the model's customary 0.5.
const ONSET: f32 = 0.25;
const OFFSET: f32 = 0.1;
/// Dips shorter than this are the gaps between words, not pauses.
pub const MIN_SILENCE: f64 = 0.1;
/// Shorter blips are clicks and breaths.
pub const MIN_SPEECH: f64 = 0.25;
/// Kept around each region so that word edges, which score low, are not clipped.
pub const PAD: f64 = 0.1;

/// Speech regions `(start, end)` in seconds from per-frame speech probabilities.
pub fn speech_regions(probabilities: &[f32]) -> Vec<(f64, f64)> {
    speech_regions_from(probabilities, 0)
}

/// [`speech_regions`] of probabilities whose first is frame `first_frame` of the audio: times
/// are computed from absolute frame numbers, so that they equal the whole audio's to the bit.
pub fn speech_regions_from(probabilities: &[f32], first_frame: usize) -> Vec<(f64, f64)> {
    let min_silence = (MIN_SILENCE / FRAME_SECONDS).ceil() as usize;
    let mut regions: Vec<(usize, usize)> = Vec::new();
    let mut start: Option<usize> = None;
    let mut quiet_since: Option<usize> = None;
    for (i, &p) in probabilities.iter().enumerate() {
        match start {
            None if p >= ONSET => {
                start = Some(i);
                quiet_since = None;
            }
            None => {}
            Some(s) => {
                if p >= OFFSET {
                    quiet_since = None;
                } else {
                    let since = *quiet_since.get_or_insert(i);
                    if i + 1 - since >= min_silence {
                        regions.push((s, since));
                        start = None;
                    }
                }
            }
        }
    }
    if let Some(s) = start {
        regions.push((s, quiet_since.unwrap_or(probabilities.len())));
    }
    let duration = (first_frame + probabilities.len()) as f64 * FRAME_SECONDS;
    let mut padded: Vec<(f64, f64)> = Vec::new();
    for (s, e) in regions {
        let (s, e) = (
            (first_frame + s) as f64 * FRAME_SECONDS,
            (first_frame + e) as f64 * FRAME_SECONDS,
        );
        if e - s < MIN_SPEECH {
            continue;
        }
        let (s, e) = ((s - PAD).max(0.0), (e + PAD).min(duration));
        match padded.last_mut() {
            Some(last) if s <= last.1 => last.1 = e,
            _ => padded.push((s, e)),
        }
    }
    padded
}

/// A dot product written so that the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let (a_chunks, b_chunks) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for l in 0..16 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(seconds: f64) -> usize {
        (seconds / FRAME_SECONDS).round() as usize
    }

    #[test]
    fn regions_follow_hysteresis_and_ignore_word_gaps_and_blips() {
        let mut p = vec![0.0f32; frames(10.0)];
        // Speech 1–3 s with a 64 ms dip inside, a 96 ms blip at 5 s, speech 6–8 s at 0.2 after a
        // 0.4 onset (stays in: above OFFSET).
        p[frames(1.0)..frames(3.0)].fill(0.9);
        p[frames(2.0)..frames(2.0) + 2].fill(0.05);
        p[frames(5.0)..frames(5.0) + 3].fill(0.9);
        p[frames(6.0)] = 0.4;
        p[frames(6.0) + 1..frames(8.0)].fill(0.2);
        let regions = speech_regions(&p);
        assert_eq!(regions.len(), 2, "{regions:?}");
        let near = |a: f64, b: f64| (a - b).abs() < FRAME_SECONDS + PAD + 1e-9;
        assert!(
            near(regions[0].0, 1.0) && near(regions[0].1, 3.0),
            "{regions:?}"
        );
        assert!(
            near(regions[1].0, 6.0) && near(regions[1].1, 8.0),
            "{regions:?}"
        );
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.01).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}
