//! `cblas_sgemm`: the acoustic network's matrix products, instead of the BLAS inside libvosk.
//!
//! Kaldi computes each layer of a Vosk model's network as one `cblas_sgemm`: a chunk's
//! frames (8 rows once frames are subsampled) times the layer's weight matrix, transposed
//! (768 × 64 or 64 × 768 floats for the small models). The OpenBLAS linked into libvosk
//! first copies ("packs") the whole weight matrix into its own layout, on every call; with
//! 8 rows that copy costs three times the arithmetic, and the products took over a quarter
//! of recognition. The kernels here read the weights where they lie, once per product:
//! 2.3–3 times faster on those shapes.
//!
//! Layouts other than "rows times transposed rows", and CPUs without AVX2 and FMA, go on to
//! libvosk's function. The sums run in another order than OpenBLAS's, so outputs may differ
//! in their last bits: the words were the same on every clip of `ko/zeroth-104` and
//! `ko/zeroth-speakers`, and two minute-long dialogues decoded whole as one utterance each
//! came out one near-tie word apart (which side of such a tie wins already depends on the
//! OpenBLAS kernel a CPU gets).

use std::os::raw::c_int;

/// CBLAS's enumerations (`cblas.h`).
const ROW_MAJOR: c_int = 101;
const COL_MAJOR: c_int = 102;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;
const CONJ_TRANS: c_int = 113;

/// The CBLAS signature, which libvosk calls and exports.
type Sgemm = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    f32,
    *const f32,
    c_int,
    *const f32,
    c_int,
    f32,
    *mut f32,
    c_int,
);

/// `C ← alpha·op(A)·op(B) + beta·C`, CBLAS's contract. See the module's doc.
///
/// # Safety
/// The caller keeps CBLAS's contract: the three matrices lie in memory as the orders,
/// transpositions, sizes and leading dimensions say, and `c` does not overlap `a` or `b`.
#[no_mangle]
pub unsafe extern "C" fn cblas_sgemm(
    order: c_int,
    trans_a: c_int,
    trans_b: c_int,
    m: c_int,
    n: c_int,
    k: c_int,
    alpha: f32,
    a: *const f32,
    lda: c_int,
    b: *const f32,
    ldb: c_int,
    beta: f32,
    c: *mut f32,
    ldc: c_int,
) {
    let transposed = |t: c_int| t == TRANS || t == CONJ_TRANS;
    // Both shapes are "row i of X · row j of Y" with every row contiguous: row-major A times
    // Bᵀ, or its column-major mirror Aᵀ times B.
    let rows_times_rows = match order {
        ROW_MAJOR => trans_a == NO_TRANS && transposed(trans_b),
        COL_MAJOR => transposed(trans_a) && trans_b == NO_TRANS,
        _ => false,
    };
    if !(rows_times_rows && kernels::available() && m > 0 && n > 0 && k >= 0) {
        // SAFETY: the same arguments, under the same contract, to the function this replaces.
        return unsafe {
            libvosk_sgemm()(
                order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
            )
        };
    }
    let (row_step, column_step) = match order {
        ROW_MAJOR => (ldc as isize, 1),
        _ => (1, ldc as isize),
    };
    let product = RowProducts {
        m: m as usize,
        n: n as usize,
        k: k as usize,
        x: a,
        x_stride: lda as usize,
        y: b,
        y_stride: ldb as usize,
        alpha,
        beta,
        c,
        row_step,
        column_step,
    };
    // SAFETY: the caller's CBLAS contract is the product's; `available` checked the CPU.
    unsafe { kernels::compute(&product) }
}

/// Whether this CPU has the kernels' instructions (AVX2 and FMA).
pub fn kernels_available() -> bool {
    kernels::available()
}

/// `C ← alpha·X·Yᵀ + beta·C` where X is m rows and Y is n rows, each k contiguous floats,
/// and output (i, j) lies at `c + i·row_step + j·column_step`.
struct RowProducts {
    m: usize,
    n: usize,
    k: usize,
    x: *const f32,
    x_stride: usize,
    y: *const f32,
    y_stride: usize,
    alpha: f32,
    beta: f32,
    c: *mut f32,
    row_step: isize,
    column_step: isize,
}

impl RowProducts {
    /// Stores the sum of row i of X times row j of Y. CBLAS reads C only when beta is not
    /// zero (C may hold anything, NaN included, otherwise).
    ///
    /// # Safety
    /// i < m and j < n, and the product's C is as its fields say.
    #[inline(always)]
    unsafe fn store(&self, i: usize, j: usize, sum: f32) {
        let at = unsafe {
            self.c
                .offset(i as isize * self.row_step + j as isize * self.column_step)
        };
        unsafe {
            *at = if self.beta == 0.0 {
                self.alpha * sum
            } else {
                self.beta * *at + self.alpha * sum
            };
        }
    }

    /// Row i of X, k floats.
    ///
    /// # Safety
    /// i < m.
    unsafe fn x_row(&self, i: usize) -> *const f32 {
        unsafe { self.x.add(i * self.x_stride) }
    }

    /// Row j of Y, k floats.
    ///
    /// # Safety
    /// j < n.
    unsafe fn y_row(&self, j: usize) -> *const f32 {
        unsafe { self.y.add(j * self.y_stride) }
    }
}

/// libvosk's own `cblas_sgemm`: the next definition after this one in the process (every
/// binary that links this crate links libvosk).
fn libvosk_sgemm() -> Sgemm {
    static NEXT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: looking a name up has no precondition; the name is a C string.
    let next = *NEXT
        .get_or_init(|| unsafe { libc::dlsym(libc::RTLD_NEXT, c"cblas_sgemm".as_ptr()) } as usize);
    assert!(
        next != 0,
        "cblas_sgemm: no BLAS after this one (libvosk is not linked)"
    );
    // SAFETY: the symbol is libvosk's CBLAS function, of this signature.
    unsafe { std::mem::transmute::<usize, Sgemm>(next) }
}

mod kernels {
    //! Two kernels, each the faster where the other is slow: the weights' rows read as
    //! broadcast scalars against 8 rows of X at once (short rows: no sums across lanes), or
    //! 4 rows of X dotted with 2 rows of Y along k (long rows, few outputs).
    //!
    //! Tried and left: AVX-512 registers (4 rows × 4 steps of k per register, one broadcast of
    //! 4 weights per 16 lanes) were slower than these on the network's shapes on AMD Zen 4,
    //! whose 512-bit instructions run as two 256-bit halves; bfloat16 operands, which halve
    //! the diarizer's products there, changed the words of 17 of 97 test pieces of the
    //! dialogues and clips.
    use super::RowProducts;
    use std::arch::x86_64::*;
    use std::cell::RefCell;

    pub fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// # Safety
    /// `available()`, and the product's matrices are as its fields say.
    pub unsafe fn compute(p: &RowProducts) {
        // Measured on 8-row products: dots are the faster when the rows are longer than the
        // outputs are many (64 outputs of 768: 11.6 µs against 13.4), broadcasts otherwise
        // (768 outputs of 64: 14.7 against 16.3 µs).
        unsafe {
            if p.k > p.n {
                dots(p)
            } else {
                broadcasts(p)
            }
        }
    }

    /// Lanes of one vector: rows of X computed together by `broadcasts`.
    const LANES: usize = 8;

    thread_local! {
        /// `broadcasts`' transposed rows of X, kept between calls (k × 8 floats).
        static COLUMNS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }

    /// 8 rows of X transposed (k vectors of 8), times 8 rows of Y a scalar at a time: 8
    /// outputs of each of 8 columns accumulate in 8 vectors, transposed on the way out.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn broadcasts(p: &RowProducts) {
        COLUMNS.with_borrow_mut(|columns| {
            columns.resize(p.k * LANES, 0.0);
            for i0 in (0..p.m).step_by(LANES) {
                let rows = (p.m - i0).min(LANES);
                for (at, lane) in columns.iter_mut().enumerate() {
                    let (q, r) = (at / LANES, at % LANES);
                    *lane = if r < rows {
                        unsafe { *p.x_row(i0 + r).add(q) }
                    } else {
                        0.0
                    };
                }
                for j0 in (0..p.n).step_by(LANES) {
                    let width = (p.n - j0).min(LANES);
                    // Past the last column, read the last one again (and store nothing).
                    let y: [*const f32; LANES] =
                        std::array::from_fn(|q| unsafe { p.y_row(j0 + q.min(width - 1)) });
                    let mut sums = [_mm256_setzero_ps(); LANES];
                    for (q, column) in columns.chunks_exact(LANES).enumerate() {
                        let x = unsafe { _mm256_loadu_ps(column.as_ptr()) };
                        for (sum, y) in sums.iter_mut().zip(&y) {
                            let w = unsafe { _mm256_broadcast_ss(&*y.add(q)) };
                            *sum = _mm256_fmadd_ps(x, w, *sum);
                        }
                    }
                    unsafe { store_tile(p, sums, (i0, rows), (j0, width)) };
                }
            }
        });
    }

    /// Stores `broadcasts`' tile: `sums[c]` holds column j0 + c, row i0 + r in lane r. Eight
    /// outputs go per instruction along C's contiguous direction (the tile transposed when
    /// that is its rows): storing the 64 one by one took about a third of the kernel's time
    /// on the network's 64-float rows. Each output's arithmetic is the scalar store's.
    ///
    /// # Safety
    /// The tile's `rows` × `width` outputs lie within the product's C.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store_tile(
        p: &RowProducts,
        sums: [__m256; LANES],
        (i0, rows): (usize, usize),
        (j0, width): (usize, usize),
    ) {
        // One of C's two steps is 1 (`cblas_sgemm` sets them from the order): the lines are
        // C's rows (the tile transposed) or its columns, `count` contiguous outputs each.
        let (lines, line_count, count, step) = if p.column_step == 1 {
            (transpose8(sums), rows, width, p.row_step)
        } else {
            debug_assert_eq!(p.row_step, 1, "C has no contiguous direction");
            (sums, width, rows, p.column_step)
        };
        let mask = tail_mask(count % LANES);
        let (alpha, beta) = (_mm256_set1_ps(p.alpha), _mm256_set1_ps(p.beta));
        let first = unsafe {
            p.c.offset(i0 as isize * p.row_step + j0 as isize * p.column_step)
        };
        for (line, sums) in lines.iter().enumerate().take(line_count) {
            let at = unsafe { first.offset(line as isize * step) };
            let scaled = _mm256_mul_ps(alpha, *sums);
            // CBLAS reads C only when beta is not zero; the scalar store's arithmetic.
            let value = if p.beta == 0.0 {
                scaled
            } else {
                let before = unsafe { load(at, (count < LANES).then_some(mask)) };
                _mm256_add_ps(_mm256_mul_ps(beta, before), scaled)
            };
            if count < LANES {
                unsafe { _mm256_maskstore_ps(at, mask, value) };
            } else {
                unsafe { _mm256_storeu_ps(at, value) };
            }
        }
    }

    /// The 8 × 8 transpose: lane c of result r is lane r of `v[c]`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn transpose8(v: [__m256; LANES]) -> [__m256; LANES] {
        // Pairs, then quads within each 128-bit half, then the halves.
        let t: [__m256; LANES] = std::array::from_fn(|i| {
            let (a, b) = (v[2 * (i / 2)], v[2 * (i / 2) + 1]);
            if i % 2 == 0 {
                _mm256_unpacklo_ps(a, b)
            } else {
                _mm256_unpackhi_ps(a, b)
            }
        });
        // t[2g] = [a0 b0 a1 b1 | a4 b4 a5 b5], t[2g + 1] = [a2 b2 a3 b3 | a6 b6 a7 b7].
        let u: [__m256; LANES] = std::array::from_fn(|i| {
            let (block, which) = (i / 4, i % 4);
            let (x, y) = (t[4 * block + which / 2], t[4 * block + 2 + which / 2]);
            if which % 2 == 0 {
                _mm256_shuffle_ps::<0x44>(x, y)
            } else {
                _mm256_shuffle_ps::<0xEE>(x, y)
            }
        });
        // u[4·block + w] holds lane w (and w + 4 above) of v[4·block..4·block + 4].
        std::array::from_fn(|r| {
            let (low, high) = (u[r % 4], u[4 + r % 4]);
            if r < 4 {
                _mm256_permute2f128_ps::<0x20>(low, high)
            } else {
                _mm256_permute2f128_ps::<0x31>(low, high)
            }
        })
    }

    /// The lanes a tail of `tail` floats (0–7) loads.
    #[target_feature(enable = "avx2,fma")]
    fn tail_mask(tail: usize) -> __m256i {
        const BITS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        // SAFETY: 8 - tail is 1..=8, so the 8 lanes read lie within BITS.
        unsafe { _mm256_loadu_si256(BITS.as_ptr().add(LANES - tail) as *const __m256i) }
    }

    /// 8 floats at `at`, or with a mask only its lanes (the others zero).
    ///
    /// # Safety
    /// The floats (or masked lanes) at `at` are readable.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(at: *const f32, mask: Option<__m256i>) -> __m256 {
        unsafe {
            match mask {
                None => _mm256_loadu_ps(at),
                Some(mask) => _mm256_maskload_ps(at, mask),
            }
        }
    }

    /// Dot products along k: a block of 4 rows of X by 2 rows of Y at a time (6 loads per 8
    /// multiply-adds), each sum reduced across its lanes at the end.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dots(p: &RowProducts) {
        let whole = p.k / LANES;
        let tail = (!p.k.is_multiple_of(LANES)).then(|| tail_mask(p.k % LANES));
        let mut j = 0;
        while j + 2 <= p.n {
            let y = unsafe { [p.y_row(j), p.y_row(j + 1)] };
            let mut i = 0;
            while i + 4 <= p.m {
                let x = unsafe { [p.x_row(i), p.x_row(i + 1), p.x_row(i + 2), p.x_row(i + 3)] };
                // sums[2r + s]: row i + r of X by row j + s of Y.
                let mut sums = [_mm256_setzero_ps(); 8];
                for step in 0..whole {
                    unsafe { multiply_add_block(&mut sums, &x, &y, step * LANES, None) };
                }
                if tail.is_some() {
                    unsafe { multiply_add_block(&mut sums, &x, &y, whole * LANES, tail) };
                }
                for (at, total) in reduce8(sums).into_iter().enumerate() {
                    unsafe { p.store(i + at / 2, j + at % 2, total) };
                }
                i += 4;
            }
            for i in i..p.m {
                for j in j..j + 2 {
                    unsafe { p.store(i, j, dot(p.x_row(i), p.y_row(j), whole, tail)) };
                }
            }
            j += 2;
        }
        for j in j..p.n {
            for i in 0..p.m {
                unsafe { p.store(i, j, dot(p.x_row(i), p.y_row(j), whole, tail)) };
            }
        }
    }

    /// One step of `dots`' block: 8 floats of 4 rows of X and 2 of Y from `at`.
    ///
    /// # Safety
    /// The rows hold `at` + 8 floats (or the mask's lanes).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn multiply_add_block(
        sums: &mut [__m256; 8],
        x: &[*const f32; 4],
        y: &[*const f32; 2],
        at: usize,
        mask: Option<__m256i>,
    ) {
        let w = unsafe { [load(y[0].add(at), mask), load(y[1].add(at), mask)] };
        for (r, x) in x.iter().enumerate() {
            let v = unsafe { load(x.add(at), mask) };
            sums[2 * r] = _mm256_fmadd_ps(v, w[0], sums[2 * r]);
            sums[2 * r + 1] = _mm256_fmadd_ps(v, w[1], sums[2 * r + 1]);
        }
    }

    /// One dot product of two rows: `whole` vectors, then the masked tail if any.
    ///
    /// # Safety
    /// Both rows hold k floats.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot(x: *const f32, y: *const f32, whole: usize, tail: Option<__m256i>) -> f32 {
        let mut sum = _mm256_setzero_ps();
        for step in 0..whole {
            let at = step * LANES;
            sum = unsafe { _mm256_fmadd_ps(load(x.add(at), None), load(y.add(at), None), sum) };
        }
        if tail.is_some() {
            let at = whole * LANES;
            sum = unsafe { _mm256_fmadd_ps(load(x.add(at), tail), load(y.add(at), tail), sum) };
        }
        let mut lanes = [0f32; LANES];
        // SAFETY: `lanes` holds 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes.iter().sum()
    }

    /// The lane sums of 8 vectors, in their order.
    #[target_feature(enable = "avx2,fma")]
    fn reduce8(v: [__m256; 8]) -> [f32; 8] {
        // hadd(a, b) = [a0+a1, a2+a3, b0+b1, b2+b3, a4+a5, a6+a7, b4+b5, b6+b7]: two rounds
        // leave each vector's low-half sum in the low 128 bits and high-half sum above.
        let h = [
            _mm256_hadd_ps(v[0], v[1]),
            _mm256_hadd_ps(v[2], v[3]),
            _mm256_hadd_ps(v[4], v[5]),
            _mm256_hadd_ps(v[6], v[7]),
        ];
        let (low, high) = (_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
        let sums = _mm256_add_ps(
            _mm256_permute2f128_ps(low, high, 0x20),
            _mm256_permute2f128_ps(low, high, 0x31),
        );
        let mut out = [0f32; 8];
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sums) };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in -1..1, the same for the same seed.
    fn values(count: usize, seed: u32) -> Vec<f32> {
        let mut random = fastrand::Rng::with_seed(seed.into());
        (0..count).map(|_| random.f32() * 2.0 - 1.0).collect()
    }

    /// C from the definition, in f64.
    #[allow(clippy::too_many_arguments)]
    fn by_definition(
        order: c_int,
        (ta, tb): (bool, bool),
        (m, n, k): (usize, usize, usize),
        alpha: f32,
        (a, lda): (&[f32], usize),
        (b, ldb): (&[f32], usize),
        beta: f32,
        (c, ldc): (&mut [f32], usize),
    ) {
        let at = |transposed: bool, ld: usize, row: usize, column: usize| {
            let (row, column) = if transposed {
                (column, row)
            } else {
                (row, column)
            };
            if order == ROW_MAJOR {
                row * ld + column
            } else {
                row + column * ld
            }
        };
        for i in 0..m {
            for j in 0..n {
                let sum: f64 = (0..k)
                    .map(|p| a[at(ta, lda, i, p)] as f64 * b[at(tb, ldb, p, j)] as f64)
                    .sum();
                let out = &mut c[at(false, ldc, i, j)];
                let before = if beta == 0.0 {
                    0.0
                } else {
                    beta as f64 * *out as f64
                };
                *out = (before + alpha as f64 * sum) as f32;
            }
        }
    }

    #[test]
    fn products_equal_their_definition_in_every_layout_shape_and_scaling() {
        let shapes = [
            (1, 1, 1),
            (8, 768, 64),
            (8, 64, 768),
            (3, 5, 7),
            (4, 2, 8),
            (9, 17, 13),
            (25, 40, 280),
            (23, 64, 77),
            (8, 3, 0),
        ];
        let layouts = [
            (ROW_MAJOR, NO_TRANS, TRANS),
            (COL_MAJOR, TRANS, NO_TRANS),
            (ROW_MAJOR, NO_TRANS, CONJ_TRANS),
            // Passed on to libvosk's function.
            (ROW_MAJOR, NO_TRANS, NO_TRANS),
            (COL_MAJOR, NO_TRANS, TRANS),
        ];
        let scalings = [(1.0, 1.0), (1.0, 0.0), (-0.5, 2.0), (0.25, -1.0)];
        for (seed, &(m, n, k)) in shapes.iter().enumerate() {
            for &(order, trans_a, trans_b) in &layouts {
                for &(alpha, beta) in &scalings {
                    let (ta, tb) = (trans_a != NO_TRANS, trans_b != NO_TRANS);
                    // Leading dimensions wider than the matrices, as Kaldi's strided views are.
                    let (a_rows, a_cols) = if ta { (k, m) } else { (m, k) };
                    let (b_rows, b_cols) = if tb { (n, k) } else { (k, n) };
                    let major = |rows: usize, cols: usize| {
                        if order == ROW_MAJOR {
                            (rows, cols)
                        } else {
                            (cols, rows)
                        }
                    };
                    let (a_lines, a_len) = major(a_rows, a_cols);
                    let (b_lines, b_len) = major(b_rows, b_cols);
                    let (c_lines, c_len) = major(m, n);
                    let (lda, ldb, ldc) = (a_len.max(1) + 3, b_len.max(1) + 1, c_len + 2);
                    let a = values(a_lines * lda, seed as u32);
                    let b = values(b_lines * ldb, seed as u32 + 100);
                    let mut c = values(c_lines * ldc, seed as u32 + 200);
                    if beta == 0.0 {
                        // CBLAS must not read C then: NaN would show in every output.
                        c.iter_mut().for_each(|v| *v = f32::NAN);
                    }
                    let mut expected = c.clone();
                    by_definition(
                        order,
                        (ta, tb),
                        (m, n, k),
                        alpha,
                        (&a, lda),
                        (&b, ldb),
                        beta,
                        (&mut expected, ldc),
                    );
                    unsafe {
                        cblas_sgemm(
                            order,
                            trans_a,
                            trans_b,
                            m as c_int,
                            n as c_int,
                            k as c_int,
                            alpha,
                            a.as_ptr(),
                            lda as c_int,
                            b.as_ptr(),
                            ldb as c_int,
                            beta,
                            c.as_mut_ptr(),
                            ldc as c_int,
                        )
                    };
                    for (at, (got, want)) in c.iter().zip(&expected).enumerate() {
                        let close = (got - want).abs() <= 1e-4 * (1.0 + want.abs())
                            || (got.is_nan() && want.is_nan());
                        assert!(
                            close,
                            "{m}x{n}x{k} order {order} trans {trans_a}/{trans_b} \
                             alpha {alpha} beta {beta}: C[{at}] = {got}, expected {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_kernels_run_on_this_machine() {
        // Without AVX2 and FMA every product is passed on, and the test above checks only
        // libvosk's function.
        assert!(kernels_available());
    }
}
