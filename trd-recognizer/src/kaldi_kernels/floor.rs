//! `kaldi::MatrixBase<float>::Floor(src, floor)`: `this = max(src, floor)` element by element,
//! which is how Kaldi computes the network's ReLU layers.
//!
//! Kaldi computes a ReLU in place (`this` is `src`). Its compiled loop vectorizes only when the
//! two matrices lie apart, so in place it compares and branches on every value; the branch
//! follows the sign of an activation and mispredicts about half the time: 5 % of recognition.
//! Here 4 values at a time in every case. The values are Kaldi's, bit for bit: `maxps` with
//! the floor first gives `src < floor ? floor : src`, a NaN or a signed zero as Kaldi leaves it.

use std::arch::x86_64::{_mm_loadu_ps, _mm_max_ps, _mm_set1_ps, _mm_storeu_ps};

/// `kaldi::MatrixBase<float>`'s fields, in their order (`matrix/kaldi-matrix.h`).
#[repr(C)]
pub struct KaldiMatrix {
    data: *mut f32,
    cols: i32,
    rows: i32,
    stride: i32,
}

/// The symbol's C++ signature is `void MatrixBase<float>::Floor(const MatrixBase<float>&,
/// float)`: `this`, then the reference, then the float, as a C function of the three.
///
/// # Safety
/// Both point to live Kaldi matrices (as every caller in libvosk passes).
#[export_name = "_ZN5kaldi10MatrixBaseIfE5FloorERKS1_f"]
pub unsafe extern "C" fn floor(this: *mut KaldiMatrix, src: *const KaldiMatrix, floor: f32) {
    let (out, src) = unsafe { (&*this, &*src) };
    if out.rows != src.rows || out.cols != src.cols {
        // Kaldi's own function asserts the same, which ends the process.
        eprintln!("kaldi::MatrixBase<float>::Floor: the matrices' sizes differ");
        std::process::abort();
    }
    let cols = out.cols.max(0) as usize;
    for row in 0..out.rows.max(0) as isize {
        // SAFETY: row < rows, and each matrix's rows lie `stride` floats apart.
        unsafe {
            floor_row(
                out.data.offset(row * out.stride as isize),
                src.data.offset(row * src.stride as isize),
                cols,
                floor,
            )
        }
    }
}

/// # Safety
/// `out` and `src` hold `cols` floats each.
unsafe fn floor_row(out: *mut f32, src: *const f32, cols: usize, floor: f32) {
    let mut col = 0;
    // In place, or at least a vector apart: a vector is read whole before it is written.
    let apart = std::ptr::eq(out, src) || (out as usize).abs_diff(src as usize) >= 16;
    if apart {
        let floors = _mm_set1_ps(floor);
        while col + 4 <= cols {
            unsafe {
                let values = _mm_loadu_ps(src.add(col));
                _mm_storeu_ps(out.add(col), _mm_max_ps(floors, values));
            }
            col += 4;
        }
    }
    for col in col..cols {
        unsafe {
            let value = *src.add(col);
            *out.add(col) = if value < floor { floor } else { value };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type KaldiFloor = unsafe extern "C" fn(*mut KaldiMatrix, *const KaldiMatrix, f32);

    /// libvosk's own function, behind this one.
    fn kaldis() -> KaldiFloor {
        // SAFETY: looking a name up has no precondition; the name is a C string.
        let next = unsafe {
            libc::dlsym(
                libc::RTLD_NEXT,
                c"_ZN5kaldi10MatrixBaseIfE5FloorERKS1_f".as_ptr(),
            )
        };
        assert!(!next.is_null(), "libvosk is linked into the tests");
        // SAFETY: the symbol is Kaldi's function of this signature.
        unsafe { std::mem::transmute::<*mut libc::c_void, KaldiFloor>(next) }
    }

    /// Rows of `cols` values, `stride` apart, with every sign, zero of each sign, NaN and
    /// infinities among them.
    fn values(rows: usize, stride: usize) -> Vec<f32> {
        let special = [
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-30,
            -1e-30,
        ];
        (0..rows * stride)
            .map(|at| match at % 11 {
                0..=6 => special[at % 11 % special.len()],
                _ => (at as f32 * 0.37).sin() * 3.0,
            })
            .collect()
    }

    fn matrix(data: &mut [f32], rows: usize, cols: usize, stride: usize) -> KaldiMatrix {
        KaldiMatrix {
            data: data.as_mut_ptr(),
            cols: cols as i32,
            rows: rows as i32,
            stride: stride as i32,
        }
    }

    #[test]
    fn floors_equal_kaldis_bit_for_bit_in_place_and_apart() {
        for (rows, cols, stride) in [(1, 1, 1), (3, 7, 9), (8, 768, 768), (5, 13, 16), (2, 4, 4)] {
            for floor_value in [0.0, -0.0, 0.5, -1.0] {
                // In place, as Kaldi's ReLU computes.
                let mut ours = values(rows, stride);
                let mut theirs = ours.clone();
                let m = matrix(&mut ours, rows, cols, stride);
                unsafe { floor(&m as *const _ as *mut _, &m, floor_value) };
                let m = matrix(&mut theirs, rows, cols, stride);
                unsafe { kaldis()(&m as *const _ as *mut _, &m, floor_value) };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&ours),
                    bits(&theirs),
                    "in place {rows}x{cols}/{stride}"
                );

                // Apart, into a matrix of another stride.
                let mut src = values(rows, stride);
                let (mut ours, mut theirs) =
                    (vec![7.0; rows * (cols + 3)], vec![7.0; rows * (cols + 3)]);
                let s = matrix(&mut src, rows, cols, stride);
                let o = matrix(&mut ours, rows, cols, cols + 3);
                unsafe { floor(&o as *const _ as *mut _, &s, floor_value) };
                let t = matrix(&mut theirs, rows, cols, cols + 3);
                unsafe { kaldis()(&t as *const _ as *mut _, &s, floor_value) };
                assert_eq!(bits(&ours), bits(&theirs), "apart {rows}x{cols}/{stride}");
            }
        }
    }
}
