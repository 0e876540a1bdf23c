//! `streamstorm proxy`: flags and the profile's `proxy` section turned into a bound proxy in
//! front of a real server ([`assemble_proxy`]), which `proxy` runs until a signal (or its
//! `--duration`) and `simulate --upstream` embeds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rustls::pki_types::ServerName;
use tracing::info;

use crate::client::{ClientTls, ClientTlsFiles, Trust, pool_from_reflection};
use crate::config::{Profile, RecordSection, UpstreamTarget, check_methods, load_profile};
use crate::diagnostic::{Problem, Problems};
use crate::proto::{MethodCatalog, load_pool};
use crate::proxy::UpstreamSettings;
use crate::record::{RecordSettings, Recorder};
use crate::server::{ServerTls, ServerTlsFiles};
use crate::telemetry::install_recorder;

use super::report_problems;
use super::serve::{AssembleError, AssembledServer, ServeArgs, bind_telemetry, run_until_stopped, transport};

/// How long the proxy waits, at start, for the upstream's reflection to answer.
const REFLECTION_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Args, Default)]
pub struct ProxyArgs {
    /// The real server to relay to, as HOST:PORT; required unless the profile's
    /// `proxy.upstream` names it.
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Option<UpstreamTarget>,
    /// A profile (YAML): the `proxy` section, limits, the chaos plan, clients and
    /// expectations. Flags override it.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Address for gRPC (port 0 picks a free port) [default: 127.0.0.1:50051].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address for `/metrics`, `/streams`, `/clients` and `/admin/` [default: 127.0.0.1:9464].
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// .proto files or directories to decode relayed messages with (for `/streams` and the
    /// judge's resume checks); without them messages are relayed undecoded all the same.
    #[arg(long = "protos", value_name = "PATH")]
    pub protos: Vec<PathBuf>,
    /// Extra directories to resolve imports against.
    #[arg(long = "import-path", value_name = "DIR")]
    pub import_paths: Vec<PathBuf>,
    /// Seed for every random draw; the same seed and traffic repeat a run's faults.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Reach the upstream over TLS, trusting these CA certificates (PEM).
    #[arg(long, value_name = "FILE")]
    pub upstream_tls_ca: Option<PathBuf>,
    /// The name to verify the upstream's certificate for [default: the upstream's host].
    #[arg(long, value_name = "NAME", requires = "upstream_tls_ca")]
    pub upstream_server_name: Option<String>,
    /// Serve TLS to clients with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates issued by these CA certificates (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// How long relayed streams may finish after SIGINT/SIGTERM before connections are closed
    /// [default: 5s].
    #[arg(long, value_parser = crate::config::values::duration_flag)]
    pub shutdown_grace: Option<Duration>,
    /// Stop by itself after this long, then judge the clients under test (exit 1 when an
    /// expectation fails).
    #[arg(long, value_parser = crate::config::values::duration_flag)]
    pub duration: Option<Duration>,
    /// When the run ends, write the clients' figures and verdicts here as JSON.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Record the relayed calls into DIR (absent or empty) as stubs and stream scripts that
    /// `serve --stubs DIR` replays. Needs the upstream's protos (--protos or its reflection).
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Calls recorded per method [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub record_max_per_method: Option<u64>,
    /// Calls recorded in all [default: 1000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub record_max_calls: Option<u64>,
    /// A header never written to the recording (repeatable), besides `authorization`,
    /// `proxy-authorization`, `cookie` and `set-cookie`.
    #[arg(long = "record-redact", value_name = "NAME")]
    pub record_redact: Vec<String>,
    /// Write `authorization`, `proxy-authorization`, `cookie` and `set-cookie` after all.
    #[arg(long)]
    pub record_keep_sensitive: bool,
}

impl ProxyArgs {
    /// What to record, from the flags over the profile's `proxy.record`; `None` records
    /// nothing.
    pub fn record_settings(&self, section: Option<&RecordSection>) -> Option<RecordSettings> {
        let dir = self.record.clone().or(section.and_then(|section| section.dir.clone()))?;
        let mut settings = RecordSettings::new(dir);
        let count = |flag: Option<u64>, key: Option<usize>, default: usize| {
            flag.map(|value| usize::try_from(value).unwrap_or(usize::MAX)).or(key).unwrap_or(default)
        };
        settings.max_per_method = count(
            self.record_max_per_method,
            section.and_then(|section| section.max_per_method),
            settings.max_per_method,
        );
        settings.max_calls =
            count(self.record_max_calls, section.and_then(|section| section.max_calls), settings.max_calls);
        settings.redact = section.map(|section| section.redact.clone()).unwrap_or_default();
        settings.redact.extend(self.record_redact.iter().map(|name| name.trim().to_ascii_lowercase()));
        settings.keep_sensitive =
            self.record_keep_sensitive || section.and_then(|section| section.keep_sensitive).unwrap_or(false);
        Some(settings)
    }
}

/// Loads what `args` and `profile` name and binds the proxy.
pub async fn assemble_proxy(
    args: &ProxyArgs,
    profile: Option<&Profile>,
) -> Result<AssembledServer, AssembleError> {
    let section = profile.map(|profile| profile.proxy.clone()).unwrap_or_default();
    let file = profile.map(|profile| profile.file.clone()).unwrap_or_default();
    let Some(target) = args.upstream.clone().or(section.upstream.clone()) else {
        let why = "no upstream: pass --upstream HOST:PORT or set the profile's proxy.upstream";
        return Err(Problems::from(Problem::in_file(file, why)).into());
    };
    let serve_args = ServeArgs {
        profile: args.profile.clone(),
        listen: args.listen.or(section.listen),
        metrics_listen: args.metrics_listen,
        seed: args.seed,
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        tls_client_ca: args.tls_client_ca.clone(),
        shutdown_grace: args.shutdown_grace,
        ..ServeArgs::default()
    };
    // Installed before anything registers metric handles (the chaos engine's tally does), so
    // they all reach the exporter.
    let prometheus = install_recorder().map_err(anyhow::Error::from)?;
    let seed = args.seed.or(profile.map(|profile| profile.chaos.seed)).unwrap_or_else(rand::random);
    let mut settings = serve_args.settings(seed, profile)?;
    if args.tls_cert.is_none() {
        if let (Some(tls), Some(profile)) = (&section.tls, profile) {
            settings.tls = section_server_tls(profile, tls)?;
        }
    }
    let mut upstream = UpstreamSettings::new(target);
    upstream.tls = upstream_tls(args, profile)?;
    upstream.connections = section.connections.unwrap_or(upstream.connections);
    upstream.connect_timeout = section.connect_timeout.unwrap_or(upstream.connect_timeout);
    let protos = if args.protos.is_empty() { section.protos.clone() } else { args.protos.clone() };
    let catalog = if protos.is_empty() {
        reflected_catalog(&upstream).await
    } else {
        let import_paths = [args.import_paths.clone(), section.import_paths.clone()].concat();
        MethodCatalog::new(&load_pool(&protos, &import_paths)?, &[])
    };
    if let (Some(profile), false) = (profile, catalog.is_empty()) {
        let mut problems = check_methods(profile, &catalog);
        problems.extend(crate::judge::resume::check(profile, &catalog));
        if !problems.is_empty() {
            return Err(problems.into());
        }
    }
    let recorder = match args.record_settings(section.record.as_ref()) {
        Some(record) => Some(Recorder::start(record, &catalog).map_err(|error| {
            Problems::from(Problem::in_file(&file, error.to_string()).with_field("--record"))
        })?),
        None => None,
    };
    let chaos = settings.chaos.clone();
    let server = crate::proxy::bind(settings, upstream, Arc::new(catalog), recorder)
        .await
        .map_err(anyhow::Error::from)?;
    let telemetry = bind_telemetry(&server, prometheus, chaos.clone(), profile, args.metrics_listen).await?;
    Ok(AssembledServer {
        server,
        telemetry,
        chaos,
        seed,
        stub_count: 0,
        script_count: 0,
        stub_reloader: None,
        profile_reloader: None,
    })
}

/// The upstream's methods from its reflection service, to decode relayed messages with; none
/// (and every message relayed undecoded) when the upstream has no reflection or cannot be
/// reached yet.
async fn reflected_catalog(upstream: &UpstreamSettings) -> MethodCatalog {
    let address = upstream.target.to_string();
    let reflection = pool_from_reflection(&address, REFLECTION_TIMEOUT, upstream.tls.as_ref());
    let reflected = tokio::time::timeout(REFLECTION_TIMEOUT, reflection).await;
    match reflected
        .map_err(|_| "no answer in time".to_owned())
        .and_then(|pool| pool.map_err(|e| e.to_string()))
    {
        Ok(pool) => {
            let catalog = MethodCatalog::new(&pool, &[]);
            info!(upstream = %address, methods = catalog.methods().count(), "Decoding relayed messages with the upstream's reflection.");
            catalog
        }
        Err(error) => {
            info!(upstream = %address, %error, "No protos and no reflection: relaying messages undecoded.");
            MethodCatalog::default()
        }
    }
}

/// TLS to the upstream from `--upstream-tls-ca`, else the profile's `proxy.upstream_tls`;
/// `None` for plaintext.
fn upstream_tls(args: &ProxyArgs, profile: Option<&Profile>) -> Result<Option<ClientTls>, Problems> {
    let file = profile.map(|profile| profile.file.clone()).unwrap_or_default();
    if let Some(ca) = &args.upstream_tls_ca {
        let server_name = match &args.upstream_server_name {
            None => None,
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|_| {
                Problem::in_file(&file, format!("not a DNS name or IP address: {name}"))
                    .with_field("--upstream-server-name")
            })?),
        };
        let files = ClientTlsFiles { trust: Trust::Roots(ca.clone()), identity: None, server_name };
        return ClientTls::load(&files).map(Some).map_err(|error| {
            Problem::in_file(&error.path, error.message).with_field("--upstream-tls-ca").into()
        });
    }
    let Some((profile, section)) =
        profile.and_then(|profile| Some((profile, profile.proxy.upstream_tls.as_ref()?)))
    else {
        return Ok(None);
    };
    let Some(ca) = &section.ca else {
        let why = "no CA to trust the upstream with: set proxy.upstream_tls.ca";
        return Err(Problem::in_file(&profile.file, why).with_field("proxy.upstream_tls").into());
    };
    let files = ClientTlsFiles {
        trust: Trust::Roots(ca.path.clone()),
        identity: section.identity(),
        server_name: section.server_name.clone(),
    };
    ClientTls::load(&files).map(Some).map_err(|error| section.problem(&profile.file, &error).into())
}

/// The server TLS a profile's `proxy.tls` section describes.
fn section_server_tls(
    profile: &Profile,
    section: &crate::config::tls::TlsSection,
) -> Result<Option<ServerTls>, Problems> {
    let Some((cert, key)) = section.identity() else { return Ok(None) };
    let files = ServerTlsFiles { cert, key, client_ca: section.ca.as_ref().map(|ca| ca.path.clone()) };
    ServerTls::load(&files).map(Some).map_err(|error| section.problem(&profile.file, &error).into())
}

/// `streamstorm record`: `proxy --record` without chaos. A profile whose `chaos` section
/// injects anything (rules, phases, header faults) is refused, naming the way to record under
/// chaos; its other sections (`proxy`, `server.limits`, `metrics`) apply.
pub(super) async fn record(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let profile = match args.profile.as_deref().map(load_profile).transpose() {
        Ok(profile) => profile,
        Err(problems) => return Ok(report_problems(&problems)),
    };
    if let Some(profile) = &profile {
        let chaos = &profile.chaos;
        if !chaos.rules.is_empty() || !chaos.phases.is_empty() || chaos.header_faults {
            let why = "`streamstorm record` records without chaos, and this profile's chaos section injects faults: record under chaos with `streamstorm proxy --record DIR`, or use a profile without chaos rules, phases or header faults";
            return Ok(report_problems(&Problem::in_file(&profile.file, why).with_field("chaos").into()));
        }
    }
    if args.record_settings(profile.as_ref().and_then(|profile| profile.proxy.record.as_ref())).is_none() {
        let file = profile.as_ref().map(|profile| profile.file.clone()).unwrap_or_default();
        let why = "nowhere to record: pass --record DIR or set the profile's proxy.record.dir";
        return Ok(report_problems(&Problem::in_file(file, why).with_field("--record").into()));
    }
    run_proxy(args, profile).await
}

/// `streamstorm proxy`: assemble, announce, relay until SIGINT/SIGTERM (or `--duration`).
pub(super) async fn proxy(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let profile = match args.profile.as_deref().map(load_profile).transpose() {
        Ok(profile) => profile,
        Err(problems) => return Ok(report_problems(&problems)),
    };
    run_proxy(args, profile).await
}

async fn run_proxy(args: ProxyArgs, profile: Option<Profile>) -> anyhow::Result<ExitCode> {
    let assembled = match assemble_proxy(&args, profile.as_ref()).await {
        Ok(assembled) => assembled,
        Err(AssembleError::Invalid(problems)) => return Ok(report_problems(&problems)),
        Err(AssembleError::Failed(error)) => return Err(error),
    };
    let upstream =
        args.upstream.clone().or(profile.as_ref().and_then(|profile| profile.proxy.upstream.clone()));
    let upstream = upstream.map(|target| target.to_string()).unwrap_or_default();
    let (transport, scheme) = transport(&assembled.server);
    let recording = args
        .record_settings(profile.as_ref().and_then(|profile| profile.proxy.record.as_ref()))
        .map(|record| format!(", recording into {}", record.dir.display()))
        .unwrap_or_default();
    let banner = format!(
        "streamstorm proxying to {upstream}{transport}{recording} on {scheme}{}\nmetrics on http://{}/metrics\n",
        assembled.server.local_addr(),
        assembled.telemetry.local_addr()
    );
    run_until_stopped(assembled, &banner, args.duration, args.report.as_deref()).await
}
