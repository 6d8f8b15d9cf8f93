//! Build script shared by the crates whose binaries and tests link libvosk: tells the linker
//! where the library is and bakes that directory into the binary's run path, so nothing needs
//! LD_LIBRARY_PATH. `TRD_VOSK_LIB_DIR` overrides the provisioning scripts' cache location.
//!
//! It also makes every binary that links the recognizer crate define and export
//! `cblas_sgemm` (`trd_recognizer::network_products`), so that libvosk's calls bind to it
//! rather than to the BLAS inside libvosk. In a binary without that crate the symbol
//! resolves to libvosk's own, as before.

fn main() {
    println!("cargo:rerun-if-env-changed=TRD_VOSK_LIB_DIR");
    let dir = std::env::var("TRD_VOSK_LIB_DIR").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        format!("{home}/.cache/trd/vosk-0.3.45")
    });
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    // `-u` pulls the definition out of the recognizer's library archive (nothing in Rust calls
    // it); exporting it puts it before libvosk's in the dynamic linker's search.
    println!("cargo:rustc-link-arg=-Wl,-u,cblas_sgemm");
    println!("cargo:rustc-link-arg=-Wl,--export-dynamic-symbol=cblas_sgemm");
}
