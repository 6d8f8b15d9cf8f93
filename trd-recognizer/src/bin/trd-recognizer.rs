//! The recognizer worker process.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trd_core::worker::main_for(trd_recognizer::Recognizer).await
}
