//! `streamstorm serve`: flags and profile turned into a bound server ([`assemble`]), which
//! `serve` runs until a signal and the simulator embeds.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::{Args, ValueEnum};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::chaos::{ChaosEngine, FaultKind, FaultPlan};
use crate::config::reload::ProfileReloader;
use crate::config::{Profile, check_methods, check_paths, load_profile, server_tls};
use crate::diagnostic::{Problem, Problems};
use crate::judge::JudgeSettings;
use crate::proto::{MethodCatalog, load_pool};
use crate::server::introspection::{BUILTIN_SERVICE_PREFIXES, add_builtin_descriptors};
use crate::server::{
    BoundServer, DefaultResponder, DefaultResponse, Http2Settings, ServerHandle, ServerSettings, ServerTls,
    ServerTlsFiles, StreamLimits,
};
use crate::stub::reload::StubReloader;
use crate::stub::{StubResponder, load_stubs};
use crate::telemetry::{TelemetryEndpoint, TelemetryState, install_recorder};
use crate::tls::TlsFile;

use super::{EXIT_THRESHOLDS_FAILED, cancel_on_signal, report_problems};

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
    /// Address for Prometheus metrics (`/metrics`), live streams (`/streams`) and the chaos
    /// admin endpoint (`/admin/`) [default: 127.0.0.1:9464].
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Seed for every random draw (scripts' templates); the same seed and traffic repeat a run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// What methods with nothing configured answer.
    #[arg(long, value_enum, default_value_t = DefaultMode::Fake)]
    pub default_response: DefaultMode,
    /// Messages the default responder sends on a server-streaming call [default: no limit,
    /// until the client cancels].
    #[arg(long, default_value_t = UNTIL_CANCELLED, hide_default_value = true)]
    pub default_stream_messages: u32,
    /// Gap between those messages (e.g. 500ms, 2s).
    #[arg(long, value_parser = crate::config::values::duration_flag, default_value = "1s")]
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
    #[arg(long, value_parser = crate::config::values::duration_flag)]
    pub shutdown_grace: Option<Duration>,
    /// Serve TLS with this certificate chain (PEM); replaces the profile's server.tls.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates issued by these CA certificates (PEM): mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Stop by itself after this long (e.g. 5m), then judge the clients under test against
    /// the profile's `expect` section: exit 1 when one fails.
    #[arg(long, value_parser = crate::config::values::duration_flag)]
    pub duration: Option<Duration>,
    /// When the run ends (its --duration, or SIGINT/SIGTERM), write the clients' figures and
    /// verdicts here as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
}

/// `--default-stream-messages` when not given: a stream that ends when the client cancels.
pub const UNTIL_CANCELLED: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DefaultMode {
    /// Plausible data of the output type: fields filled by type and name, seeded by --seed.
    Fake,
    /// A default message of the output type (every field at its default).
    Empty,
    /// The status UNIMPLEMENTED.
    Unimplemented,
}

impl Default for ServeArgs {
    /// What `streamstorm serve` with no flags means.
    fn default() -> Self {
        Self {
            profile: None,
            protos: Vec::new(),
            import_paths: Vec::new(),
            stubs: Vec::new(),
            listen: None,
            metrics_listen: None,
            seed: None,
            default_response: DefaultMode::Fake,
            default_stream_messages: UNTIL_CANCELLED,
            default_stream_interval: Duration::from_secs(1),
            max_message_size: None,
            max_concurrent_streams: None,
            shutdown_grace: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            duration: None,
            report: None,
        }
    }
}

impl ServeArgs {
    /// The settings these flags, the profile and the environment's stream limits describe:
    /// flags override the profile, the profile overrides the environment and the defaults.
    pub fn settings(&self, seed: u64, profile: Option<&Profile>) -> Result<ServerSettings, Problems> {
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
            DefaultMode::Fake => DefaultResponse::Fake {
                stream_messages: self.default_stream_messages,
                stream_interval: self.default_stream_interval,
            },
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
                handshake_timeout: profile_limits
                    .and_then(|l| l.handshake_timeout)
                    .unwrap_or(defaults.http2.handshake_timeout),
                frame_timeout: profile_limits
                    .and_then(|l| l.frame_timeout)
                    .unwrap_or(defaults.http2.frame_timeout),
                ..defaults.http2.clone()
            },
            max_connections: profile_limits
                .and_then(|l| l.max_connections)
                .unwrap_or(defaults.max_connections),
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
            per_stream_series: profile
                .and_then(|profile| profile.metrics.per_stream_max_streams)
                .unwrap_or(0),
            tls: self.tls(profile)?,
            judging: profile.map(judging).unwrap_or_default(),
        })
    }

    /// TLS from `--tls-cert`/`--tls-key`/`--tls-client-ca`, else from the profile's
    /// `server.tls`; a problem with a file names the flag or the profile field.
    fn tls(&self, profile: Option<&Profile>) -> Result<Option<ServerTls>, Problems> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return profile.map_or(Ok(None), server_tls);
        };
        let files =
            ServerTlsFiles { cert: cert.clone(), key: key.clone(), client_ca: self.tls_client_ca.clone() };
        ServerTls::load(&files).map(Some).map_err(|error| {
            let flag = match error.file {
                TlsFile::Cert => "--tls-cert",
                TlsFile::Key => "--tls-key",
                TlsFile::Ca => "--tls-client-ca",
            };
            Problem::in_file(&error.path, error.message).with_field(flag).into()
        })
    }
}

/// Why a server could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// The inputs are wrong (exit code 2).
    #[error("{0}")]
    Invalid(Problems),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<Problems> for AssembleError {
    fn from(problems: Problems) -> Self {
        Self::Invalid(problems)
    }
}

/// What the profile says of the clients under test.
pub fn judging(profile: &Profile) -> JudgeSettings {
    JudgeSettings {
        clients: profile.clients.clone(),
        expect: profile.expect.clone(),
        max_client_series: profile.metrics.per_client_max_clients.unwrap_or(0),
    }
}

/// Where Prometheus scrapes when neither flags nor profile say.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9464));

/// A server built from flags and a profile, bound to its address and ready to run.
pub struct AssembledServer {
    pub server: BoundServer,
    /// The metrics, live streams and admin listener.
    pub telemetry: TelemetryEndpoint,
    /// The chaos engine, when the profile asked for one.
    pub chaos: Option<Arc<ChaosEngine>>,
    /// The seed every random draw uses.
    pub seed: u64,
    /// Stubs loaded at start.
    pub stub_count: usize,
    /// Scripts bound to a method by their path, loaded at start (scripts a stub names are
    /// counted with their stub).
    pub script_count: usize,
    pub(super) stub_reloader: Option<StubReloader>,
    pub(super) profile_reloader: Option<ProfileReloader>,
}

impl AssembledServer {
    /// Serves until `shutdown`, reloading stubs as their files change, then drains.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks: Vec<JoinHandle<()>> = Vec::new();
        tasks.extend(self.stub_reloader.map(|reloader| reloader.spawn(shutdown.clone())).transpose()?);
        tasks.extend(self.profile_reloader.map(|reloader| reloader.spawn(shutdown.clone())).transpose()?);
        // The metrics listener outlives the drain, so scrapes during it see the streams end.
        let telemetry_shutdown = CancellationToken::new();
        tasks.push(tokio::spawn(self.telemetry.serve(telemetry_shutdown.clone())));
        let handle = self.server.handle();
        self.server.serve(shutdown).await;
        telemetry_shutdown.cancel();
        for task in tasks {
            task.await?;
        }
        log_final_counts(&handle, self.chaos.as_deref());
        Ok(())
    }
}

/// One line with what the server did over its life, once every stream has ended.
fn log_final_counts(server: &ServerHandle, chaos: Option<&ChaosEngine>) {
    let started = server.streams.started();
    let ended = started.saturating_sub(server.streams.active() as u64);
    let (messages_sent, messages_received) = server.streams.ended_messages();
    // Delayed messages are counted apart: one per message, they would drown the rest.
    let (mut faults, mut delayed_messages) = (0, 0);
    for fault in chaos.map(|chaos| chaos.tally().snapshot()).unwrap_or_default() {
        match fault.kind {
            FaultKind::Latency => delayed_messages += fault.count,
            _ => faults += fault.count,
        }
    }
    info!(
        streams_started = started,
        streams_ended = ended,
        messages_sent,
        messages_received,
        faults_injected = faults,
        delayed_messages,
        "Final counts."
    );
}

/// Loads the protos, stubs and scripts `args` and `profile` name, and binds the server.
pub async fn assemble(args: &ServeArgs, profile: Option<&Profile>) -> Result<AssembledServer, AssembleError> {
    let server = profile.map(|profile| &profile.server);
    let protos = if args.protos.is_empty() {
        server.map(|s| s.protos.clone()).unwrap_or_default()
    } else {
        args.protos.clone()
    };
    if protos.is_empty() {
        let file = profile.map(|profile| profile.file.clone()).unwrap_or_default();
        let problem =
            Problem::in_file(file, "no protos: pass --protos or name them in the profile's server.protos");
        return Err(Problems::from(problem).into());
    }
    if let Some(profile) = profile {
        // Only the profile's paths that are used: flags replace its protos and stubs.
        let mut used = vec!["import_paths"];
        used.extend(args.protos.is_empty().then_some("protos"));
        used.extend(args.stubs.is_empty().then_some("stubs"));
        let problems = check_paths(profile, &used);
        if !problems.is_empty() {
            return Err(problems.into());
        }
    }
    let mut import_paths = args.import_paths.clone();
    import_paths.extend(server.map(|s| s.import_paths.clone()).unwrap_or_default());
    let stub_paths = if args.stubs.is_empty() {
        server.map(|s| s.stubs.clone()).unwrap_or_default()
    } else {
        args.stubs.clone()
    };
    // Installed before anything registers metric handles, so they all reach the exporter.
    let prometheus = install_recorder().map_err(anyhow::Error::from)?;
    let mut pool = load_pool(&protos, &import_paths)?;
    add_builtin_descriptors(&mut pool).map_err(anyhow::Error::from)?;
    let seed = args.seed.or(profile.map(|profile| profile.chaos.seed)).unwrap_or_else(rand::random);
    let settings = args.settings(seed, profile)?;
    let chaos = settings.chaos.clone();
    let fallback = Arc::new(DefaultResponder::seeded(settings.default_response.clone(), seed));
    let catalog = Arc::new(MethodCatalog::new(&pool, BUILTIN_SERVICE_PREFIXES));
    if let Some(profile) = profile {
        let mut problems = check_methods(profile, &catalog);
        problems.extend(profile.check_mock_faults());
        problems.extend(crate::judge::resume::check(profile, &catalog));
        if !problems.is_empty() {
            return Err(problems.into());
        }
    }
    let stubs = Arc::new(ArcSwap::from_pointee(load_stubs(&stub_paths, &catalog, &pool)?));
    let (stub_count, script_count) = (stubs.load().len(), stubs.load().script_count());
    let responder = Arc::new(StubResponder::new(stubs.clone(), fallback, seed));
    let profile_reloader = profile.zip(chaos.clone()).map(|(profile, engine)| ProfileReloader {
        path: profile.file.clone(),
        catalog: catalog.clone(),
        engine,
        seed_override: args.seed,
    });
    let stub_reloader = (!stub_paths.is_empty()).then(|| StubReloader {
        paths: stub_paths,
        catalog,
        pool: pool.clone(),
        target: stubs,
    });
    let server = BoundServer::bind_with(&mut pool, settings, responder).await.map_err(anyhow::Error::from)?;
    let telemetry = bind_telemetry(&server, prometheus, chaos.clone(), profile, args.metrics_listen).await?;
    Ok(AssembledServer {
        server,
        telemetry,
        chaos,
        seed,
        stub_count,
        script_count,
        stub_reloader,
        profile_reloader,
    })
}

/// The metrics, live streams and admin listener of `server`, on the flag's address, else the
/// profile's, else the default.
pub(super) async fn bind_telemetry(
    server: &BoundServer,
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    chaos: Option<Arc<ChaosEngine>>,
    profile: Option<&Profile>,
    listen_flag: Option<SocketAddr>,
) -> anyhow::Result<TelemetryEndpoint> {
    let metrics = profile.map(|profile| profile.metrics).unwrap_or_default();
    let state = TelemetryState {
        prometheus,
        server: Some(server.handle()),
        chaos,
        admin_writable: metrics.admin_writable,
    };
    let listen = listen_flag.or(metrics.listen).unwrap_or(DEFAULT_METRICS_LISTEN);
    Ok(TelemetryEndpoint::bind(listen, state).await?)
}

/// `streamstorm serve`: assemble, announce, serve until SIGINT/SIGTERM.
pub(super) async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let profile = match args.profile.as_deref().map(load_profile).transpose() {
        Ok(profile) => profile,
        Err(problems) => return Ok(report_problems(&problems)),
    };
    let assembled = match assemble(&args, profile.as_ref()).await {
        Ok(assembled) => assembled,
        Err(AssembleError::Invalid(problems)) => return Ok(report_problems(&problems)),
        Err(AssembleError::Failed(error)) => return Err(error),
    };
    let handle = assembled.server.handle();
    let (transport, scheme) = transport(&assembled.server);
    let banner = format!(
        "streamstorm serving {} services ({} methods, {} stubs, {} scripts){transport} on {scheme}{}\nmetrics on http://{}/metrics\n",
        handle.catalog.services().len(),
        handle.catalog.methods().count(),
        assembled.stub_count,
        assembled.script_count,
        assembled.server.local_addr(),
        assembled.telemetry.local_addr()
    );
    run_until_stopped(assembled, &banner, args.duration, args.report.as_deref()).await
}

/// How clients reach a bound server: words for the banner, and the URL scheme.
pub(super) fn transport(server: &BoundServer) -> (&'static str, &'static str) {
    match server.tls() {
        None => ("", ""),
        Some(tls) if tls.is_mutual() => (" over mTLS (client certificates required)", "https://"),
        Some(_) => (" over TLS", "https://"),
    }
}

/// Prints `banner`, then runs `assembled` until SIGINT/SIGTERM or `duration`; then, when the
/// run is judged (a duration, a report, or expectations), prints the verdicts, writes the
/// report, and exits 1 when an expectation failed.
pub(super) async fn run_until_stopped(
    assembled: AssembledServer,
    banner: &str,
    duration: Option<Duration>,
    report_path: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    info!(seed = assembled.seed, "Random draws use this seed (set it with --seed to repeat a run).");
    let handle = assembled.server.handle();
    // One write, and a closed stdout is no reason to stop serving: a supervisor that reads the
    // first line and closes the pipe must not take the server down.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(banner.as_bytes()).and_then(|()| stdout.flush());
    drop(stdout);
    let judged = duration.is_some() || report_path.is_some() || !handle.judge.settings().expect.is_empty();
    let shutdown = CancellationToken::new();
    let signalled = CancellationToken::new();
    tokio::spawn(cancel_on_signal(signalled.clone()));
    let stop = shutdown.clone();
    let until_signal = signalled.clone();
    let judge = handle.judge.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = until_signal.cancelled() => {}
            _ = crate::driver::sleep_until(duration.map(|duration| tokio::time::Instant::now() + duration)) => {
                info!("Run duration reached; judging the clients under test.");
            }
        }
        judge.end_run();
        stop.cancel();
    });
    assembled.run(shutdown).await?;
    if !judged {
        return Ok(ExitCode::SUCCESS);
    }
    let report = handle.judge.report(signalled.is_cancelled(), false);
    print!("{}", report.describe());
    if let Some(path) = report_path {
        let json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
        std::fs::write(path, json)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    Ok(if report.expectations.passed { ExitCode::SUCCESS } else { ExitCode::from(EXIT_THRESHOLDS_FAILED) })
}
