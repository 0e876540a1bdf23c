//! Test certificates made by the tests themselves with rcgen: a CA, a server certificate for
//! 127.0.0.1 and localhost, a client certificate, and a second CA (with its own client
//! certificate) that nothing trusts. Written as PEM files into a temporary directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// PEM files of a small PKI, removed with the directory.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    /// The CA that issued the server and client certificates.
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA nobody trusts, and a client certificate it issued.
    pub other_ca: PathBuf,
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = |name: &str| dir.path().join(name);
        let ca = certificate_authority("streamstorm test CA");
        write(&path("ca.pem"), &ca.pem());
        let server = leaf(&ca, "127.0.0.1", &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        write(&path("server.pem"), &server.0);
        write(&path("server-key.pem"), &server.1);
        let client = leaf(&ca, "load client", &["client.test"], ExtendedKeyUsagePurpose::ClientAuth);
        write(&path("client.pem"), &client.0);
        write(&path("client-key.pem"), &client.1);
        let other = certificate_authority("untrusted CA");
        write(&path("other-ca.pem"), &other.pem());
        let other_client = leaf(&other, "stranger", &["stranger.test"], ExtendedKeyUsagePurpose::ClientAuth);
        write(&path("other-client.pem"), &other_client.0);
        write(&path("other-client-key.pem"), &other_client.1);
        Self {
            ca: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server-key.pem"),
            client_cert: path("client.pem"),
            client_key: path("client-key.pem"),
            other_ca: path("other-ca.pem"),
            other_client_cert: path("other-client.pem"),
            other_client_key: path("other-client-key.pem"),
            dir,
        }
    }

    /// A path inside the directory (for files a test writes itself).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A self-signed CA certificate and its key.
fn certificate_authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().expect("a CA key");
    CertifiedIssuer::self_signed(params, key).expect("a CA certificate")
}

/// A certificate issued by `ca` for `names`, as PEM, with its key as PEM.
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    common_name: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("certificate parameters");
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().expect("a key");
    let certificate = params.signed_by(&key, &**ca).expect("a certificate");
    (certificate.pem(), key.serialize_pem())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
}
