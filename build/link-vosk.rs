//! Build script shared by the crates whose binaries and tests link libvosk: tells the linker
//! where the library is and bakes that directory into the binary's run path, so nothing needs
//! LD_LIBRARY_PATH. `TRD_VOSK_LIB_DIR` overrides the provisioning scripts' cache location.
//!
//! It also makes every binary that links the recognizer crate define and export the Kaldi
//! functions `trd_recognizer::kaldi_kernels` computes (`OVERRIDDEN` there), so that libvosk's
//! calls bind to them rather than to its own. In a binary without that crate the symbols
//! resolve to libvosk's, as before.

fn main() {
    println!("cargo:rerun-if-env-changed=TRD_VOSK_LIB_DIR");
    let dir = std::env::var("TRD_VOSK_LIB_DIR").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        format!("{home}/.cache/trd/vosk-0.3.45")
    });
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    // `-u` pulls each definition out of the recognizer's library archive (nothing in Rust calls
    // them); exporting it puts it before libvosk's in the dynamic linker's search.
    for symbol in ["cblas_sgemm", "_ZN5kaldi10MatrixBaseIfE5FloorERKS1_f"] {
        println!("cargo:rustc-link-arg=-Wl,-u,{symbol}");
        println!("cargo:rustc-link-arg=-Wl,--export-dynamic-symbol={symbol}");
    }
}
