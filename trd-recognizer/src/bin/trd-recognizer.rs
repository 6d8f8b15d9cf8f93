//! The recognizer worker process.

/// jemalloc for the whole process, Vosk's C++ included (see the dependency's note in
/// `Cargo.toml`).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` (the allocator looks the symbol up by this name;
/// `MALLOC_CONF` in the environment still overrides them). `thp:always` asks the kernel for
/// 2 MB pages for everything jemalloc maps, as Linux's default `madvise` mode allows to those
/// who ask. The decoder reads the static decoding graph, a gigabyte, at random: about 250,000
/// pages of 4 kB, far more than the TLB holds, or about 500 huge ones. With huge pages the same
/// recognition takes about 5 % less CPU (identical words: only where the memory sits changes),
/// for about 5 % more resident memory.
#[cfg(target_os = "linux")]
#[export_name = "malloc_conf"]
static JEMALLOC_OPTIONS: &[u8; 11] = b"thp:always\0";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trd_core::worker::main_for(trd_recognizer::Recognizer).await
}
