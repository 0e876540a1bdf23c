//! TLS for the server: the rustls configuration built from PEM files (ALPN `h2`, and with a
//! client CA, client certificates required and verified), and the handshake each connection's
//! task runs before HTTP/2, bounded by a timeout so that a silent client cannot hold a task.
//! The accept loop decides nothing here; it only asks for a handshake.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::tls::{ALPN_H2, TlsError, TlsFile, identity, provider, roots};

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PEM files TLS is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The server's certificate chain, end entity first.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// CA certificates client certificates must chain to; when set, clients must present one.
    pub client_ca: Option<PathBuf>,
}

/// A loaded server TLS configuration, shared by every connection.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    /// Client certificates are required (mTLS).
    mutual: bool,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("mutual", &self.mutual).finish_non_exhaustive()
    }
}

/// Why a connection's handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
    #[error("TLS handshake not completed within {0:?}")]
    TimedOut(Duration),
}

impl ServerTls {
    /// Reads and checks the files: every certificate parses, the key is the certificate's,
    /// the client CA is usable as a trust anchor.
    pub fn load(files: &ServerTlsFiles) -> Result<Self, TlsError> {
        let identity = identity(&files.cert, &files.key)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions");
        let builder = match &files.client_ca {
            None => builder.with_no_client_auth(),
            Some(client_ca) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(roots(client_ca)?, provider())
                    .build()
                    .map_err(|error| TlsError {
                        file: TlsFile::Ca,
                        path: client_ca.clone(),
                        message: format!("cannot verify client certificates with it: {error}"),
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config =
            builder.with_single_cert(identity.chain, identity.key).map_err(|error| TlsError {
                file: TlsFile::Cert,
                path: files.cert.clone(),
                message: format!("unusable certificate: {error}"),
            })?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            mutual: files.client_ca.is_some(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        })
    }

    /// The same configuration with another handshake timeout.
    pub fn with_handshake_timeout(self, handshake_timeout: Duration) -> Self {
        Self { handshake_timeout, ..self }
    }

    /// True when clients must present a certificate the client CA issued.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// Runs the server side of the handshake on `io`, within the handshake timeout.
    pub(super) async fn handshake<IO>(&self, io: IO) -> Result<TlsStream<IO>, HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(io)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(error)) => Err(HandshakeError::Failed(error)),
            Err(_) => Err(HandshakeError::TimedOut(self.handshake_timeout)),
        }
    }
}
