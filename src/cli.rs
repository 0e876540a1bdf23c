//! The command line: flags parsed into typed settings at the edge, then handed to the library.
//! Exit codes: 0 success, 2 invalid input, 1 reserved for failed `simulate` thresholds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::diagnostic::Problems;
use crate::proto::{MethodCatalog, load_pool};
use crate::server::introspection::{BUILTIN_SERVICE_PREFIXES, add_builtin_descriptors};
use crate::server::{
    BoundServer, DefaultResponder, DefaultResponse, Http2Settings, ServerSettings, StreamLimits,
};
use crate::stub::reload::StubReloader;
use crate::stub::{StubResponder, load_stubs};
use crate::validate;

/// Exit code for invalid input (CLI, protos, stubs, scripts, profile).
pub const EXIT_INVALID_INPUT: u8 = 2;

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
    /// Check protos, stubs, scripts and profiles; report every error with file:line:col; start nothing.
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// .proto files, directories of them (recursive) or descriptor sets (.pb, .protoset).
    #[arg(long = "protos", value_name = "PATH", required = true)]
    pub protos: Vec<PathBuf>,
    /// Extra directories to resolve imports against.
    #[arg(long = "import-path", value_name = "DIR")]
    pub import_paths: Vec<PathBuf>,
    /// GripMock-format stub files (YAML/JSON) or directories of them (recursive).
    #[arg(long = "stubs", value_name = "PATH")]
    pub stubs: Vec<PathBuf>,
    /// Address for gRPC (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Seed for every random draw (scripts' templates); the same seed and traffic repeat a run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// What methods with nothing configured answer.
    #[arg(long, value_enum, default_value_t = DefaultMode::Empty)]
    pub default_response: DefaultMode,
    /// Messages the default responder sends on a server-streaming call.
    #[arg(long, default_value_t = 1)]
    pub default_stream_messages: u32,
    /// Gap between those messages (e.g. 500ms, 2s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub default_stream_interval: Duration,
    /// Largest message accepted or sent, in bytes; larger ones get RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub max_message_size: usize,
    /// Concurrent streams allowed per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, default_value_t = Http2Settings::default().max_concurrent_streams)]
    pub max_concurrent_streams: u32,
    /// How long streams may finish after SIGINT/SIGTERM before connections are closed.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DefaultMode {
    /// A default message of the output type (every field at its default).
    Empty,
    /// The status UNIMPLEMENTED.
    Unimplemented,
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

impl ServeArgs {
    /// The settings these flags and the environment's stream limits describe.
    fn settings(&self, seed: u64) -> Result<ServerSettings, Problems> {
        let limits = StreamLimits::from_env(|name| std::env::var(name).ok())?;
        let default_response = match self.default_response {
            DefaultMode::Empty => DefaultResponse::Empty {
                stream_messages: self.default_stream_messages,
                stream_interval: self.default_stream_interval,
            },
            DefaultMode::Unimplemented => DefaultResponse::Unimplemented,
        };
        Ok(ServerSettings {
            listen: self.listen,
            http2: Http2Settings {
                max_concurrent_streams: self.max_concurrent_streams,
                ..Http2Settings::default()
            },
            max_message_bytes: self.max_message_size,
            shutdown_grace: self.shutdown_grace,
            default_response,
            limits,
            seed,
            ..ServerSettings::default()
        })
    }
}

/// Runs a parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Validate(args) => Ok(validate_files(&args)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut pool = match load_pool(&args.protos, &args.import_paths) {
        Ok(pool) => pool,
        Err(problems) => return Ok(report_problems(&problems)),
    };
    add_builtin_descriptors(&mut pool)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let settings = match args.settings(seed) {
        Ok(settings) => settings,
        Err(problems) => return Ok(report_problems(&problems)),
    };
    let fallback = Arc::new(DefaultResponder::new(settings.default_response.clone()));
    let catalog = Arc::new(MethodCatalog::new(&pool, BUILTIN_SERVICE_PREFIXES));
    let stubs = match load_stubs(&args.stubs, &catalog, &pool) {
        Ok(stubs) => Arc::new(ArcSwap::from_pointee(stubs)),
        Err(problems) => return Ok(report_problems(&problems)),
    };
    let stub_count = stubs.load().len();
    info!(seed, "Random draws use this seed (set it with --seed to repeat a run).");
    let responder = Arc::new(StubResponder::new(stubs.clone(), fallback, seed));
    let shutdown = CancellationToken::new();
    let reload_task = if args.stubs.is_empty() {
        None
    } else {
        let reloader = StubReloader { paths: args.stubs.clone(), catalog, pool: pool.clone(), target: stubs };
        Some(reloader.spawn(shutdown.clone())?)
    };
    let server = BoundServer::bind_with(&mut pool, settings, responder).await?;
    let handle = server.handle();
    println!(
        "streamstorm serving {} services ({} methods, {stub_count} stubs) on {}",
        handle.catalog.services().len(),
        handle.catalog.methods().count(),
        server.local_addr()
    );
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    server.serve(shutdown).await;
    if let Some(task) = reload_task {
        task.await?;
    }
    Ok(ExitCode::SUCCESS)
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

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("Shutdown requested.");
    shutdown.cancel();
}
