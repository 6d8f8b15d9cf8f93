//! The few neural-network operations the two models need, on plain `f32` slices.
//!
//! candle only reads the weight files: its CPU convolutions are several times slower than
//! im2col + one `gemm` call, and running the networks by hand lets the caller parallelise over
//! windows instead of inside small matrix products.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::bf16::{Packed, SourceRow};
use crate::error::ModelError;

/// A named tensor from a weight file, row-major.
pub struct Param {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Every tensor of one weight file, taken out by name while the model is assembled.
pub struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Param>,
    /// How the convolutions loaded from these weights compute their products.
    products: Products,
}

/// How a network's matrix products are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Products {
    F32,
    /// Operands rounded to bfloat16, sums in f32, where the CPU has AVX-512 BF16 (twice the
    /// products per instruction, see `bf16.rs`); f32 elsewhere or with `TRD_DIARIZER_BF16=0`.
    Bfloat16,
}

impl Weights {
    pub fn from_safetensors(path: &Path) -> Result<Self, ModelError> {
        let tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .map_err(|e| model_error(path, e))?;
        Self::from_tensors(path, tensors)
    }

    /// Reads a PyTorch `state_dict` saved with `torch.save` (a zip of pickled storages).
    pub fn from_torch(path: &Path) -> Result<Self, ModelError> {
        let tensors = candle_core::pickle::read_all(path).map_err(|e| model_error(path, e))?;
        Self::from_tensors(path, tensors)
    }

    fn from_tensors(
        path: &Path,
        tensors: impl IntoIterator<Item = (String, candle_core::Tensor)>,
    ) -> Result<Self, ModelError> {
        let tensors = tensors
            .into_iter()
            .map(|(name, tensor)| {
                let shape = tensor.dims().to_vec();
                let data = tensor
                    .to_dtype(candle_core::DType::F32)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|e| model_error(path, e))?;
                Ok((name, Param { shape, data }))
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(Self {
            path: path.to_owned(),
            tensors,
            products: Products::F32,
        })
    }

    /// These weights' convolutions compute their products as `products` says.
    pub fn with_products(self, products: Products) -> Self {
        Self { products, ..self }
    }

    /// The tensor `name`, which must have exactly `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let param = self
            .tensors
            .remove(name)
            .ok_or_else(|| ModelError::Malformed {
                path: self.path.clone(),
                reason: format!("tensor {name} is missing"),
            })?;
        if param.shape != shape {
            return Err(ModelError::Malformed {
                path: self.path.clone(),
                reason: format!(
                    "tensor {name} has shape {:?}, expected {shape:?}",
                    param.shape
                ),
            });
        }
        Ok(param.data)
    }

    /// An inference-mode batch norm, reduced to one scale and shift per channel.
    pub fn batch_norm(
        &mut self,
        prefix: &str,
        channels: usize,
        affine: bool,
    ) -> Result<Affine, ModelError> {
        const EPS: f32 = 1e-5;
        let mean = self.take(&format!("{prefix}.running_mean"), &[channels])?;
        let var = self.take(&format!("{prefix}.running_var"), &[channels])?;
        let (weight, bias) = if affine {
            (
                self.take(&format!("{prefix}.weight"), &[channels])?,
                self.take(&format!("{prefix}.bias"), &[channels])?,
            )
        } else {
            (vec![1.0; channels], vec![0.0; channels])
        };
        let scale: Vec<f32> = weight
            .iter()
            .zip(&var)
            .map(|(w, v)| w / (v + EPS).sqrt())
            .collect();
        let shift = bias
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        Ok(Affine { scale, shift })
    }
}

fn model_error(path: &Path, source: candle_core::Error) -> ModelError {
    ModelError::Unreadable {
        path: path.to_owned(),
        source,
    }
}

/// Per-channel `x * scale + shift` on a channels × time matrix.
pub struct Affine {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
}

impl Affine {
    pub fn apply(&self, x: &mut [f32], relu: bool) {
        let len = x.len() / self.scale.len();
        for ((row, &scale), &shift) in x.chunks_exact_mut(len).zip(&self.scale).zip(&self.shift) {
            for v in row {
                *v = *v * scale + shift;
                if relu {
                    *v = v.max(0.0);
                }
            }
        }
    }

    /// [`Self::apply`] of `x` written into `out` (resized to fit): one pass over the data
    /// instead of a copy and a pass.
    pub fn apply_into(&self, x: &[f32], out: &mut Vec<f32>, relu: bool) {
        let len = x.len() / self.scale.len();
        out.clear();
        out.reserve(x.len());
        for ((row, &scale), &shift) in x.chunks_exact(len).zip(&self.scale).zip(&self.shift) {
            if relu {
                out.extend(row.iter().map(|v| (v * scale + shift).max(0.0)));
            } else {
                out.extend(row.iter().map(|v| v * scale + shift));
            }
        }
    }

    /// Folds this normalisation into the convolution before it, which then needs no separate pass.
    pub fn fold_into(&self, conv: &mut Conv) {
        let per_out = conv.weight.len() / self.scale.len();
        for (row, &scale) in conv.weight.chunks_exact_mut(per_out).zip(&self.scale) {
            row.iter_mut().for_each(|w| *w *= scale);
        }
        conv.bf16_weights = OnceLock::new(); // packed from the old weights, if ever
        let bias = conv.bias.get_or_insert_with(|| vec![0.0; self.scale.len()]);
        for ((b, &scale), &shift) in bias.iter_mut().zip(&self.scale).zip(&self.shift) {
            *b = *b * scale + shift;
        }
    }
}

/// `out (m × n) = a (m × k) · b (k × n)`, all row-major and contiguous, on the calling thread.
pub fn matmul(out: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
    matmul_strided(out, n, a, b, m, k, n);
}

/// [`matmul`] into `m` rows of `n` values that lie `out_stride` apart in `out`: a block of
/// columns of a wider matrix.
pub fn matmul_strided(
    out: &mut [f32],
    out_stride: usize,
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(out_stride >= n && out.len() >= (m - 1) * out_stride + n);
    assert!(a.len() >= m * k && b.len() >= k * n);
    // SAFETY: the assertions above keep every access within the three slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            out_stride as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// How many floats one tile of a 2-d convolution's unrolled input holds: 1 MB, about one output
/// row of an 8-second pass. `cargo bench -p trd-diarizer --bench diarize` was fastest from here
/// to 4 MB, and 10 % slower at 256 kB, where the matrix products get too small.
const TILE_FLOATS: usize = 256 * 1024;

/// A 1-d or 2-d convolution with square kernels, stored as out × (in · kernel area).
pub struct Conv {
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub out_channels: usize,
    pub in_channels: usize,
    pub kernel: usize,
    pub products: Products,
    /// The weights in bfloat16, packed on first use when the products are bfloat16 and the CPU
    /// has the instructions; `None` otherwise.
    bf16_weights: OnceLock<Option<Packed>>,
}

impl Conv {
    pub fn load1d(
        weights: &mut Weights,
        prefix: &str,
        out_channels: usize,
        in_channels: usize,
        kernel: usize,
        bias: bool,
    ) -> Result<Self, ModelError> {
        Self::load(weights, prefix, &[out_channels, in_channels, kernel], bias)
    }

    pub fn load2d(
        weights: &mut Weights,
        prefix: &str,
        out_channels: usize,
        in_channels: usize,
        kernel: usize,
    ) -> Result<Self, ModelError> {
        Self::load(
            weights,
            prefix,
            &[out_channels, in_channels, kernel, kernel],
            false,
        )
    }

    fn load(
        weights: &mut Weights,
        prefix: &str,
        shape: &[usize],
        bias: bool,
    ) -> Result<Self, ModelError> {
        let weight = weights.take(&format!("{prefix}.weight"), shape)?;
        let bias = if bias {
            Some(weights.take(&format!("{prefix}.bias"), &shape[..1])?)
        } else {
            None
        };
        Ok(Self {
            bias,
            products: weights.products,
            ..Self::new(weight, shape[0], shape[1], shape[2])
        })
    }

    /// A convolution without bias, with f32 products, of `weight` (out × in · kernel area).
    pub fn new(weight: Vec<f32>, out_channels: usize, in_channels: usize, kernel: usize) -> Self {
        Self {
            weight,
            bias: None,
            out_channels,
            in_channels,
            kernel,
            products: Products::F32,
            bf16_weights: OnceLock::new(),
        }
    }

    /// The packed bfloat16 weights, when this convolution's products are bfloat16 here.
    fn bf16_weights(&self) -> Option<&Packed> {
        self.bf16_weights
            .get_or_init(|| {
                (self.products == Products::Bfloat16)
                    .then(|| Packed::new(&self.weight, self.out_channels))
                    .flatten()
            })
            .as_ref()
    }

    /// `out (out_channels × n, rows out_stride apart) = weight · b (weight's columns × n)`,
    /// computed as [`Self::products`] says.
    fn product(&self, out: &mut [f32], out_stride: usize, b: &[f32], n: usize) {
        let (m, k) = (self.out_channels, self.weight.len() / self.out_channels);
        if m == 0 || n == 0 {
            return;
        }
        if let Some(weights) = self.bf16_weights() {
            let rows: Vec<SourceRow> = b.chunks_exact(n).map(|r| SourceRow::new(r, 0)).collect();
            weights.multiply(out, out_stride, &rows[..k], n);
            return;
        }
        matmul_strided(out, out_stride, &self.weight, b, m, k, n);
    }

    /// Input in × len → output out × len', with `len' = (len + 2·pad − dilation·(kernel−1) − 1) / stride + 1`.
    pub fn forward1d(
        &self,
        x: &[f32],
        len: usize,
        stride: usize,
        pad: usize,
        dilation: usize,
    ) -> (Vec<f32>, usize) {
        let span = dilation * (self.kernel - 1) + 1;
        let out_len = (len + 2 * pad - span) / stride + 1;
        let mut out = vec![0.0; self.out_channels * out_len];
        if self.kernel == 1 && stride == 1 && pad == 0 {
            self.product(&mut out, len, x, len);
        } else if let Some(weights) = self.bf16_weights().filter(|_| stride == 1) {
            // Row (c, k) of the unrolled input is channel c shifted by the tap's offset.
            let rows: Vec<SourceRow> = x
                .chunks_exact(len)
                .take(self.in_channels)
                .flat_map(|channel| {
                    (0..self.kernel).map(move |k| {
                        SourceRow::new(channel, (k * dilation) as isize - pad as isize)
                    })
                })
                .collect();
            weights.multiply(&mut out, out_len, &rows, out_len);
        } else {
            let rows = self.in_channels * self.kernel;
            let mut cols = vec![0.0; rows * out_len];
            for c in 0..self.in_channels {
                let input = &x[c * len..(c + 1) * len];
                for k in 0..self.kernel {
                    let row = &mut cols[(c * self.kernel + k) * out_len..][..out_len];
                    for (t, v) in row.iter_mut().enumerate() {
                        let pos = (t * stride + k * dilation) as isize - pad as isize;
                        if pos >= 0 && (pos as usize) < len {
                            *v = input[pos as usize];
                        }
                    }
                }
            }
            self.product(&mut out, out_len, &cols, out_len);
        }
        self.add_bias(&mut out);
        (out, out_len)
    }

    /// Input in × height × width → out × height' × width, with padding 1 and a stride over the
    /// height only (CAM++ strides along frequency, never along time).
    ///
    /// The unrolled input (im2col) is built a tile at a time: for a whole 8-second pass it would
    /// be 288 rows × 40 bands × 800 frames, 37 MB, and writing, zeroing and reading that through
    /// main memory cost a fifth of the diarizer's time. A tile of [`TILE_FLOATS`] stays in the
    /// core's caches between being written and being multiplied. With bfloat16 products it is
    /// not written at all: the packing reads it from the input ([`Self::forward2d_by_rows`]).
    pub fn forward2d(
        &self,
        x: &[f32],
        height: usize,
        width: usize,
        stride: usize,
    ) -> (Vec<f32>, usize) {
        if let Some(weights) = self.bf16_weights() {
            return self.forward2d_by_rows(weights, x, height, width, stride);
        }
        let rows = self.in_channels * self.kernel * self.kernel;
        self.forward2d_in_tiles(x, height, width, stride, TILE_FLOATS / rows)
    }

    /// Rows of a 2-d output: the input's `height`, padded by half the kernel each side,
    /// strided.
    fn output_height(&self, height: usize, stride: usize) -> usize {
        (height + 2 * (self.kernel / 2) - self.kernel) / stride + 1
    }

    /// [`Self::forward2d`] with bfloat16 products: one product per output row, whose unrolled
    /// input the packing reads straight from the input's rows ([`SourceRow`]).
    fn forward2d_by_rows(
        &self,
        weights: &Packed,
        x: &[f32],
        height: usize,
        width: usize,
        stride: usize,
    ) -> (Vec<f32>, usize) {
        let pad = self.kernel / 2;
        let out_height = self.output_height(height, stride);
        let area = out_height * width;
        let mut out = vec![0.0; self.out_channels * area];
        let mut rows = Vec::with_capacity(self.in_channels * self.kernel * self.kernel);
        for oy in 0..out_height {
            rows.clear();
            // Rows in the weights' order: input channel, then kernel row, then kernel column.
            for plane in x.chunks_exact(height * width).take(self.in_channels) {
                for ky in 0..self.kernel {
                    let input_row = (oy * stride + ky).checked_sub(pad).filter(|&y| y < height);
                    for kx in 0..self.kernel {
                        rows.push(match input_row {
                            Some(y) => SourceRow::new(
                                &plane[y * width..][..width],
                                kx as isize - pad as isize,
                            ),
                            None => SourceRow::ZERO,
                        });
                    }
                }
            }
            weights.multiply(&mut out[oy * width..], area, &rows, width);
        }
        self.add_bias(&mut out);
        (out, out_height)
    }

    /// [`Self::forward2d`], unrolling the input `tile` output positions at a time (positions
    /// counted row by row over the output's height × width).
    fn forward2d_in_tiles(
        &self,
        x: &[f32],
        height: usize,
        width: usize,
        stride: usize,
        tile: usize,
    ) -> (Vec<f32>, usize) {
        let out_height = self.output_height(height, stride);
        let area = out_height * width;
        let rows = self.in_channels * self.kernel * self.kernel;
        let tile = tile.clamp(1, area.max(1));
        let mut cols = vec![0.0; rows * tile];
        let mut out = vec![0.0; self.out_channels * area];
        for begin in (0..area).step_by(tile) {
            let n = tile.min(area - begin);
            let cols = &mut cols[..rows * n];
            self.unroll2d(x, height, width, stride, begin, cols);
            self.product(&mut out[begin..], area, cols, n);
        }
        self.add_bias(&mut out);
        (out, out_height)
    }

    /// The input under the kernel for the output positions `begin..begin + n` (n = the length
    /// of `cols`' rows), as in · kernel² rows × n, zeros where the kernel overhangs the input.
    fn unroll2d(
        &self,
        x: &[f32],
        height: usize,
        width: usize,
        stride: usize,
        begin: usize,
        cols: &mut [f32],
    ) {
        let pad = self.kernel / 2;
        let n = cols.len() / (self.in_channels * self.kernel * self.kernel);
        let mut rows = cols.chunks_exact_mut(n);
        for plane in x.chunks_exact(height * width).take(self.in_channels) {
            for ky in 0..self.kernel {
                for kx in 0..self.kernel {
                    let row = rows.next().expect("cols holds in · kernel² rows");
                    // One stretch of `row` per output row the tile crosses.
                    let mut filled = 0;
                    while filled < n {
                        let (oy, start) = ((begin + filled) / width, (begin + filled) % width);
                        let len = (width - start).min(n - filled);
                        let dst = &mut row[filled..filled + len];
                        filled += len;
                        let Some(iy) = (oy * stride + ky).checked_sub(pad).filter(|&y| y < height)
                        else {
                            dst.fill(0.0);
                            continue;
                        };
                        let src = &plane[iy * width..][..width];
                        // Output column t reads input column t + kx − pad; outside 0..width it
                        // is the zero padding.
                        let first = start + kx; // input column of dst[0], plus pad
                        let lo = pad.saturating_sub(first).min(len);
                        let hi = (width + pad).saturating_sub(first).clamp(lo, len);
                        dst[..lo].fill(0.0);
                        dst[lo..hi].copy_from_slice(&src[first + lo - pad..first + hi - pad]);
                        dst[hi..].fill(0.0);
                    }
                }
            }
        }
    }

    fn add_bias(&self, out: &mut [f32]) {
        if let Some(bias) = &self.bias {
            let len = out.len() / bias.len();
            for (row, b) in out.chunks_exact_mut(len).zip(bias) {
                row.iter_mut().for_each(|v| *v += b);
            }
        }
    }
}

pub fn relu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(weight: Vec<f32>, out_channels: usize, in_channels: usize, kernel: usize) -> Conv {
        Conv::new(weight, out_channels, in_channels, kernel)
    }

    #[test]
    fn conv1d_matches_hand_computed_strided_dilated_output() {
        // One input channel 1..=6, kernel [1, 0, -1] with dilation 2, stride 2, padding 2:
        // out[t] = x[2t - 2] - x[2t + 2].
        let c = conv(vec![1.0, 0.0, -1.0], 1, 1, 3);
        let (out, len) = c.forward1d(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 6, 2, 2, 2);
        assert_eq!(len, 3);
        assert_eq!(out, vec![-3.0, 1.0 - 5.0, 3.0]);
    }

    #[test]
    fn conv2d_strides_height_and_pads_both_axes() {
        // A kernel that picks the pixel up and to the left of the centre.
        let mut kernel = vec![0.0; 9];
        kernel[0] = 1.0;
        let c = conv(kernel, 1, 1, 3);
        let x: Vec<f32> = (1..=12).map(|v| v as f32).collect(); // 4 rows × 3 columns
        let (out, height) = c.forward2d(&x, 4, 3, 2);
        assert_eq!(height, 2);
        // Output row 0 reads input row −1 (padding); row 1 reads input row 1, shifted right.
        assert_eq!(out, vec![0.0, 0.0, 0.0, 0.0, 4.0, 5.0]);
    }

    /// The tiled unrolling gives what the convolution's definition gives, whatever the tile.
    #[test]
    fn conv2d_in_tiles_equals_the_direct_sum() {
        let (in_channels, out_channels, kernel, height, width) = (2, 3, 3, 5, 7);
        let weight: Vec<f32> = (0..out_channels * in_channels * kernel * kernel)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let x: Vec<f32> = (0..in_channels * height * width)
            .map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0) // quarters: exact in bfloat16 too
            .collect();
        for (products, stride) in [Products::F32, Products::Bfloat16]
            .into_iter()
            .flat_map(|p| [(p, 1), (p, 2)])
        {
            let c = Conv {
                products,
                ..conv(weight.clone(), out_channels, in_channels, kernel)
            };
            let out_height = (height + 2 - kernel) / stride + 1;
            let mut expected = vec![0.0f32; out_channels * out_height * width];
            for o in 0..out_channels {
                for oy in 0..out_height {
                    for t in 0..width {
                        let mut sum = 0.0;
                        for i in 0..in_channels {
                            for ky in 0..kernel {
                                for kx in 0..kernel {
                                    let (iy, ix) = (oy * stride + ky, t + kx);
                                    if iy < 1 || iy > height || ix < 1 || ix > width {
                                        continue;
                                    }
                                    let w =
                                        weight[((o * in_channels + i) * kernel + ky) * kernel + kx];
                                    sum += w * x[(i * height + iy - 1) * width + ix - 1];
                                }
                            }
                        }
                        expected[(o * out_height + oy) * width + t] = sum;
                    }
                }
            }
            for tile in [1, 2, 3, width - 1, width, 2 * width + 3, 1000] {
                let (out, h) = c.forward2d_in_tiles(&x, height, width, stride, tile);
                assert_eq!(h, out_height);
                for (a, b) in out.iter().zip(&expected) {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "{products:?}, stride {stride}, tile {tile}: {a} vs {b}"
                    );
                }
            }
        }
    }

    fn values(count: usize, seed: usize) -> Vec<f32> {
        (0..count)
            .map(|i| (((i * 7919 + seed * 104_729) % 1999) as f32 - 999.0) / 300.0)
            .collect()
    }

    /// With bfloat16 products, the convolutions read their unrolled input straight from the
    /// input's rows; the outputs are bit for bit those of the written-out unrolling, at
    /// widths below, at and across the 16-lane loads, with and without a height stride.
    #[test]
    fn unrolling_on_the_fly_equals_the_written_out_unrolling() {
        if !crate::bf16::available() {
            return; // f32 products unroll as before, and the tests above cover them
        }
        let (in_channels, out_channels, kernel) = (3, 9, 3);
        let c = Conv {
            bias: Some(values(out_channels, 1)),
            products: Products::Bfloat16,
            ..conv(
                values(out_channels * in_channels * kernel * kernel, 2),
                out_channels,
                in_channels,
                kernel,
            )
        };
        for (height, width, stride) in [(1, 1, 1), (4, 5, 2), (9, 16, 1), (8, 17, 2), (5, 70, 1)] {
            let x = values(in_channels * height * width, height * width);
            let (on_the_fly, h1) = c.forward2d(&x, height, width, stride);
            let (written, h2) = c.forward2d_in_tiles(&x, height, width, stride, 1000);
            assert_eq!(h1, h2);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&on_the_fly),
                bits(&written),
                "{height} × {width}, stride {stride}"
            );
        }
        let c = Conv {
            bias: Some(values(out_channels, 3)),
            products: Products::Bfloat16,
            ..conv(
                values(out_channels * in_channels * kernel, 4),
                out_channels,
                in_channels,
                kernel,
            )
        };
        for (len, pad, dilation) in [(1, 1, 1), (7, 0, 1), (17, 2, 2), (40, 1, 1), (33, 3, 3)] {
            let x = values(in_channels * len, len);
            let (on_the_fly, out_len) = c.forward1d(&x, len, 1, pad, dilation);
            let mut cols = vec![0.0; in_channels * kernel * out_len];
            for (row, col) in cols.chunks_exact_mut(out_len).enumerate() {
                let (channel, tap) = (row / kernel, row % kernel);
                for (t, v) in col.iter_mut().enumerate() {
                    let at = (t + tap * dilation).checked_sub(pad).filter(|&i| i < len);
                    *v = at.map_or(0.0, |i| x[channel * len + i]);
                }
            }
            let mut written = vec![0.0; out_channels * out_len];
            c.product(&mut written, out_len, &cols, out_len);
            c.add_bias(&mut written);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&on_the_fly),
                bits(&written),
                "{len} frames, pad {pad}, dilation {dilation}"
            );
        }
    }

    #[test]
    fn folded_batch_norm_equals_applying_it_after() {
        let mut c = conv(vec![1.0, 2.0, 3.0, 4.0], 2, 1, 2);
        let norm = Affine {
            scale: vec![2.0, -1.0],
            shift: vec![0.5, 1.0],
        };
        let x = [1.0, 1.0, 2.0];
        let (mut expected, _) = c.forward1d(&x, 3, 1, 0, 1);
        norm.apply(&mut expected, false);
        norm.fold_into(&mut c);
        assert_eq!(c.forward1d(&x, 3, 1, 0, 1).0, expected);
    }
}
