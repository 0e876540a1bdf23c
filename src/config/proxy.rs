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
];

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
            path_references: [protos, import_paths].concat(),
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
