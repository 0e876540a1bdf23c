//! The profile's top level and its `server`, `metrics` and `load` sections; `chaos` is
//! [`super::faults`]'s. Paths are resolved against the profile's directory here, once, so
//! nothing later needs to know where the profile was.

use std::path::Path;

use super::reader::{Reader, join};
use super::{MethodReference, MetricsSection, PathReference, Profile, SECTIONS, ServerLimits, ServerSection};
use super::{protocol, values};
use crate::chaos::plan::MethodMatch;
use crate::diagnostic::Problems;
use crate::document::Node;

const SERVER_FIELDS: &[&str] =
    &["listen", "protos", "import_paths", "stubs", "limits", "shutdown_grace", "tls"];
const LIMIT_FIELDS: &[&str] = &[
    "stream_timeout",
    "max_stream_messages",
    "max_concurrent_streams",
    "max_message_size",
    "max_connections",
    "handshake_timeout",
    "frame_timeout",
];

/// Compiles the one document of a profile file.
pub(super) fn compile(file: &Path, documents: &[Node]) -> Result<Profile, Problems> {
    match compile_leniently(file, documents) {
        (Some(profile), problems) if problems.is_empty() => Ok(profile),
        (_, problems) => Err(problems),
    }
}

/// Compiles what can be compiled of a profile file, and every problem: `validate` goes on to
/// check the protos, stubs and methods of a profile with a mistake elsewhere, so that one run
/// reports everything. `None` when the file is not a mapping at all.
pub(super) fn compile_leniently(file: &Path, documents: &[Node]) -> (Option<Profile>, Problems) {
    let mut reader = Reader::new(file);
    let document = match documents {
        [document] => document,
        [] => {
            reader.problem(
                Default::default(),
                "",
                "the file is empty: a profile has server, chaos, metrics or load",
            );
            return (None, reader.problems);
        }
        [_, second, ..] => {
            reader.problem(second.at, "", "a profile is one YAML document; this file has more");
            return (None, reader.problems);
        }
    };
    if reader.mapping(document, "", SECTIONS).is_none() {
        return (None, reader.problems);
    }
    let mut method_references = Vec::new();
    let server = document.get("server").and_then(|server| reader.server(server)).unwrap_or_default();
    let proxy = document.get("proxy").and_then(|proxy| reader.proxy(proxy)).unwrap_or_default();
    let chaos = reader.chaos(document.get("chaos"), &mut method_references);
    let metrics = document.get("metrics").and_then(|metrics| reader.metrics(metrics)).unwrap_or_default();
    // Kept as written: the load client reads it.
    let load = document.get("load").and_then(|load| {
        if load.as_map().is_none() {
            reader.problem(load.at, "load", format!("expected a mapping, found {}", load.kind()));
            return None;
        }
        Some(load.clone())
    });
    let clients = document.get("clients").and_then(|clients| reader.clients(clients)).unwrap_or_default();
    if let Some(resume) = clients.resume.as_ref() {
        if let MethodMatch::Service(_) | MethodMatch::Method { .. } = &resume.method {
            method_references.push(MethodReference {
                matcher: resume.method.clone(),
                field: "clients.resume.method".to_owned(),
                at: resume.at,
            });
        }
    }
    let expect = document.get("expect").map(|expect| reader.expectations(expect)).unwrap_or_default();
    let profile = Profile {
        file: file.to_path_buf(),
        server,
        proxy,
        chaos,
        metrics,
        load,
        clients,
        expect,
        method_references,
        proxy_only_faults: std::mem::take(&mut reader.proxy_only),
    };
    // In the order a reader of the file meets them.
    reader.problems.0.sort_by_key(|problem| (problem.line, problem.column));
    (Some(profile), reader.problems)
}

impl Reader<'_> {
    fn server(&mut self, node: &Node) -> Option<ServerSection> {
        self.mapping(node, "server", SERVER_FIELDS)?;
        let limits = node.get("limits").and_then(|limits| self.limits(limits, "server.limits"));
        let mut path_references = Vec::new();
        let mut paths = |reader: &mut Self, key: &str| {
            let references = reader.paths(node, "server", key);
            let paths = references.iter().map(|reference| reference.resolved.clone()).collect();
            path_references.extend(references);
            paths
        };
        let protos = paths(self, "protos");
        let import_paths = paths(self, "import_paths");
        let stubs = paths(self, "stubs");
        Some(ServerSection {
            listen: self.optional(node, "server", "listen", protocol::socket_address),
            protos,
            import_paths,
            stubs,
            limits: limits.unwrap_or_default(),
            shutdown_grace: self.optional(node, "server", "shutdown_grace", values::duration),
            tls: node.get("tls").and_then(|tls| self.server_tls_at(tls, "server.tls")),
            path_references,
        })
    }

    fn limits(&mut self, node: &Node, field: &str) -> Option<ServerLimits> {
        self.mapping(node, field, LIMIT_FIELDS)?;
        Some(ServerLimits {
            stream_timeout: self.optional(node, field, "stream_timeout", values::positive_duration),
            max_stream_messages: self.optional(node, field, "max_stream_messages", values::count),
            max_concurrent_streams: self.optional(
                node,
                field,
                "max_concurrent_streams",
                values::positive_u32,
            ),
            max_message_size: self.optional(node, field, "max_message_size", protocol::byte_size),
            max_connections: self.optional(node, field, "max_connections", values::positive_usize),
            handshake_timeout: self.optional(node, field, "handshake_timeout", values::positive_duration),
            frame_timeout: self.optional(node, field, "frame_timeout", values::positive_duration),
        })
    }

    /// One path or a list of them, each resolved against the profile's directory.
    pub(super) fn paths(&mut self, map: &Node, field: &str, key: &str) -> Vec<PathReference> {
        let Some(node) = map.get(key) else { return Vec::new() };
        let field = join(field, key);
        let base = self.file().parent().unwrap_or(Path::new(""));
        let resolve = |text: &str, field: &str, item: &Node| PathReference {
            written: text.to_owned(),
            resolved: base.join(text),
            field: field.to_owned(),
            at: item.at,
        };
        if let Some(text) = node.as_str() {
            return vec![resolve(text, &field, node)];
        }
        self.list(Some(node), &field, |reader, item, field| {
            let text = reader.parse(item, field, |item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("expected a path, found {}", item.kind()))
            });
            text.map(|text| resolve(&text, field, item))
        })
    }

    fn metrics(&mut self, node: &Node) -> Option<MetricsSection> {
        self.mapping(node, "metrics", &["listen", "per_stream", "per_client", "admin"])?;
        let per_stream = node.get("per_stream").and_then(|per_stream| {
            self.mapping(per_stream, "metrics.per_stream", &["max_streams"])?;
            self.optional(per_stream, "metrics.per_stream", "max_streams", values::positive_usize)
        });
        let per_client = node.get("per_client").and_then(|per_client| {
            self.mapping(per_client, "metrics.per_client", &["max_clients"])?;
            self.optional(per_client, "metrics.per_client", "max_clients", values::positive_usize)
        });
        Some(MetricsSection {
            listen: self.optional(node, "metrics", "listen", protocol::socket_address),
            per_stream_max_streams: per_stream,
            per_client_max_clients: per_client,
            admin_writable: self.optional(node, "metrics", "admin", values::admin_access).unwrap_or(false),
        })
    }
}
