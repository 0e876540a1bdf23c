//! PEM files for TLS, read for the server ([`crate::server::tls`]) and the load client
//! ([`crate::client::tls`]): certificate chains, private keys and trust roots, each problem
//! naming the file and which input it was ([`TlsFile`]) so that callers can point at the flag
//! or profile field that named it. rustls runs with the `ring` provider only.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Which input of a TLS setup a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// A certificate chain (the server's, or the client's for mTLS).
    Cert,
    /// The private key of that chain.
    Key,
    /// Trust roots (the server's `client_ca`, the client's `ca`).
    Ca,
}

/// A TLS input that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", .path.display())]
pub struct TlsError {
    pub file: TlsFile,
    pub path: PathBuf,
    pub message: String,
}

impl TlsError {
    fn new(file: TlsFile, path: &Path, message: impl fmt::Display) -> Self {
        Self { file, path: path.to_path_buf(), message: message.to_string() }
    }
}

/// The crypto provider every TLS configuration here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::new(file, path, format!("cannot read: {error}")))
}

/// Every certificate in a PEM file (a chain: the end entity first), at least one.
pub fn certificates(file: TlsFile, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(file, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::new(file, path, format!("not valid PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(TlsError::new(
            file,
            path,
            "no certificates in the file (expected PEM 'BEGIN CERTIFICATE')",
        ));
    }
    Ok(certificates)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(TlsFile::Key, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| {
        let message = match error {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in the file (expected PEM 'BEGIN PRIVATE KEY')".to_owned()
            }
            error => format!("not valid PEM: {error}"),
        };
        TlsError::new(TlsFile::Key, path, message)
    })
}

/// A certificate chain and its private key, checked to belong together.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Reads `cert` and `key` and checks that the key is the certificate's.
pub fn identity(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let chain = certificates(TlsFile::Cert, cert)?;
    let private_key = private_key(key)?;
    CertifiedKey::from_der(chain.clone(), private_key.clone_key(), &provider()).map_err(|error| {
        let message = match error {
            rustls::Error::InconsistentKeys(_) => {
                format!("does not match the certificate in {}", cert.display())
            }
            error => format!("unusable key: {error}"),
        };
        TlsError::new(TlsFile::Key, key, message)
    })?;
    Ok(Identity { chain, key: private_key })
}

/// Trust roots from a PEM file of CA certificates; each must be usable as a trust anchor.
pub fn roots(path: &Path) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    for certificate in certificates(TlsFile::Ca, path)? {
        store.add(certificate).map_err(|error| {
            TlsError::new(TlsFile::Ca, path, format!("not a usable CA certificate: {error}"))
        })?;
    }
    Ok(Arc::new(store))
}

/// The ALPN protocol gRPC speaks; clients such as grpc-go refuse a TLS server without it.
pub const ALPN_H2: &[u8] = b"h2";
