//! Matrix products on AVX-512 BF16 (`vdpbf16ps`): the operands are rounded to bfloat16 and
//! multiplied pairwise into f32 sums, two products per lane and instruction where the f32
//! kernels do one. Chosen at run time; CPUs without the instructions keep the f32 products.

use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Rows of `a` per kernel call: 8 rows × 2 registers of 16 columns are 16 accumulators, which
/// leaves registers for the two packed columns of `b` and the broadcast pair of `a`.
const MR: usize = 8;
/// Columns of `b` per packed panel: two registers.
const NR: usize = 32;

/// Whether this CPU has the instructions (asked once). `TRD_DIARIZER_BF16=0` keeps the f32
/// products, to compare the two.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::env::var("TRD_DIARIZER_BF16").map_or(true, |v| v != "0")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bf16")
    })
}

/// Each lane's f32 rounded to the nearest bfloat16 (ties to even), left in its upper half.
#[inline(always)]
unsafe fn rounded(x: __m512i) -> __m512i {
    let lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
    _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7fff)), lsb)
}

/// `count` (≤ 16) lanes.
fn lanes(count: usize) -> __mmask16 {
    ((1u32 << count.min(16)) - 1) as __mmask16
}

/// One row of a product's right operand as the packing reads it: its column `t` is
/// `source[t + shift]` where that lies within `source`, zero elsewhere. A matrix's row is
/// itself, unshifted. A convolution's unrolled input (im2col) is rows of its input shifted by
/// each kernel tap, the padding being what falls outside: read this way, it is never written
/// out, which cost the diarizer a tenth of its time in copies and zeroing.
#[derive(Clone, Copy)]
pub struct SourceRow<'a> {
    source: &'a [f32],
    shift: isize,
}

impl<'a> SourceRow<'a> {
    /// A row of zeros: a kernel tap over the padding above or below the input.
    pub const ZERO: SourceRow<'static> = SourceRow {
        source: &[],
        shift: 0,
    };

    pub fn new(source: &'a [f32], shift: isize) -> Self {
        Self { source, shift }
    }

    /// Columns `column..column + count` (count ≤ 16), zeros where the row has none.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load(&self, column: usize, count: usize) -> __m512i {
        let start = column as isize + self.shift;
        let len = self.source.len() as isize;
        // Lanes lo..hi read the source; the others are zero and read nothing.
        let lo = (-start).clamp(0, 16) as usize;
        let hi = (len - start).clamp(0, count as isize) as usize;
        if hi <= lo {
            return _mm512_setzero_si512();
        }
        let mask = lanes(hi) & !lanes(lo);
        // SAFETY: lanes lo..hi are source[start + lo..start + hi], within the slice; masked
        // lanes are not accessed, so the address before the slice's start is never read.
        unsafe {
            _mm512_maskz_loadu_epi32(
                mask,
                self.source.as_ptr().wrapping_offset(start) as *const i32,
            )
        }
    }
}

/// The left operand of products, `m` rows of `k` values, rounded to bfloat16 once: each row
/// as pairs of neighbouring values, each pair one broadcast operand of the instruction.
pub struct Packed {
    pairs: Vec<u32>,
    m: usize,
    k: usize,
}

impl Packed {
    /// `a`'s `m` rows packed, or `None` on a CPU without the instructions ([`available`]).
    pub fn new(a: &[f32], m: usize) -> Option<Self> {
        if !available() || m == 0 {
            return None;
        }
        let k = a.len() / m;
        // SAFETY: `available` checked the CPU.
        let pairs = unsafe { pack_rows(a, m, k) };
        Some(Self { pairs, m, k })
    }

    /// `out (m × n, rows out_stride apart) = self (m × k) · right (k rows, n columns)`.
    pub fn multiply(&self, out: &mut [f32], out_stride: usize, right: &[SourceRow], n: usize) {
        if n == 0 {
            return;
        }
        assert_eq!(
            right.len(),
            self.k,
            "one source row per column of the left operand"
        );
        assert!(out_stride >= n && out.len() >= (self.m - 1) * out_stride + n);
        // SAFETY: `new` checked the CPU; the assertions keep the outputs within `out`, and
        // source rows read only within their slices.
        unsafe { self.multiply_unchecked(out.as_mut_ptr(), out_stride, right, n) }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn multiply_unchecked(
        &self,
        out: *mut f32,
        out_stride: usize,
        right: &[SourceRow],
        n: usize,
    ) {
        let (m, pairs) = (self.m, self.k.div_ceil(2));
        let mut panel = vec![0u32; pairs * NR];
        let high_half = _mm512_set1_epi32(0xffff_0000_u32 as i32);
        for first in (0..n).step_by(NR) {
            let width = NR.min(n - first);
            // The rows 2p and 2p + 1 interleaved per column, as the instruction reads them.
            for p in 0..pairs {
                for half in 0..2 {
                    let count = width.saturating_sub(half * 16).min(16);
                    let column = first + half * 16;
                    let load = |row: usize| match right.get(row) {
                        Some(source) if count > 0 => source.load(column, count),
                        _ => _mm512_setzero_si512(),
                    };
                    let low = _mm512_srli_epi32(rounded(load(2 * p)), 16);
                    let high = _mm512_and_si512(rounded(load(2 * p + 1)), high_half);
                    _mm512_storeu_si512(
                        panel.as_mut_ptr().add(p * NR + half * 16) as *mut __m512i,
                        _mm512_or_si512(low, high),
                    );
                }
            }
            let masks = [lanes(width), lanes(width.saturating_sub(16))];
            let mut row = 0;
            while row < m {
                let rows = MR.min(m - row);
                let a_rows = self.pairs.as_ptr().add(row * pairs);
                let out_rows = out.add(row * out_stride + first);
                match rows {
                    8 => kernel::<8>(a_rows, pairs, &panel, out_rows, out_stride, masks),
                    7 => kernel::<7>(a_rows, pairs, &panel, out_rows, out_stride, masks),
                    6 => kernel::<6>(a_rows, pairs, &panel, out_rows, out_stride, masks),
                    5 => kernel::<5>(a_rows, pairs, &panel, out_rows, out_stride, masks),
                    4 => kernel::<4>(a_rows, pairs, &panel, out_rows, out_stride, masks),
                    3 => kernel::<3>(a_rows, pairs, &panel, out_rows, out_stride, masks),
                    2 => kernel::<2>(a_rows, pairs, &panel, out_rows, out_stride, masks),
                    _ => kernel::<1>(a_rows, pairs, &panel, out_rows, out_stride, masks),
                }
                row += rows;
            }
        }
    }
}

/// `a`'s rows (m × k) as pairs of neighbouring bfloat16 values. Converting 32 values in
/// order gives exactly those pairs.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pack_rows(a: &[f32], m: usize, k: usize) -> Vec<u32> {
    let pairs = k.div_ceil(2);
    let mut packed_rows = vec![0u32; m * pairs];
    for (row, packed) in a
        .chunks_exact(k)
        .take(m)
        .zip(packed_rows.chunks_exact_mut(pairs))
    {
        for (block, slots) in row.chunks(32).zip(packed.chunks_mut(16)) {
            let low = _mm512_maskz_loadu_ps(lanes(block.len()), block.as_ptr());
            let high = _mm512_maskz_loadu_ps(
                lanes(block.len().saturating_sub(16)),
                block.as_ptr().wrapping_add(16),
            );
            let converted: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
            _mm512_mask_storeu_epi32(
                slots.as_mut_ptr() as *mut i32,
                lanes(slots.len()),
                converted,
            );
        }
    }
    packed_rows
}

/// `R` rows of the product for one panel of 32 columns (fewer where `masks` say so).
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel<const R: usize>(
    a: *const u32,
    pairs: usize,
    panel: &[u32],
    out: *mut f32,
    out_stride: usize,
    masks: [__mmask16; 2],
) {
    let mut sums = [[_mm512_setzero_ps(); 2]; R];
    for p in 0..pairs {
        let columns = panel.as_ptr().add(p * NR);
        let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(columns as *const __m512i));
        let b1: __m512bh =
            std::mem::transmute(_mm512_loadu_si512(columns.add(16) as *const __m512i));
        for (r, sum) in sums.iter_mut().enumerate() {
            let pair: __m512bh =
                std::mem::transmute(_mm512_set1_epi32(*a.add(r * pairs + p) as i32));
            sum[0] = _mm512_dpbf16_ps(sum[0], pair, b0);
            sum[1] = _mm512_dpbf16_ps(sum[1], pair, b1);
        }
    }
    for (r, sum) in sums.iter().enumerate() {
        let row = out.add(r * out_stride);
        _mm512_mask_storeu_ps(row, masks[0], sum[0]);
        _mm512_mask_storeu_ps(row.wrapping_add(16), masks[1], sum[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let stride = n + 3; // a block of a wider matrix: the columns past n stay untouched
        let mut out = vec![-7.0; m * stride];
        let rows: Vec<SourceRow> = b.chunks_exact(n).map(|r| SourceRow::new(r, 0)).collect();
        Packed::new(a, m)
            .expect("checked by the caller")
            .multiply(&mut out, stride, &rows[..k], n);
        for row in out.chunks(stride) {
            assert!(row[n..].iter().all(|&v| v == -7.0), "wrote past the block");
        }
        out.chunks(stride)
            .flat_map(|row| row[..n].to_vec())
            .collect()
    }

    /// Values bfloat16 holds exactly (quarters up to ±2), so every product and sum is exact
    /// and any packing or indexing slip shows as a wrong number.
    #[test]
    fn exact_operands_give_the_exact_product_at_every_awkward_size() {
        if !available() {
            return; // the f32 products serve this CPU, and their tests cover it
        }
        for (m, k, n) in [
            (1, 1, 1),
            (3, 5, 7),
            (8, 2, 16),
            (9, 33, 33),
            (17, 288, 70),
            (5, 31, 100),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 17) as f32 - 8.0) / 4.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0)
                .collect();
            let got = product(&a, &b, m, k, n);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                    assert_eq!(got[i * n + j], want, "{m}×{k}×{n} at ({i}, {j})");
                }
            }
        }
    }

    /// The operands are rounded to the nearest bfloat16, ties to even.
    #[test]
    fn operands_round_to_the_nearest_bfloat16() {
        if !available() {
            return;
        }
        let step = 2f32.powi(-7); // bfloat16's spacing just above 1
        let cases = [
            (1.0 + step / 2.0, 1.0), // a tie goes to the even neighbour
            (1.0 + 3.0 * step / 2.0, 1.0 + 2.0 * step), // and up when that is the even one
            (1.0 + 0.6 * step, 1.0 + step), // otherwise the nearest
            (-3.0 - 0.4 * step * 2.0, -3.0),
        ];
        for (value, rounded) in cases {
            assert_eq!(product(&[value], &[1.0], 1, 1, 1), vec![rounded], "{value}");
            assert_eq!(product(&[1.0], &[value], 1, 1, 1), vec![rounded], "{value}");
        }
    }
}
