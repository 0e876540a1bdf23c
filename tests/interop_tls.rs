//! Real clients over TLS, with certificates the test makes (rcgen): grpcurl lists services and
//! reads a server stream with `-cacert`, and with mTLS succeeds with `-cert/-key` and fails
//! without; Python grpcio calls with `grpc.ssl_channel_credentials(root, key, chain)`. A
//! plaintext grpcurl and one that does not trust the CA fail, the `serve` binary counts the
//! failed handshakes as `tls_error`, and keeps serving.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::interop::{Client, ClientCall, GrpcurlOutput, grpcurl_over};
use common::tls::TestPki;
use common::{TestServer, path_str};
use streamstorm::server::{DefaultResponse, ServerSettings, ServerTls, ServerTlsFiles};

const SUBSCRIBE: &str = "myapp.NotificationService/Subscribe";
const PLAINTEXT: &[&str] = &["-plaintext", "-connect-timeout", "3"];

async fn tls_server(pki: &TestPki, mutual: bool) -> TestServer {
    let files = ServerTlsFiles {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_ca: mutual.then(|| pki.ca.clone()),
    };
    let tls = ServerTls::load(&files).expect("the test certificates load");
    let default_response = DefaultResponse::Empty { stream_messages: 3, stream_interval: Duration::ZERO };
    TestServer::start(ServerSettings { tls: Some(tls), default_response, ..ServerSettings::default() }).await
}

/// grpcurl over TLS trusting `ca`, with `identity` flags (a client certificate): `list`, or
/// `Subscribe` to one topic.
async fn grpcurl_tls(
    addr: SocketAddr,
    ca: &std::path::Path,
    identity: &[&str],
    method: Option<&str>,
) -> GrpcurlOutput {
    // grpcurl retries a failed handshake until its connect timeout (10 s by default).
    let mut transport = vec!["-connect-timeout", "3", "-cacert", path_str(ca)];
    transport.extend_from_slice(identity);
    match method {
        None => grpcurl_over(&transport, addr, &[], &["list"], None).await,
        Some(method) => grpcurl_over(&transport, addr, &["-d", r#"{"topics":["a"]}"#], &[method], None).await,
    }
}

#[tokio::test]
async fn grpcurl_lists_and_streams_over_tls_and_refuses_plaintext_and_untrusted_servers() {
    let pki = TestPki::new();
    let server = tls_server(&pki, false).await;
    let output = grpcurl_tls(server.addr, &pki.ca, &[], None).await;
    assert!(output.success, "{}", output.stderr);
    assert!(output.stdout.lines().any(|line| line == "myapp.NotificationService"), "{}", output.stdout);
    let output = grpcurl_tls(server.addr, &pki.ca, &[], Some(SUBSCRIBE)).await;
    assert!(output.success, "{}", output.stderr);
    assert_eq!(output.messages().len(), 3, "{}", output.stdout);

    let plaintext = grpcurl_over(PLAINTEXT, server.addr, &[], &["list"], None).await;
    assert!(!plaintext.success, "{}", plaintext.stdout);
    let untrusted = grpcurl_tls(server.addr, &pki.other_ca, &[], None).await;
    assert!(!untrusted.success, "{}", untrusted.stdout);
    assert!(untrusted.stderr.contains("certificate"), "{}", untrusted.stderr);
    // Still serving.
    let output = grpcurl_tls(server.addr, &pki.ca, &[], Some(SUBSCRIBE)).await;
    assert!(output.success, "{}", output.stderr);
}

#[tokio::test]
async fn grpcurl_with_mtls_needs_a_client_certificate() {
    let pki = TestPki::new();
    let server = tls_server(&pki, true).await;
    let identity = ["-cert", path_str(&pki.client_cert), "-key", path_str(&pki.client_key)];
    let output = grpcurl_tls(server.addr, &pki.ca, &identity, None).await;
    assert!(output.success, "{}", output.stderr);
    let output = grpcurl_tls(server.addr, &pki.ca, &identity, Some(SUBSCRIBE)).await;
    assert!(output.success, "{}", output.stderr);
    assert_eq!(output.messages().len(), 3, "{}", output.stdout);

    let anonymous = grpcurl_tls(server.addr, &pki.ca, &[], None).await;
    assert!(!anonymous.success, "{}", anonymous.stdout);
    let stranger = ["-cert", path_str(&pki.other_client_cert), "-key", path_str(&pki.other_client_key)];
    let output = grpcurl_tls(server.addr, &pki.ca, &stranger, None).await;
    assert!(!output.success, "{}", output.stdout);
}

#[tokio::test]
async fn python_grpcio_calls_with_ssl_channel_credentials() {
    let pki = TestPki::new();
    let server = tls_server(&pki, true).await;
    let call = |with_identity: bool| {
        let call = ClientCall::new(Client::Python, server.addr, SUBSCRIBE)
            .requests(serde_json::json!([{"topics": ["a"]}]))
            .arg("--timeout")
            .arg("10")
            .arg("--tls-root")
            .arg(path_str(&pki.ca));
        if with_identity {
            call.arg("--tls-cert")
                .arg(path_str(&pki.client_cert))
                .arg("--tls-key")
                .arg(path_str(&pki.client_key))
        } else {
            call
        }
    };
    let outcome = call(true).run().await;
    assert_eq!(outcome.code, "OK", "{}: {}", outcome.details, outcome.stderr);
    assert_eq!(outcome.responses.len(), 3, "{:?}", outcome.responses);
    let outcome = call(false).run().await;
    assert_eq!(outcome.code, "UNAVAILABLE", "{}", outcome.details);
}

#[tokio::test]
async fn the_serve_binary_counts_failed_handshakes_and_keeps_serving() {
    let pki = TestPki::new();
    let served = common::spawn_serve_process(
        &[
            "--protos",
            path_str(&common::repo_root().join("protos/myapp")),
            "--tls-cert",
            path_str(&pki.server_cert),
            "--tls-key",
            path_str(&pki.server_key),
        ],
        &[],
    )
    .await;
    for _ in 0..2 {
        let plaintext = grpcurl_over(PLAINTEXT, served.addr, &[], &["list"], None).await;
        assert!(!plaintext.success, "{}", plaintext.stdout);
    }
    let output = grpcurl_tls(served.addr, &pki.ca, &[], None).await;
    assert!(output.success, "{}", output.stderr);
    let page = common::scrape::get(served.metrics, "/metrics").await;
    let failed: f64 = common::scrape::parse_samples(&page)
        .into_iter()
        .filter(|(series, _)| {
            series.name == "streamstorm_connections_closed_total"
                && series.labels.get("reason").map(String::as_str) == Some("tls_error")
        })
        .map(|(_, value)| value)
        .sum();
    // grpcurl may dial more than once per attempt, so at least one failed handshake each.
    assert!(failed >= 2.0, "{page}");
}
