//! The profile's TLS sections: `server.tls` (`cert`, `key`, `client_ca`) and `load.tls` (`ca`,
//! `cert`, `key`, `server_name`). Paths are resolved against the profile's directory and kept
//! with where they were written, so a problem with a file — unreadable, no certificate, a key
//! that is not the certificate's — is reported at the field that named it.

use std::path::{Path, PathBuf};

use rustls::pki_types::ServerName;

use super::reader::{Reader, join};
use super::{Profile, values};
use crate::diagnostic::{Problem, Problems};
use crate::document::{Node, Position};
use crate::server::{ServerTls, ServerTlsFiles};
use crate::tls::{TlsError, TlsFile};

const SERVER_TLS_FIELDS: &[&str] = &["cert", "key", "client_ca"];
const LOAD_TLS_FIELDS: &[&str] = &["ca", "cert", "key", "server_name"];

/// A path a TLS section names, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPath {
    pub path: PathBuf,
    /// `server.tls.cert`.
    pub field: String,
    pub at: Position,
}

/// A TLS section as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSection {
    pub cert: Option<TlsPath>,
    pub key: Option<TlsPath>,
    /// `client_ca` in `server.tls`, `ca` in `load.tls`.
    pub ca: Option<TlsPath>,
    /// `load.tls.server_name`.
    pub server_name: Option<ServerName<'static>>,
}

impl TlsSection {
    /// `error` located at the field that named its file (the profile itself when none did).
    pub fn problem(&self, profile: &Path, error: &TlsError) -> Problem {
        let named = match error.file {
            TlsFile::Cert => &self.cert,
            TlsFile::Key => &self.key,
            TlsFile::Ca => &self.ca,
        };
        match named {
            Some(named) => Problem::at(profile, named.at.line, named.at.column, error.to_string())
                .with_field(&named.field),
            None => Problem::in_file(profile, error.to_string()),
        }
    }

    /// The certificate and key paths, when both are set.
    pub fn identity(&self) -> Option<(PathBuf, PathBuf)> {
        Some((self.cert.as_ref()?.path.clone(), self.key.as_ref()?.path.clone()))
    }
}

/// The server's TLS from `server.tls`, its files read and checked; `None` without the section.
pub fn server_tls(profile: &Profile) -> Result<Option<ServerTls>, Problems> {
    let Some(section) = &profile.server.tls else { return Ok(None) };
    let (Some(cert), Some(key)) = (&section.cert, &section.key) else { return Ok(None) };
    let files = ServerTlsFiles {
        cert: cert.path.clone(),
        key: key.path.clone(),
        client_ca: section.ca.as_ref().map(|ca| ca.path.clone()),
    };
    ServerTls::load(&files).map(Some).map_err(|error| section.problem(&profile.file, &error).into())
}

impl Reader<'_> {
    /// A server's TLS section (`server.tls`, `proxy.tls`) at `field`.
    pub(super) fn server_tls_at(&mut self, node: &Node, field: &str) -> Option<TlsSection> {
        self.mapping(node, field, SERVER_TLS_FIELDS)?;
        for key in ["cert", "key"] {
            if node.get(key).is_none() {
                self.problem(
                    node.at,
                    field,
                    format!("missing field '{key}' (e.g. {key}: certs/server-{key}.pem)"),
                );
            }
        }
        Some(TlsSection {
            cert: self.tls_path(node, field, "cert"),
            key: self.tls_path(node, field, "key"),
            ca: self.tls_path(node, field, "client_ca"),
            server_name: None,
        })
    }

    /// A client's TLS section (`load.tls`, `proxy.upstream_tls`) at `field`.
    pub(super) fn client_tls_at(&mut self, node: &Node, field: &str) -> Option<TlsSection> {
        self.mapping(node, field, LOAD_TLS_FIELDS)?;
        match (node.get("cert"), node.get("key")) {
            (Some(_), None) => {
                self.problem(node.at, field, "missing field 'key': a client cert needs its key")
            }
            (None, Some(_)) => {
                self.problem(node.at, field, "missing field 'cert': a client key needs its cert")
            }
            _ => {}
        }
        Some(TlsSection {
            cert: self.tls_path(node, field, "cert"),
            key: self.tls_path(node, field, "key"),
            ca: self.tls_path(node, field, "ca"),
            server_name: self.optional(node, field, "server_name", |node| {
                let name = values::text(node)?;
                ServerName::try_from(name.trim().to_owned())
                    .map_err(|_| format!("not a DNS name or IP address: {node}"))
            }),
        })
    }

    /// A path resolved against the profile's directory, with where it was written.
    fn tls_path(&mut self, map: &Node, field: &str, key: &str) -> Option<TlsPath> {
        let node = map.get(key)?;
        let field = join(field, key);
        let text = self.parse(node, &field, |node| {
            node.as_str().map(str::to_owned).ok_or_else(|| format!("expected a path, found {}", node.kind()))
        })?;
        let base = self.file().parent().unwrap_or(Path::new(""));
        Some(TlsPath { path: base.join(text), field, at: node.at })
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::config::load::compile_load;
    use crate::config::parse_profile;

    fn problems(text: &str) -> String {
        let profile = match parse_profile(Path::new("p.yaml"), text) {
            Ok(profile) => profile,
            Err(problems) => return problems.to_string(),
        };
        compile_load(&profile).expect_err("the profile should be rejected").to_string()
    }

    #[test]
    fn tls_sections_resolve_paths_against_the_profile() {
        let text = "server:\n  tls: { cert: s.pem, key: s-key.pem, client_ca: ca.pem }\nload:\n  tls: { ca: ca.pem, cert: c.pem, key: c-key.pem, server_name: localhost }\n  scenarios: []\n";
        let profile = parse_profile(Path::new("profiles/p.yaml"), text).unwrap();
        let server = profile.server.tls.as_ref().unwrap();
        assert_eq!(server.cert.as_ref().unwrap().path, PathBuf::from("profiles/s.pem"));
        assert_eq!(server.cert.as_ref().unwrap().field, "server.tls.cert");
        assert_eq!(server.ca.as_ref().unwrap().path, PathBuf::from("profiles/ca.pem"));
        let load = compile_load(&profile).unwrap().tls.unwrap();
        assert_eq!(load.identity(), Some(("profiles/c.pem".into(), "profiles/c-key.pem".into())));
        assert_eq!(load.server_name.unwrap().to_str(), "localhost");
    }

    #[test]
    fn tls_sections_report_every_problem_located() {
        assert_eq!(
            problems("server:\n  tls: { cert: s.pem, clientca: ca.pem }\n"),
            "p.yaml:2:8: server.tls: missing field 'key' (e.g. key: certs/server-key.pem)\n\
             p.yaml:2:23: server.tls.clientca: unknown field 'clientca', did you mean 'client_ca'? (expected one of: cert, key, client_ca)"
        );
        assert_eq!(
            problems("load:\n  tls: { cert: c.pem, server_name: 'not a name!' }\n  scenarios: []\n"),
            "p.yaml:2:8: load.tls: missing field 'key': a client cert needs its key\n\
             p.yaml:2:36: load.tls.server_name: not a DNS name or IP address: \"not a name!\""
        );
    }
}
