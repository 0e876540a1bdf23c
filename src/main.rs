use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use streamstorm::cli::{self, Cli, EXIT_RUN_FAILED};
use streamstorm::server::descriptors;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Every connection is a descriptor: take all the hard limit allows before any is opened.
    match descriptors::raise_open_files_limit() {
        Ok(limit) if limit.now > limit.before => {
            tracing::debug!(from = limit.before, to = limit.now, "Raised the open-file limit.");
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, "Cannot raise the open-file limit; connections are limited to what it allows. To hold more, {}.", descriptors::HOW_TO_RAISE)
        }
    }
    let runtime = match streamstorm::server::runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        // Every command's run-time failure ends here, with the same code.
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_RUN_FAILED)
        }
    }
}
