//! TLS for the load client: a rustls client configuration (ALPN `h2`, an optional client
//! certificate for mTLS) and the connector tonic's channels dial through. The target is
//! trusted through CA roots, or — for the embedded server when no CA is given — by pinning the
//! exact certificate the server was configured with.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::tls::{ALPN_H2, TlsError, TlsFile, certificates, identity, provider, roots};

/// How the client decides to trust the target's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Certificates that chain to the CA certificates in this PEM file, valid for the name.
    Roots(PathBuf),
    /// Exactly the end-entity certificate in this PEM file (the embedded server's own).
    Pinned(PathBuf),
}

/// What the client's TLS is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    pub trust: Trust,
    /// The client's certificate chain and key, for servers that require one (mTLS).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The name to send (SNI) and verify the certificate for; the target's host otherwise.
    pub server_name: Option<ServerName<'static>>,
}

/// A loaded client TLS configuration, shared by every connection.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl ClientTls {
    /// Reads and checks the files.
    pub fn load(files: &ClientTlsFiles) -> Result<Self, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions");
        let builder = match &files.trust {
            Trust::Roots(ca) => builder.with_root_certificates(roots(ca)?),
            Trust::Pinned(cert) => {
                builder.dangerous().with_custom_certificate_verifier(Arc::new(PinnedCertificate::load(cert)?))
            }
        };
        let mut config = match &files.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let identity = identity(cert, key)?;
                builder.with_client_auth_cert(identity.chain, identity.key).map_err(|error| TlsError {
                    file: TlsFile::Cert,
                    path: cert.clone(),
                    message: format!("unusable client certificate: {error}"),
                })?
            }
        };
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Self { config: Arc::new(config), server_name: files.server_name.clone() })
    }

    /// A connector for tonic's channels: TCP, then this TLS.
    pub fn connector(&self) -> TlsConnector {
        TlsConnector { tls: self.clone() }
    }

    /// The TLS handshake over `tcp` with the server at `host` (or the configured name).
    pub async fn handshake<IO>(&self, host: &str, tcp: IO) -> std::io::Result<TlsStream<IO>>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
        let server_name = match &self.server_name {
            Some(name) => name.clone(),
            None => ServerName::try_from(host.to_owned())
                .map_err(|error| invalid(format!("{host} is not a TLS server name: {error}")))?,
        };
        tokio_rustls::TlsConnector::from(self.config.clone()).connect(server_name, tcp).await
    }
}

/// Dials `host:port` from the URI and runs the TLS handshake on the connection.
#[derive(Debug, Clone)]
pub struct TlsConnector {
    tls: ClientTls,
}

type Connecting = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<TlsStream<TcpStream>>>> + Send>>;

impl tower::Service<http::Uri> for TlsConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
            let host = uri.host().ok_or_else(|| invalid(format!("no host in {uri}")))?;
            let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(tls.handshake(&host, tcp).await?))
        })
    }
}

/// Trusts one certificate, byte for byte, and checks the handshake was signed by its key.
#[derive(Debug)]
struct PinnedCertificate {
    certificate: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedCertificate {
    fn load(path: &Path) -> Result<Self, TlsError> {
        let certificate = certificates(TlsFile::Ca, path)?.swap_remove(0);
        Ok(Self { certificate, algorithms: provider().signature_verification_algorithms })
    }
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
