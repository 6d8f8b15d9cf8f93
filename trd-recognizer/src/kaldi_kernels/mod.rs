//! Two of Kaldi's hot loops, computed by TRD instead of inside libvosk: the acoustic network's
//! matrix products ([`products`]) and its ReLU ([`floor`]).
//!
//! libvosk calls these functions of its own through the dynamic linker (they are exported,
//! default-visibility symbols of a shared library), so a definition of the same name exported
//! by the executable comes first. Every binary that links this crate defines and exports the
//! [`OVERRIDDEN`] symbols (`build/link-vosk.rs` names them to the linker), and libvosk's calls
//! bind here. Nothing in TRD calls them but their tests. Both are x86-64 code, as libvosk is.

use std::ffi::CStr;

pub mod floor;
pub mod products;

/// The symbols libvosk's calls bind to here; `build/link-vosk.rs` exports the same names.
pub const OVERRIDDEN: [&CStr; 2] = [c"cblas_sgemm", c"_ZN5kaldi10MatrixBaseIfE5FloorERKS1_f"];

/// Whether libvosk's calls to each of [`OVERRIDDEN`] come here in this process (and the CPU
/// has the products' instructions, AVX2 and FMA).
pub fn active() -> bool {
    let ours = [
        products::cblas_sgemm as *const () as usize,
        floor::floor as *const () as usize,
    ];
    OVERRIDDEN.iter().zip(ours).all(|(name, ours)| {
        // SAFETY: looking a name up has no precondition; the name is a C string.
        let bound = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        bound as usize == ours
    }) && products::kernels_available()
}

#[cfg(test)]
mod tests {
    #[test]
    fn libvosk_calls_come_here() {
        // This test binary links libvosk as the recognizer does (build/link-vosk.rs).
        assert!(
            super::active(),
            "libvosk's calls do not bind to TRD's kernels"
        );
    }
}
