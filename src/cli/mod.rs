//! The command line: flags parsed into typed settings at the edge, then handed to the library.
//! Exit codes are the same for every command: 0 success, 1 thresholds or expectations failed,
//! 2 invalid input, 3 a run-time failure (a port in use, an unreachable target, a file that
//! cannot be written), 130 a second interrupt.

mod client_tls;
mod proxy;
mod report;
mod scale;
mod serve;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::diagnostic::Problems;
use crate::validate;

pub use client_tls::{ClientTlsFlags, client_tls};
pub use proxy::{ProxyArgs, assemble_proxy};
pub use report::{MergeArgs, ReportArgs, ReportCommand};
pub use scale::ScaleFlags;
pub use serve::{AssembleError, AssembledServer, DEFAULT_METRICS_LISTEN, DefaultMode, ServeArgs, assemble};
pub use simulate::{SimulateArgs, SimulateError, run_simulation};

/// Exit code when thresholds (`simulate`) or expectations fail.
pub const EXIT_THRESHOLDS_FAILED: u8 = 1;
/// Exit code for invalid input (CLI, protos, stubs, scripts, profile).
pub const EXIT_INVALID_INPUT: u8 = 2;
/// Exit code when a command could not be carried out at run time (a port in use, an
/// unreachable target, a report that cannot be written), whichever command it is.
pub const EXIT_RUN_FAILED: u8 = 3;

#[derive(Debug, Parser)]
#[command(name = "streamstorm", version, about = "Load-and-chaos simulator for gRPC streaming")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (tracing `EnvFilter` syntax, e.g. `info`, `streamstorm=debug`).
    #[arg(long, global = true, env = "STREAMSTORM_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every service of the given protos as a mock gRPC server.
    Serve(ServeArgs),
    /// Drive the profile's server (started in-process) or --target with the load client;
    /// show progress, report, and exit 1 when thresholds fail.
    Simulate(SimulateArgs),
    /// Check protos, stubs, scripts and profiles; report every error with file:line:col; start nothing.
    Validate(ValidateArgs),
    /// Relay every call to a real gRPC server (--upstream), with the profile's chaos injected
    /// into the relayed streams.
    Proxy(ProxyArgs),
    /// `proxy --record DIR` without chaos: relay every call to --upstream and record it as
    /// stubs and stream scripts that `serve --stubs DIR` replays.
    Record(ProxyArgs),
    /// Work with reports: `report merge` joins the shard reports of a sharded run.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Extra directories to resolve imports against.
    #[arg(long = "import-path", value_name = "DIR")]
    pub import_paths: Vec<PathBuf>,
    /// Files or directories to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Runs a parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Simulate(args) => simulate::simulate(args).await,
        Command::Validate(args) => Ok(validate_files(&args)),
        Command::Proxy(args) => proxy::proxy(args).await,
        Command::Record(args) => proxy::record(args).await,
        Command::Report(args) => report::run(args),
    }
}

fn validate_files(args: &ValidateArgs) -> ExitCode {
    match validate::validate(&args.files, &args.import_paths) {
        Ok(summary) => {
            println!("ok: {summary}");
            ExitCode::SUCCESS
        }
        Err(problems) => report_problems(&problems),
    }
}

fn report_problems(problems: &Problems) -> ExitCode {
    eprintln!("{problems}");
    eprintln!("{} problem{} found", problems.len(), if problems.len() == 1 { "" } else { "s" });
    ExitCode::from(EXIT_INVALID_INPUT)
}

/// Exit code when a second SIGINT or SIGTERM cuts the shutdown short (128 + SIGINT, as shells
/// report an interrupted command).
pub const EXIT_SIGNALLED_TWICE: u8 = 130;

/// Cancels `shutdown` on the first SIGINT or SIGTERM; a second one exits the process at once
/// with [`EXIT_SIGNALLED_TWICE`], as command-line tools do when the user insists.
pub(crate) async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    // Both listeners are kept for the whole wait, so no signal falls between two waits.
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut next_signal = async || {
        let interrupt = async {
            match interrupt.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        let terminate = async {
            match terminate.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate => {}
        }
    };
    next_signal().await;
    tracing::info!("Shutdown requested (a second signal exits at once).");
    shutdown.cancel();
    next_signal().await;
    tracing::warn!("Second signal: exiting without finishing the shutdown.");
    std::process::exit(EXIT_SIGNALLED_TWICE.into());
}
