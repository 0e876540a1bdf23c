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

use crate::chaos::{ChaosEngine, FaultPlan};
use crate::config::{Profile, check_methods, load_profile};
use crate::diagnostic::{Problem, Problems};
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
    /// A profile (YAML): server inputs and limits, the chaos plan. Flags override it.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// .proto files, directories of them (recursive) or descriptor sets (.pb, .protoset);
    /// required unless the profile names them.
    #[arg(long = "protos", value_name = "PATH")]
    pub protos: Vec<PathBuf>,
    /// Extra directories to resolve imports against.
    #[arg(long = "import-path", value_name = "DIR")]
    pub import_paths: Vec<PathBuf>,
    /// GripMock-format stub files (YAML/JSON) or directories of them (recursive).
    #[arg(long = "stubs", value_name = "PATH")]
    pub stubs: Vec<PathBuf>,
    /// Address for gRPC (port 0 picks a free port) [default: 127.0.0.1:50051].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
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
    /// Largest message accepted or sent, in bytes; larger ones get RESOURCE_EXHAUSTED
    /// [default: 4 MiB].
    #[arg(long)]
    pub max_message_size: Option<usize>,
    /// Concurrent streams allowed per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)
    /// [default: 100000].
    #[arg(long)]
    pub max_concurrent_streams: Option<u32>,
    /// How long streams may finish after SIGINT/SIGTERM before connections are closed
    /// [default: 5s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub shutdown_grace: Option<Duration>,
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
    /// The settings these flags, the profile and the environment's stream limits describe:
    /// flags override the profile, the profile overrides the environment and the defaults.
    fn settings(&self, seed: u64, profile: Option<&Profile>) -> Result<ServerSettings, Problems> {
        let defaults = ServerSettings::default();
        let server = profile.map(|profile| &profile.server);
        let profile_limits = server.map(|server| &server.limits);
        let mut limits = StreamLimits::from_env(|name| std::env::var(name).ok())?;
        if let Some(timeout) = profile_limits.and_then(|l| l.stream_timeout) {
            limits.stream_timeout = Some(timeout);
        }
        if let Some(max) = profile_limits.and_then(|l| l.max_stream_messages) {
            limits.max_stream_messages = Some(max);
        }
        let chaos = profile.map(|profile| {
            let plan = FaultPlan { seed: self.seed.unwrap_or(profile.chaos.seed), ..profile.chaos.clone() };
            Arc::new(ChaosEngine::new(plan))
        });
        let default_response = match self.default_response {
            DefaultMode::Empty => DefaultResponse::Empty {
                stream_messages: self.default_stream_messages,
                stream_interval: self.default_stream_interval,
            },
            DefaultMode::Unimplemented => DefaultResponse::Unimplemented,
        };
        Ok(ServerSettings {
            listen: self.listen.or(server.and_then(|s| s.listen)).unwrap_or(defaults.listen),
            http2: Http2Settings {
                max_concurrent_streams: self
                    .max_concurrent_streams
                    .or(profile_limits.and_then(|l| l.max_concurrent_streams))
                    .unwrap_or(defaults.http2.max_concurrent_streams),
                ..defaults.http2.clone()
            },
            max_message_bytes: self
                .max_message_size
                .or(profile_limits.and_then(|l| l.max_message_size))
                .unwrap_or(defaults.max_message_bytes),
            shutdown_grace: self
                .shutdown_grace
                .or(server.and_then(|s| s.shutdown_grace))
                .unwrap_or(defaults.shutdown_grace),
            default_response,
            limits,
            seed,
            chaos,
            ..defaults
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
    let profile = match args.profile.as_deref().map(load_profile).transpose() {
        Ok(profile) => profile,
        Err(problems) => return Ok(report_problems(&problems)),
    };
    let server = profile.as_ref().map(|profile| &profile.server);
    let protos = if args.protos.is_empty() {
        server.map(|s| s.protos.clone()).unwrap_or_default()
    } else {
        args.protos.clone()
    };
    if protos.is_empty() {
        let problem = Problem::in_file(
            args.profile.clone().unwrap_or_default(),
            "no protos: pass --protos or name them in the profile's server.protos",
        );
        return Ok(report_problems(&Problems::from(problem)));
    }
    let mut import_paths = args.import_paths.clone();
    import_paths.extend(server.map(|s| s.import_paths.clone()).unwrap_or_default());
    let stub_paths = if args.stubs.is_empty() {
        server.map(|s| s.stubs.clone()).unwrap_or_default()
    } else {
        args.stubs.clone()
    };
    let mut pool = match load_pool(&protos, &import_paths) {
        Ok(pool) => pool,
        Err(problems) => return Ok(report_problems(&problems)),
    };
    add_builtin_descriptors(&mut pool)?;
    let seed = args.seed.or(profile.as_ref().map(|profile| profile.chaos.seed)).unwrap_or_else(rand::random);
    let settings = match args.settings(seed, profile.as_ref()) {
        Ok(settings) => settings,
        Err(problems) => return Ok(report_problems(&problems)),
    };
    let fallback = Arc::new(DefaultResponder::new(settings.default_response.clone()));
    let catalog = Arc::new(MethodCatalog::new(&pool, BUILTIN_SERVICE_PREFIXES));
    if let Some(profile) = &profile {
        let problems = check_methods(profile, &catalog);
        if !problems.is_empty() {
            return Ok(report_problems(&problems));
        }
    }
    let stubs = match load_stubs(&stub_paths, &catalog, &pool) {
        Ok(stubs) => Arc::new(ArcSwap::from_pointee(stubs)),
        Err(problems) => return Ok(report_problems(&problems)),
    };
    let stub_count = stubs.load().len();
    info!(seed, "Random draws use this seed (set it with --seed to repeat a run).");
    let responder = Arc::new(StubResponder::new(stubs.clone(), fallback, seed));
    let shutdown = CancellationToken::new();
    let reload_task = if stub_paths.is_empty() {
        None
    } else {
        let reloader = StubReloader { paths: stub_paths, catalog, pool: pool.clone(), target: stubs };
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
