//! Build script shared by the crates whose binaries and tests link libvosk: tells the linker
//! where the library is and bakes that directory into the binary's run path, so nothing needs
//! LD_LIBRARY_PATH. `TRD_VOSK_LIB_DIR` overrides the provisioning scripts' cache location.

fn main() {
    println!("cargo:rerun-if-env-changed=TRD_VOSK_LIB_DIR");
    let dir = std::env::var("TRD_VOSK_LIB_DIR").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        format!("{home}/.cache/trd/vosk-0.3.45")
    });
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
}
