//! The normalizer worker process.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trd_core::worker::main_for(trd_normalizer::Normalizer).await
}
