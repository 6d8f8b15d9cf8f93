//! The few neural-network operations the two models need, on plain `f32` slices.
//!
//! candle only reads the weight files: its CPU convolutions are several times slower than
//! im2col + one `gemm` call, and running the networks by hand lets the caller parallelise over
//! windows instead of inside small matrix products.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
        })
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
        let bias = conv.bias.get_or_insert_with(|| vec![0.0; self.scale.len()]);
        for ((b, &scale), &shift) in bias.iter_mut().zip(&self.scale).zip(&self.shift) {
            *b = *b * scale + shift;
        }
    }
}

/// `out (m × n) = a (m × k) · b (k × n)`, all row-major and contiguous, on the calling thread.
pub fn matmul(out: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
    assert!(out.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    // SAFETY: the assertion above keeps every access within the three slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
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

/// A 1-d or 2-d convolution with square kernels, stored as out × (in · kernel area).
pub struct Conv {
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub out_channels: usize,
    pub in_channels: usize,
    pub kernel: usize,
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
            weight,
            bias,
            out_channels: shape[0],
            in_channels: shape[1],
            kernel: shape[2],
        })
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
            matmul(
                &mut out,
                &self.weight,
                x,
                self.out_channels,
                self.in_channels,
                len,
            );
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
            matmul(
                &mut out,
                &self.weight,
                &cols,
                self.out_channels,
                rows,
                out_len,
            );
        }
        self.add_bias(&mut out);
        (out, out_len)
    }

    /// Input in × height × width → out × height' × width, with padding 1 and a stride over the
    /// height only (CAM++ strides along frequency, never along time).
    pub fn forward2d(
        &self,
        x: &[f32],
        height: usize,
        width: usize,
        stride: usize,
    ) -> (Vec<f32>, usize) {
        let pad = self.kernel / 2;
        let out_height = (height + 2 * pad - self.kernel) / stride + 1;
        let area = out_height * width;
        let rows = self.in_channels * self.kernel * self.kernel;
        let mut cols = vec![0.0; rows * area];
        for c in 0..self.in_channels {
            let plane = &x[c * height * width..(c + 1) * height * width];
            for ky in 0..self.kernel {
                for kx in 0..self.kernel {
                    let row =
                        &mut cols[((c * self.kernel + ky) * self.kernel + kx) * area..][..area];
                    for oy in 0..out_height {
                        let iy = (oy * stride + ky) as isize - pad as isize;
                        if iy < 0 || iy as usize >= height {
                            continue;
                        }
                        let src = &plane[iy as usize * width..][..width];
                        let dst = &mut row[oy * width..][..width];
                        // Shifting by kx − pad along time, leaving the zero padding at the edges.
                        let shift = kx as isize - pad as isize;
                        let (from, to) = (
                            shift.max(0) as usize,
                            (width as isize + shift.min(0)) as usize,
                        );
                        let offset = (-shift).max(0) as usize;
                        dst[offset..offset + (to - from)].copy_from_slice(&src[from..to]);
                    }
                }
            }
        }
        let mut out = vec![0.0; self.out_channels * area];
        matmul(&mut out, &self.weight, &cols, self.out_channels, rows, area);
        self.add_bias(&mut out);
        (out, out_height)
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
        Conv {
            weight,
            bias: None,
            out_channels,
            in_channels,
            kernel,
        }
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
