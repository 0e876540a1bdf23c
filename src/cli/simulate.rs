//! `streamstorm simulate`: the profile's server started in-process on a free loopback port
//! (or `--target` a running server), driven by the load client with live progress, then the
//! report printed, written (`--report`, `--plot`) and judged by the thresholds.
//! Exit codes as for every command ([`super`]): 0 passed, 1 thresholds failed, 2 invalid
//! input, 3 the run itself failed.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::info;

use super::client_tls::{ClientTlsFlags, client_tls};
use super::proxy::{ProxyArgs, assemble_proxy};
use super::scale::{JOB_COMPLETION_INDEX, ScaleFlags, shard_report, target_rows, wait_for_start};
use super::serve::{AssembleError, DEFAULT_METRICS_LISTEN, DefaultMode, ServeArgs, assemble};
use super::{cancel_on_signal, report_problems};
use crate::client::{
    self, ClientTls, LoadSettings, PoolSettings, ShardSpec, TargetEntry, compile_scenarios, connect_targets,
    parse_targets, pool_from_reflection, shard_plan,
};
use crate::config::load::{DEFAULT_DURATION, LoadPlan, LoadTarget, compile_load};
use crate::config::{Profile, UpstreamTarget, check_paths, load_profile};
use crate::diagnostic::{Problem, Problems};
use crate::proto::{MethodCatalog, load_pool};
use crate::report::progress::{Progress, ProgressMode, default_interval};
use crate::report::{PhaseRecorder, ProfileIdentity, Report, ReportInputs, ScenarioIdentity};
use crate::server::introspection::BUILTIN_SERVICE_PREFIXES;
use crate::telemetry::{TelemetryEndpoint, TelemetryState, install_recorder};
use metrics_exporter_prometheus::PrometheusHandle;

/// How long calls open when the duration ends may finish by themselves before they are cut.
const DRAIN: Duration = Duration::from_millis(500);
/// How long statuses the embedded server injected before closing its books have to arrive.
const BOOKS_SETTLE: Duration = Duration::from_millis(200);
/// How long the embedded server lets connections close after the run.
const EMBEDDED_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// The profile (YAML): server inputs, chaos, and the `load` section to drive.
    #[arg(long, value_name = "FILE")]
    pub profile: PathBuf,
    /// Drive a running server at host:port instead of the profile's server in-process.
    #[arg(long, value_name = "ADDR", conflicts_with = "upstream")]
    pub target: Option<String>,
    /// Run the embedded server as a proxy in front of this real server (HOST:PORT), so the
    /// profile's chaos acts on its streams; overrides load.upstream.
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Option<UpstreamTarget>,
    /// How long to drive the load (e.g. 20s, 2m); overrides load.duration [default: 30s].
    #[arg(long, value_parser = crate::config::values::duration_flag)]
    pub duration: Option<Duration>,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Write a latency-over-time plot (SVG) here.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Where Prometheus scrapes the client's (and the embedded server's) metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seed for the chaos draws, jitter, think times and templates.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print only the final report.
    #[arg(long)]
    pub quiet: bool,
    /// Protos for `--target` (otherwise the profile's server.protos, otherwise reflection).
    #[arg(long = "protos", value_name = "PATH")]
    pub protos: Vec<PathBuf>,
    /// Extra directories to resolve imports against.
    #[arg(long = "import-path", value_name = "DIR")]
    pub import_paths: Vec<PathBuf>,
    /// Address for the embedded server [default: the profile's server.listen, else a free
    /// loopback port].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Connect over TLS, trusting these CA certificates (PEM); the --tls-* flags replace
    /// load.tls. With the embedded server, TLS follows its server.tls.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for servers that require one (mTLS).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The name to send (SNI) and verify the server's certificate for [default: the target's host].
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    #[command(flatten)]
    pub scale: ScaleFlags,
}

impl SimulateArgs {
    /// The flags for running `profile` from code: quiet, with metrics on a free loopback port
    /// (so runs side by side never collide), nothing else set.
    pub fn for_profile(profile: impl Into<PathBuf>) -> Self {
        Self {
            profile: profile.into(),
            target: None,
            upstream: None,
            duration: None,
            report: None,
            plot: None,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            seed: None,
            quiet: true,
            protos: Vec::new(),
            import_paths: Vec::new(),
            listen: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_server_name: None,
            scale: ScaleFlags::default(),
        }
    }

    fn tls_flags(&self) -> ClientTlsFlags {
        ClientTlsFlags {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            server_name: self.tls_server_name.clone(),
        }
    }
}

/// Why a simulation did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The inputs are wrong (exit code 2).
    #[error("{0}")]
    Invalid(Problems),
    /// The run could not be carried out (exit code 3).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<Problems> for SimulateError {
    fn from(problems: Problems) -> Self {
        Self::Invalid(problems)
    }
}

impl From<AssembleError> for SimulateError {
    fn from(error: AssembleError) -> Self {
        match error {
            AssembleError::Invalid(problems) => Self::Invalid(problems),
            AssembleError::Failed(error) => Self::Failed(error.context("cannot start the embedded server")),
        }
    }
}

/// `streamstorm simulate`: run, print, write, judge.
pub(super) async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let mode = if args.quiet {
        ProgressMode::Quiet
    } else if std::io::stderr().is_terminal() {
        ProgressMode::Live
    } else {
        ProgressMode::Lines
    };
    let report = match run_simulation(&args, mode).await {
        Ok(report) => report,
        Err(SimulateError::Invalid(problems)) => return Ok(report_problems(&problems)),
        Err(SimulateError::Failed(error)) => return Err(error),
    };
    let title =
        format!("streamstorm simulate {}: latency, throughput and errors over time", args.profile.display());
    super::report::print_and_write(&report, args.report.as_deref(), args.plot.as_deref(), &title)
}

/// Where the simulation sends its traffic.
enum Driven {
    Embedded { server: Box<crate::cli::AssembledServer> },
    Target { address: String, catalog: Arc<MethodCatalog> },
}

/// Runs a whole simulation and returns its report; prints only progress (per `mode`).
pub async fn run_simulation(args: &SimulateArgs, mode: ProgressMode) -> Result<Report, SimulateError> {
    // Before anything registers a metric handle, so every handle reaches the exporter.
    let prometheus = install_recorder().map_err(anyhow::Error::from)?;
    let profile = load_profile(&args.profile)?;
    let shard = args.scale.shard(std::env::var(JOB_COMPLETION_INDEX).ok())?;
    let sharded = shard_plan(&compile_load(&profile)?, shard.unwrap_or(ShardSpec::WHOLE));
    let plan = sharded.plan;
    let identity = ProfileIdentity::of_file(&args.profile)
        .with_context(|| format!("cannot read {}", args.profile.display()))?;
    let seed = run_seed(args.seed, &profile, shard.is_some(), &identity);
    // Each shard draws from its own seed; the report keeps the run's.
    let draws_seed = shard.unwrap_or(ShardSpec::WHOLE).seed(seed);
    let target = args.target.clone().or(match &plan.target {
        LoadTarget::Embedded => None,
        LoadTarget::Address(address) => Some(address.clone()),
    });
    let upstream = args.upstream.clone().or(plan.upstream.clone()).filter(|_| target.is_none());
    let (driven, tls) = match target {
        None => {
            let server = match &upstream {
                None => embedded_server(args, &profile, &plan, draws_seed).await?,
                Some(upstream) => embedded_proxy(args, &profile, draws_seed, upstream).await?,
            };
            let server = Box::new(server);
            (Driven::Embedded { server }, client_tls(&args.tls_flags(), &profile, &plan, true)?)
        }
        Some(address) => {
            let tls = client_tls(&args.tls_flags(), &profile, &plan, false)?;
            let first = first_address(&address, &profile)?;
            let catalog = target_catalog(args, &profile, &plan, &first, tls.as_ref()).await?;
            (Driven::Target { address, catalog: Arc::new(catalog) }, tls)
        }
    };
    let (address, catalog_view) = match &driven {
        Driven::Embedded { server } if upstream.is_some() => {
            // The scenarios' methods are the real server's: from protos, or its reflection
            // through the proxy.
            let address = server.server.local_addr().to_string();
            let catalog = target_catalog(args, &profile, &plan, &address, tls.as_ref()).await?;
            (address, Arc::new(catalog))
        }
        Driven::Embedded { server } => {
            (server.server.local_addr().to_string(), server.server.handle().catalog)
        }
        Driven::Target { address, catalog } => (address.clone(), catalog.clone()),
    };
    let scenarios = compile_scenarios(&plan, &profile.file, &catalog_view)?;
    let shutdown = CancellationToken::new();
    let (server_task, chaos, judge, target_name) = match driven {
        Driven::Embedded { server } => {
            info!(addr = %server.telemetry.local_addr(), "Metrics of the client and the server at /metrics.");
            let chaos = server.chaos.clone();
            let judge = server.server.handle().judge;
            let task = tokio::spawn(server.run(shutdown.clone()));
            let name = match &upstream {
                None => format!("embedded ({address})"),
                Some(upstream) => format!("{upstream} through the embedded proxy ({address})"),
            };
            (Some(task), chaos, Some(judge), name)
        }
        Driven::Target { .. } => {
            let listen = args.metrics_listen.or(profile.metrics.listen).unwrap_or(DEFAULT_METRICS_LISTEN);
            let telemetry = client_telemetry(listen, prometheus).await?;
            info!(addr = %telemetry.local_addr(), "Client metrics at /metrics.");
            let stop = shutdown.clone();
            let task = tokio::spawn(async move {
                telemetry.serve(stop).await;
                Ok::<_, anyhow::Error>(())
            });
            (Some(task), None, None, address.clone())
        }
    };
    info!(target = %target_name, scenarios = scenarios.len(), "Driving load.");
    let entries = parse_targets(&address).unwrap_or_else(|_| vec![TargetEntry::Address(address.clone())]);
    let pool_settings =
        PoolSettings { connections: plan.connections, connect_timeout: plan.connect_timeout, tls };
    let (pool, resolver) = connect_targets(entries, pool_settings, shutdown.clone()).await?;
    let duration = args.duration.or(plan.duration).unwrap_or(if plan.calls.is_some() {
        Duration::from_secs(86_400)
    } else {
        DEFAULT_DURATION
    });
    let settings = LoadSettings {
        duration,
        calls: plan.calls,
        seed: draws_seed,
        drain: DRAIN,
        first_stream_ids: sharded.first_stream_ids,
    };
    let began = wait_for_start(args.scale.start_at).await;
    let run = client::start(&scenarios, &pool, &settings);
    let interval = plan.progress_interval.unwrap_or_else(|| default_interval(duration));
    let progress = Progress::spawn(run.collector(), run.started(), duration, interval, mode);
    let phases = chaos
        .as_ref()
        .map(|engine| PhaseRecorder::spawn(engine.phase_changes(), run.collector(), run.started()));
    // The signal listener stays up through the drain, so a second signal can exit at once.
    let interrupted = CancellationToken::new();
    let _signal = AbortOnDropHandle::new(tokio::spawn(cancel_on_signal(interrupted.clone())));
    let stopper = run.stopper();
    let stop_on_signal = tokio::spawn({
        let interrupted = interrupted.clone();
        async move {
            interrupted.cancelled().await;
            stopper.cancel();
        }
    });
    let collector = run.collector();
    // Before open calls are cut, the embedded server stops injecting faults that end them and
    // what it injected is given time to arrive: a status on its way when the client stops
    // listening would be counted injected and never observed.
    let close_books = async {
        if let Some(engine) = &chaos {
            engine.tally().close_books();
            tokio::time::sleep(BOOKS_SETTLE).await;
        }
    };
    let timing = run.finish(settings.drain, close_books).await;
    stop_on_signal.abort();
    let timeline = progress.finish().await;
    let phases = match phases {
        Some(recorder) => recorder.finish().await,
        None => Vec::new(),
    };
    let targets = target_rows(&pool);
    drop(pool);
    let faults = chaos.as_ref().map(|engine| engine.tally().summary());
    if let Some(judge) = &judge {
        judge.end_run();
    }
    shutdown.cancel();
    if let Some(resolver) = resolver {
        let _ = resolver.await;
    }
    if let Some(task) = server_task {
        task.await.context("the embedded server task failed")?.context("the embedded server failed")?;
    }
    let stats = collector.snapshot();
    let peers = judge.map(|judge| judge.report(interrupted.is_cancelled(), false));
    let identities: Vec<ScenarioIdentity> =
        scenarios.iter().map(|scenario| ScenarioIdentity::of(scenario)).collect();
    Ok(Report::build(ReportInputs {
        scenarios: &identities,
        stats: &stats,
        elapsed: timing.elapsed,
        planned: duration,
        interrupted: interrupted.is_cancelled(),
        target: target_name,
        seed,
        faults,
        thresholds: &plan.thresholds,
        peers,
        timeline,
        phases,
        profile: identity,
        shard: shard.map(|shard| shard_report(shard, draws_seed, args.scale.start_at, began)),
        merged_from: None,
        targets,
    }))
}

/// `--seed`, else `chaos.seed`; a sharded run whose profile sets none agrees on one taken
/// from the profile's digest, since the shards cannot share a seed drawn in each process.
fn run_seed(flag: Option<u64>, profile: &Profile, sharded: bool, identity: &ProfileIdentity) -> u64 {
    match flag {
        Some(seed) => seed,
        None if sharded && !profile.seed_written => u64::from_str_radix(&identity.digest, 16).unwrap_or(0),
        None => profile.chaos.seed,
    }
}

/// The first address of a target list, for reflection (every replica serves the same).
fn first_address(targets: &str, profile: &Profile) -> Result<String, SimulateError> {
    let entries = parse_targets(targets)
        .map_err(|why| Problems::from(Problem::in_file(&profile.file, format!("--target: {why}"))))?;
    Ok(match &entries[0] {
        TargetEntry::Address(address) | TargetEntry::Dns(address) => address.clone(),
    })
}

/// The profile's server, bound to `--listen`, else the profile's `server.listen`, else a
/// free loopback port, so two runs never collide.
async fn embedded_server(
    args: &SimulateArgs,
    profile: &Profile,
    plan: &LoadPlan,
    seed: u64,
) -> Result<crate::cli::AssembledServer, SimulateError> {
    let listen =
        args.listen.or(profile.server.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let serve = ServeArgs {
        profile: Some(args.profile.clone()),
        protos: args.protos.clone(),
        import_paths: args.import_paths.clone(),
        listen: Some(listen),
        metrics_listen: args.metrics_listen,
        seed: Some(seed),
        // Bare messages: the load client measures timing, not content, and they cost nothing
        // to make, so the server is never what limits the rate.
        default_response: DefaultMode::Empty,
        default_stream_messages: plan.embedded.stream_messages,
        default_stream_interval: plan.embedded.stream_interval,
        shutdown_grace: Some(EMBEDDED_SHUTDOWN_GRACE),
        ..ServeArgs::default()
    };
    Ok(assemble(&serve, Some(profile)).await?)
}

/// A proxy in front of `upstream`, bound as the embedded server would be.
async fn embedded_proxy(
    args: &SimulateArgs,
    profile: &Profile,
    seed: u64,
    upstream: &UpstreamTarget,
) -> Result<crate::cli::AssembledServer, SimulateError> {
    let listen =
        args.listen.or(profile.proxy.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let proxy = ProxyArgs {
        upstream: Some(upstream.clone()),
        profile: Some(args.profile.clone()),
        listen: Some(listen),
        metrics_listen: args.metrics_listen,
        protos: args.protos.clone(),
        import_paths: args.import_paths.clone(),
        seed: Some(seed),
        shutdown_grace: Some(EMBEDDED_SHUTDOWN_GRACE),
        ..ProxyArgs::default()
    };
    Ok(assemble_proxy(&proxy, Some(profile)).await?)
}

/// The target's methods: from `--protos`, the profile's `server.protos`, or reflection.
async fn target_catalog(
    args: &SimulateArgs,
    profile: &Profile,
    plan: &LoadPlan,
    address: &str,
    tls: Option<&ClientTls>,
) -> Result<MethodCatalog, SimulateError> {
    let protos = if args.protos.is_empty() { profile.server.protos.clone() } else { args.protos.clone() };
    let used: &[&str] = if args.protos.is_empty() { &["protos", "import_paths"] } else { &["import_paths"] };
    let problems = check_paths(profile, used);
    if !problems.is_empty() {
        return Err(problems.into());
    }
    let pool = if protos.is_empty() {
        pool_from_reflection(address, plan.connect_timeout, tls).await.map_err(anyhow::Error::from)?
    } else {
        let mut import_paths = args.import_paths.clone();
        import_paths.extend(profile.server.import_paths.clone());
        load_pool(&protos, &import_paths)?
    };
    let catalog = MethodCatalog::new(&pool, BUILTIN_SERVICE_PREFIXES);
    if catalog.is_empty() {
        let why = format!("{address} offers no services to drive (pass --protos)");
        return Err(Problems::from(Problem::in_file(&profile.file, why)).into());
    }
    Ok(catalog)
}

/// The telemetry listener when no server runs in this process: the client's metrics only.
/// (With the embedded server, its listener serves both, since they share one recorder.)
async fn client_telemetry(
    listen: SocketAddr,
    prometheus: PrometheusHandle,
) -> Result<TelemetryEndpoint, SimulateError> {
    let state = TelemetryState { prometheus, server: None, chaos: None, admin_writable: false };
    Ok(TelemetryEndpoint::bind(listen, state).await.map_err(anyhow::Error::from)?)
}
