//! The load client's TLS from `simulate`'s `--tls-*` flags or the profile's `load.tls` (flags
//! replace the section). Against the embedded server, TLS follows `server.tls`: the client
//! trusts `ca` when given, otherwise exactly the server's own certificate, and presents its
//! certificate when the server requires one.

use std::path::{Path, PathBuf};

use rustls::pki_types::ServerName;

use crate::client::{ClientTls, ClientTlsFiles, Trust};
use crate::config::Profile;
use crate::config::load::LoadPlan;
use crate::config::tls::TlsSection;
use crate::diagnostic::{Problem, Problems};
use crate::tls::{TlsError, TlsFile};

/// The `--tls-*` flags of `simulate`.
#[derive(Debug, Clone, Default)]
pub struct ClientTlsFlags {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub server_name: Option<String>,
}

impl ClientTlsFlags {
    fn given(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.server_name.is_some()
    }
}

/// Where the settings were written, to point problems at it.
enum Source<'a> {
    Flags,
    Section(&'a TlsSection),
    /// Nothing written for the client: the embedded server's `server.tls` alone.
    Embedded(&'a TlsSection),
}

impl Source<'_> {
    fn locate(&self, profile: &Path, error: &TlsError) -> Problem {
        match self {
            Source::Section(section) => section.problem(profile, error),
            // The one file read is the server's certificate, to pin it.
            Source::Embedded(server) => {
                server.problem(profile, &TlsError { file: TlsFile::Cert, ..error.clone() })
            }
            Source::Flags => {
                let flag = match error.file {
                    TlsFile::Cert => "--tls-cert",
                    TlsFile::Key => "--tls-key",
                    TlsFile::Ca => "--tls-ca",
                };
                Problem::in_file(&error.path, &error.message).with_field(flag)
            }
        }
    }

    /// A problem with the settings as a whole.
    fn problem(&self, profile: &Path, message: &str) -> Problem {
        match self {
            Source::Section(section) => {
                let at = [&section.ca, &section.cert, &section.key].into_iter().flatten().next();
                match at {
                    Some(path) => {
                        Problem::at(profile, path.at.line, path.at.column, message).with_field("load.tls")
                    }
                    None => Problem::in_file(profile, message).with_field("load.tls"),
                }
            }
            Source::Embedded(_) => Problem::in_file(profile, message).with_field("load.tls"),
            Source::Flags => Problem::in_file(profile, message).with_field("--tls-ca"),
        }
    }
}

/// The client's TLS, `None` for plaintext.
pub fn client_tls(
    flags: &ClientTlsFlags,
    profile: &Profile,
    plan: &LoadPlan,
    embedded: bool,
) -> Result<Option<ClientTls>, Problems> {
    let server = if embedded { profile.server.tls.as_ref() } else { None };
    let (source, ca, identity, server_name) = if flags.given() {
        let server_name = match &flags.server_name {
            None => None,
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|_| {
                let message = format!("--tls-server-name: not a DNS name or IP address: {name}");
                Problem::in_file(&profile.file, message)
            })?),
        };
        let identity = flags.cert.clone().zip(flags.key.clone());
        (Source::Flags, flags.ca.clone(), identity, server_name)
    } else if let Some(section) = &plan.tls {
        let ca = section.ca.as_ref().map(|ca| ca.path.clone());
        (Source::Section(section), ca, section.identity(), section.server_name.clone())
    } else if let Some(server) = server {
        // The embedded server speaks TLS and the profile says nothing more: trust its certificate.
        (Source::Embedded(server), None, None, None)
    } else {
        return Ok(None);
    };
    if embedded && server.is_none() {
        let why = "the embedded server does not speak TLS: add server.tls, or remove the client's TLS";
        return Err(source.problem(&profile.file, why).into());
    }
    let trust = match (ca, server.and_then(|server| server.cert.as_ref())) {
        (Some(ca), _) => Trust::Roots(ca),
        (None, Some(server_cert)) => Trust::Pinned(server_cert.path.clone()),
        (None, None) => {
            let why = "no CA to trust the target with: set load.tls.ca or --tls-ca";
            return Err(source.problem(&profile.file, why).into());
        }
    };
    if server.is_some_and(|server| server.ca.is_some()) && identity.is_none() {
        let why = "the embedded server requires client certificates (server.tls.client_ca): set load.tls.cert and load.tls.key";
        return Err(source.problem(&profile.file, why).into());
    }
    let files = ClientTlsFiles { trust, identity, server_name };
    ClientTls::load(&files).map(Some).map_err(|error| source.locate(&profile.file, &error).into())
}
