//! The recognizer worker process.

/// jemalloc for the whole process, Vosk's C++ included (see the dependency's note in
/// `Cargo.toml`).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trd_core::worker::main_for(trd_recognizer::Recognizer).await
}
