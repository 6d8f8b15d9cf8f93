use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = trd_cli::Cli::parse();
    match trd_cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trd: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
