//! Profiles: the YAML file that says how a whole run goes — the server's inputs and limits,
//! the chaos to inject ([`FaultPlan`]), metrics, and the load to drive. A profile is read with
//! the position of every key and value ([`crate::document`]) and compiled section by section;
//! every problem is collected and reported at once with `file:line:col`, the field path, the
//! bad value and what is allowed. Unknown keys are errors at every level.
//!
//! This module owns the profile's syntax and meaning on its own. Checking it against the
//! protos (do the methods its rules name exist?) is [`check_methods`], called once they are
//! loaded; the `load` section is kept as written and compiled by [`load::compile_load`].

pub mod clients;
mod details;
pub use details::{StatusDetails, status_with_details};
mod draws;
mod faults;
mod live_cut;
pub mod load;
mod profile;
pub mod protocol;
pub mod proxy;
mod reader;
pub mod reload;
pub mod tls;
pub mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::chaos::plan::{FaultPlan, MethodMatch};
use crate::diagnostic::{Problem, Problems};
use crate::document::{Node, Position, read_documents};
use crate::proto::MethodCatalog;
use crate::stub::compile::resolve_service;
pub use proxy::{ProxySection, RecordSection, UpstreamTarget};

pub use live_cut::live_cut_request;
pub use tls::server_tls;

/// The keys of `server` that hold paths.
pub const PATH_KEYS: &[&str] = &["protos", "import_paths", "stubs"];

/// The top-level sections of a profile.
pub const SECTIONS: &[&str] = &["server", "proxy", "chaos", "metrics", "load", "clients", "expect"];

/// A compiled profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The file it was read from.
    pub file: PathBuf,
    pub server: ServerSection,
    /// Where `streamstorm proxy` relays to.
    pub proxy: ProxySection,
    /// The faults to inject. When the profile sets no `chaos.seed`, one was drawn at load.
    pub chaos: FaultPlan,
    /// Whether the profile wrote `chaos.seed` (when not, `chaos.seed` was drawn at load).
    pub seed_written: bool,
    pub metrics: MetricsSection,
    /// The `load` section as written (a mapping), for the load client to compile.
    pub load: Option<Node>,
    /// How the clients under test are told apart and measured.
    pub clients: clients::ClientsSection,
    /// What every client under test must achieve (`expect`).
    pub expect: Vec<clients::Expectation>,
    /// Where each rule's `match.method` was written, to check against the protos once loaded.
    pub method_references: Vec<MethodReference>,
    /// Where faults only `streamstorm proxy` can inject (`upstream`) were written, with their
    /// field paths: `serve` refuses them.
    pub proxy_only_faults: Vec<(String, Position)>,
}

impl Profile {
    /// A problem for each fault only a proxy can inject, for commands that run the mock.
    pub fn check_mock_faults(&self) -> Problems {
        let why = "an upstream fault breaks a proxy's connection to its upstream: run this profile with `streamstorm proxy` or `simulate --upstream`";
        let problems = self
            .proxy_only_faults
            .iter()
            .map(|(field, at)| Problem::at(&self.file, at.line, at.column, why).with_field(field));
        Problems(problems.collect())
    }
}

/// `server`: what to serve and how much of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerSection {
    /// Address for gRPC.
    pub listen: Option<SocketAddr>,
    /// `.proto` files, directories or descriptor sets, resolved against the profile's directory.
    pub protos: Vec<PathBuf>,
    /// Extra directories for imports, resolved likewise.
    pub import_paths: Vec<PathBuf>,
    /// Stub files, scripts or directories of them, resolved likewise.
    pub stubs: Vec<PathBuf>,
    pub limits: ServerLimits,
    /// How long streams may finish after a shutdown signal.
    pub shutdown_grace: Option<Duration>,
    /// `server.tls`: serve TLS with these files (checked by [`tls::server_tls`]).
    pub tls: Option<tls::TlsSection>,
    /// Where each path above was written, to say which file was looked for when one is
    /// missing ([`check_paths`]).
    pub path_references: Vec<PathReference>,
}

/// A path as a profile wrote it, and what it resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct PathReference {
    /// As written in the profile.
    pub written: String,
    /// Resolved against the profile's directory.
    pub resolved: PathBuf,
    /// `server.protos[0]`.
    pub field: String,
    pub at: Position,
}

/// `server.limits`: bounds every stream is held to, whatever the chaos rules say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerLimits {
    /// A stream's longest lifetime.
    pub stream_timeout: Option<Duration>,
    /// Messages one stream may send.
    pub max_stream_messages: Option<u64>,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` per connection.
    pub max_concurrent_streams: Option<u32>,
    /// Largest message accepted or sent, in bytes.
    pub max_message_size: Option<usize>,
    /// Connections served at once.
    pub max_connections: Option<usize>,
    /// How long a client has to complete the HTTP/2 handshake.
    pub handshake_timeout: Option<Duration>,
    /// How long a frame or header block may take to arrive once begun.
    pub frame_timeout: Option<Duration>,
}

/// `metrics`: where Prometheus scrapes, and how much per-stream detail it gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSection {
    pub listen: Option<SocketAddr>,
    /// `per_stream: {max_streams: N}`: series labelled by stream for at most N streams.
    pub per_stream_max_streams: Option<usize>,
    /// `admin: read_write` lets the admin endpoint change the chaos state (`read_only` by default).
    pub admin_writable: bool,
    /// `per_client: {max_clients: N}`: series labelled by client for at most N clients.
    pub per_client_max_clients: Option<usize>,
}

/// A method pattern as a rule wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodReference {
    pub matcher: MethodMatch,
    /// `chaos.rules[2].match.method`.
    pub field: String,
    /// Where the method string is.
    pub at: Position,
}

/// Reads and compiles the profile at `path`.
pub fn load_profile(path: &Path) -> Result<Profile, Problems> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Problem::in_file(path, format!("cannot read profile: {error}")))?;
    parse_profile(path, &text)
}

/// Reads the profile at `path` and compiles what it can, with every problem found (see
/// `validate`, which goes on checking a profile that has mistakes).
pub fn load_profile_leniently(path: &Path) -> (Option<Profile>, Problems) {
    match std::fs::read_to_string(path) {
        Ok(text) => match read_documents(path, &text) {
            Ok(documents) => profile::compile_leniently(path, &documents),
            Err(problems) => (None, problems),
        },
        Err(error) => (None, Problem::in_file(path, format!("cannot read profile: {error}")).into()),
    }
}

/// Compiles profile text; `path` names it in problems and anchors its relative paths.
pub fn parse_profile(path: &Path, text: &str) -> Result<Profile, Problems> {
    profile::compile(path, &read_documents(path, text)?)
}

/// True when `path` is a `.yaml`/`.yml` file whose one document is a mapping naming at least
/// one profile section and neither `service` nor `method`, which every stub has. A file with
/// a typo in a section name is still a profile, so the typo is reported as one.
pub fn is_profile(path: &Path) -> bool {
    let yaml = path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml");
    let Some(text) = yaml.then(|| std::fs::read_to_string(path).ok()).flatten() else { return false };
    match read_documents(path, &text).as_deref() {
        Ok([document]) => document.as_map().is_some_and(|entries| {
            let named = |names: &[&str]| entries.iter().any(|(key, _)| names.contains(&key.name.as_str()));
            named(SECTIONS) && !named(&["service", "method"])
        }),
        _ => false,
    }
}

/// Problems with the paths under `server.<key>` for each of `keys` (`protos`, `import_paths`,
/// `stubs`) that do not exist: each names the file looked for, since paths are relative to
/// the profile file, not to the working directory.
pub fn check_paths(profile: &Profile, keys: &[&str]) -> Problems {
    let mut problems = Problems::default();
    let base = profile.file.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let checked = |reference: &&PathReference| {
        let key = reference.field.trim_start_matches("server.");
        let key = key.split('[').next().unwrap_or(key);
        keys.contains(&key) && !reference.resolved.exists()
    };
    for reference in profile.server.path_references.iter().filter(checked) {
        let message = format!(
            "{}: no such file or directory: looked for {} (paths in a profile are relative to the profile file's directory, {})",
            reference.written,
            reference.resolved.display(),
            base.display()
        );
        let at = reference.at;
        problems.push(Problem::at(&profile.file, at.line, at.column, message).with_field(&reference.field));
    }
    problems
}

/// Problems with the methods `profile`'s rules name, against the loaded protos.
pub fn check_methods(profile: &Profile, catalog: &MethodCatalog) -> Problems {
    let mut problems = Problems::default();
    for reference in &profile.method_references {
        let (service, method) = match &reference.matcher {
            MethodMatch::All => continue,
            MethodMatch::Service(service) => (service, None),
            MethodMatch::Method { service, method } => (service, Some(method)),
        };
        let message = if !catalog.services().contains(service) {
            match resolve_service(catalog, service) {
                Ok(full_name) => format!("unknown service '{service}': write its full name, {full_name}"),
                Err(message) => message,
            }
        } else if let Some(method) =
            method.filter(|method| catalog.by_path(&format!("/{service}/{method}")).is_none())
        {
            let mut methods: Vec<&str> = catalog
                .methods()
                .filter(|entry| entry.service == *service)
                .map(|entry| entry.method.as_str())
                .collect();
            methods.sort_unstable();
            format!("{service} has no method '{method}' (methods: {})", methods.join(", "))
        } else {
            continue;
        };
        let at = reference.at;
        problems.push(Problem::at(&profile.file, at.line, at.column, message).with_field(&reference.field));
    }
    problems
}

#[cfg(test)]
mod tests;
