//! The profile's `proxy` section: the upstream the proxy relays to (`upstream`, `HOST:PORT`),
//! how it reaches it (`upstream_tls`, `connections`, `connect_timeout`), and what it listens
//! on and decodes with (`listen`, `tls`, `protos`, `import_paths`) — the keys of
//! `streamstorm proxy`'s flags, which override them.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::reader::{Reader, join};
use super::tls::TlsSection;
use super::{PathReference, protocol, values};
use crate::document::Node;

const PROXY_FIELDS: &[&str] = &[
    "upstream",
    "listen",
    "protos",
    "import_paths",
    "tls",
    "upstream_tls",
    "connections",
    "connect_timeout",
    "record",
];

const RECORD_FIELDS: &[&str] = &["dir", "max_per_method", "max_calls", "redact", "keep_sensitive"];

/// `proxy`: where and how `streamstorm proxy` relays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxySection {
    pub upstream: Option<UpstreamTarget>,
    /// Address the proxy listens on for gRPC.
    pub listen: Option<SocketAddr>,
    /// Protos to decode relayed messages with, resolved against the profile's directory.
    pub protos: Vec<PathBuf>,
    pub import_paths: Vec<PathBuf>,
    /// TLS towards the clients (`cert`, `key`, `client_ca`).
    pub tls: Option<TlsSection>,
    /// TLS towards the upstream (`ca`, `cert`, `key`, `server_name`).
    pub upstream_tls: Option<TlsSection>,
    /// Shared HTTP/2 connections to the upstream.
    pub connections: Option<usize>,
    pub connect_timeout: Option<Duration>,
    /// `record`: record the relayed calls as stubs and scripts (`--record` and its flags).
    pub record: Option<RecordSection>,
    /// Where each path above was written.
    pub path_references: Vec<PathReference>,
}

impl Reader<'_> {
    pub(super) fn proxy(&mut self, node: &Node) -> Option<ProxySection> {
        let field = "proxy";
        self.mapping(node, field, PROXY_FIELDS)?;
        let protos = self.paths(node, field, "protos");
        let import_paths = self.paths(node, field, "import_paths");
        let resolved = |references: &[PathReference]| references.iter().map(|r| r.resolved.clone()).collect();
        Some(ProxySection {
            upstream: self.optional(node, field, "upstream", |node| values::text(node)?.trim().parse()),
            listen: self.optional(node, field, "listen", protocol::socket_address),
            protos: resolved(&protos),
            import_paths: resolved(&import_paths),
            tls: node.get("tls").and_then(|tls| self.server_tls_at(tls, &join(field, "tls"))),
            upstream_tls: node
                .get("upstream_tls")
                .and_then(|tls| self.client_tls_at(tls, &join(field, "upstream_tls"))),
            connections: self.optional(node, field, "connections", values::positive_usize),
            connect_timeout: self.optional(node, field, "connect_timeout", values::positive_duration),
            record: node.get("record").and_then(|record| self.record(record, &join(field, "record"))),
            path_references: [protos, import_paths].concat(),
        })
    }
}

/// `proxy.record`: the keys of `--record` and its flags, which override them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordSection {
    /// Where the recording goes, resolved against the profile's directory.
    pub dir: Option<PathBuf>,
    pub max_per_method: Option<usize>,
    pub max_calls: Option<usize>,
    /// Header names never written (besides `authorization`, `cookie`, `set-cookie`).
    pub redact: Vec<String>,
    pub keep_sensitive: Option<bool>,
}

impl Reader<'_> {
    fn record(&mut self, node: &Node, field: &str) -> Option<RecordSection> {
        self.mapping(node, field, RECORD_FIELDS)?;
        let dir = self.paths(node, field, "dir").into_iter().next().map(|reference| reference.resolved);
        let redact = self.list(node.get("redact"), &join(field, "redact"), |reader, item, field| {
            reader.parse(item, field, |item| Ok(values::text(item)?.trim().to_ascii_lowercase()))
        });
        Some(RecordSection {
            dir,
            max_per_method: self.optional(node, field, "max_per_method", values::positive_usize),
            max_calls: self.optional(node, field, "max_calls", values::positive_usize),
            redact,
            keep_sensitive: self.optional(node, field, "keep_sensitive", values::boolean),
        })
    }
}

/// The upstream server, as `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTarget {
    /// A name or an address (an IPv6 address without brackets).
    pub host: String,
    pub port: u16,
}

impl FromStr for UpstreamTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || format!("expected HOST:PORT (e.g. 127.0.0.1:50052), found {text:?}");
        if text.contains("://") || text.contains('/') {
            return Err(format!("{}: no scheme or path", expected()));
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(expected)?;
        let host = host.strip_prefix('[').and_then(|host| host.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() || host.contains(['[', ']']) || (host.contains(':') && !text.starts_with('[')) {
            return Err(expected());
        }
        let port = port.parse::<u16>().ok().filter(|port| *port != 0).ok_or_else(expected)?;
        Ok(Self { host: host.to_owned(), port })
    }
}

impl fmt::Display for UpstreamTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_profile;
    use std::path::Path;

    #[test]
    fn upstream_targets_are_host_and_port() {
        let target: UpstreamTarget = "127.0.0.1:50052".parse().unwrap();
        assert_eq!((target.host.as_str(), target.port), ("127.0.0.1", 50052));
        let target: UpstreamTarget = "[::1]:9".parse().unwrap();
        assert_eq!((target.host.as_str(), target.to_string().as_str()), ("::1", "[::1]:9"));
        assert_eq!("backend.local:443".parse::<UpstreamTarget>().unwrap().host, "backend.local");
        for bad in
            ["127.0.0.1", "http://127.0.0.1:1", "host:port", ":80", "host:0", "::1:80", "host:80/x", ""]
        {
            let error = bad.parse::<UpstreamTarget>().unwrap_err();
            assert!(error.contains("expected HOST:PORT"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_record_section_has_exactly_its_keys() {
        assert_eq!(PROXY_FIELDS.last(), Some(&"record"));
        assert_eq!(RECORD_FIELDS, ["dir", "max_per_method", "max_calls", "redact", "keep_sensitive"]);
        let text = "proxy:\n  upstream: 127.0.0.1:50052\n  record:\n    dir: recorded\n    max_per_method: 5\n    max_calls: 50\n    redact: [X-Api-Key]\n    keep_sensitive: true\n";
        let record = parse_profile(Path::new("profiles/p.yaml"), text).unwrap().proxy.record.unwrap();
        assert_eq!(
            record,
            RecordSection {
                dir: Some(PathBuf::from("profiles/recorded")),
                max_per_method: Some(5),
                max_calls: Some(50),
                redact: vec!["x-api-key".into()],
                keep_sensitive: Some(true),
            }
        );
        let problems = parse_profile(
            Path::new("p.yaml"),
            "proxy:\n  record: { dir: d, max_call: 3, max_per_method: 0 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            problems.contains("proxy.record.max_call: unknown field 'max_call', did you mean 'max_calls'?"),
            "{problems}"
        );
        assert!(problems.contains("proxy.record.max_per_method"), "{problems}");
    }

    #[test]
    fn the_proxy_section_is_read_and_checked() {
        let text = "proxy:\n  upstream: 127.0.0.1:50052\n  protos: [../protos]\n  upstream_tls: { ca: ca.pem, server_name: backend }\n  connections: 2\n";
        let profile = parse_profile(Path::new("profiles/p.yaml"), text).unwrap();
        let proxy = profile.proxy;
        assert_eq!(proxy.upstream.unwrap().port, 50052);
        assert_eq!(proxy.protos, vec![std::path::PathBuf::from("profiles/../protos")]);
        assert_eq!(proxy.upstream_tls.unwrap().ca.unwrap().field, "proxy.upstream_tls.ca");
        assert_eq!(proxy.connections, Some(2));
        let problems = parse_profile(Path::new("p.yaml"), "proxy:\n  upstream: localhost\n  conections: 2\n")
            .unwrap_err()
            .to_string();
        assert!(problems.contains("p.yaml:2:13: proxy.upstream: expected HOST:PORT"), "{problems}");
        assert!(
            problems.contains(
                "p.yaml:3:3: proxy.conections: unknown field 'conections', did you mean 'connections'?"
            ),
            "{problems}"
        );
    }
}
