//! The API process.

#[rocket::main]
async fn main() -> anyhow::Result<()> {
    trd_api::main().await
}
