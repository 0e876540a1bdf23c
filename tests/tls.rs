//! TLS and mTLS on the server and the load client, with certificates the test makes (rcgen):
//! calls over TLS, plaintext and untrusted clients refused while the server keeps serving, a
//! silent client dropped at the handshake timeout without holding up others, chaos connection
//! faults on TLS connections, `simulate` over TLS and mTLS (embedded and `--target`), and
//! located errors for bad certificate and key files.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tls::TestPki;
use common::{TestServer, call, json_message, path_str};
use serde_json::json;
use streamstorm::client::{ClientTls, ClientTlsFiles, Trust, channels};
use streamstorm::server::{ConnectionCommand, DefaultResponse, ServerSettings, ServerTls, ServerTlsFiles};
use tokio::io::AsyncReadExt;
use tonic::transport::Channel;

const GET_USER: &str = "myapp.UserService/GetUser";
const SUBSCRIBE: &str = "myapp.NotificationService/Subscribe";

fn server_tls(pki: &TestPki, mutual: bool) -> ServerTls {
    let files = ServerTlsFiles {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_ca: mutual.then(|| pki.ca.clone()),
    };
    ServerTls::load(&files).expect("the test certificates load")
}

/// The example protos over TLS; server streams send a message every 20 ms for a long time.
async fn tls_server(tls: ServerTls) -> TestServer {
    let default_response =
        DefaultResponse::Empty { stream_messages: 1_000_000, stream_interval: Duration::from_millis(20) };
    TestServer::start(ServerSettings { tls: Some(tls), default_response, ..ServerSettings::default() }).await
}

/// A lazily connected channel through the load client's TLS connector.
fn tls_channel(server: &TestServer, ca: &Path, identity: Option<(&Path, &Path)>) -> Channel {
    let files = ClientTlsFiles {
        trust: Trust::Roots(ca.to_path_buf()),
        identity: identity.map(|(cert, key)| (cert.to_path_buf(), key.to_path_buf())),
        server_name: None,
    };
    let tls = ClientTls::load(&files).expect("the client's files load");
    channels(&server.addr.to_string(), 1, Duration::from_secs(5), Some(&tls)).unwrap().remove(0)
}

/// A unary call's status code, bounded so a hanging call fails the test.
async fn get_user(server: &TestServer, channel: Channel) -> tonic::Code {
    let request = json_message(&server.pool, "myapp.GetUserRequest", json!({"user_id": "u1"}));
    let outcome =
        tokio::time::timeout(Duration::from_secs(10), call(channel, &server.pool, GET_USER, vec![request]))
            .await
            .expect("the call ends within 10 s");
    outcome.status.code()
}

#[tokio::test]
async fn plaintext_clients_are_refused_and_tls_clients_keep_being_served() {
    let pki = TestPki::new();
    let server = tls_server(server_tls(&pki, false)).await;
    assert_eq!(get_user(&server, tls_channel(&server, &pki.ca, None)).await, tonic::Code::Ok);
    for _ in 0..3 {
        assert_ne!(get_user(&server, server.clone_channel()).await, tonic::Code::Ok);
    }
    assert_eq!(get_user(&server, tls_channel(&server, &pki.ca, None)).await, tonic::Code::Ok);
    // Failed handshakes leave nothing behind in the registry.
    assert!(common::eventually(Duration::from_secs(2), || server.handle.connections.is_empty()).await);
}

#[tokio::test]
async fn mutual_tls_refuses_untrusted_servers_and_clients_without_a_trusted_certificate() {
    let pki = TestPki::new();
    let server = tls_server(server_tls(&pki, true)).await;
    let client = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    let stranger = Some((pki.other_client_cert.as_path(), pki.other_client_key.as_path()));
    assert_eq!(get_user(&server, tls_channel(&server, &pki.ca, client)).await, tonic::Code::Ok);
    // The client does not trust the server's CA.
    assert_ne!(get_user(&server, tls_channel(&server, &pki.other_ca, client)).await, tonic::Code::Ok);
    // No client certificate, or one from a CA the server does not trust.
    assert_ne!(get_user(&server, tls_channel(&server, &pki.ca, None)).await, tonic::Code::Ok);
    assert_ne!(get_user(&server, tls_channel(&server, &pki.ca, stranger)).await, tonic::Code::Ok);
    assert_eq!(get_user(&server, tls_channel(&server, &pki.ca, client)).await, tonic::Code::Ok);
}

#[tokio::test]
async fn a_silent_client_is_dropped_at_the_handshake_timeout_without_holding_up_others() {
    let pki = TestPki::new();
    let timeout = Duration::from_millis(400);
    let server = tls_server(server_tls(&pki, false).with_handshake_timeout(timeout)).await;
    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Another client completes its handshake and call while the silent one holds its task.
    assert_eq!(get_user(&server, tls_channel(&server, &pki.ca, None)).await, tonic::Code::Ok);
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buffer)).await;
    let waited = started.elapsed();
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the server closed the silent connection: {read:?}");
    assert!(waited >= timeout && waited < timeout + Duration::from_secs(2), "closed after {waited:?}");
}

#[tokio::test]
async fn tcp_resets_and_blackholes_reach_tls_connections() {
    let pki = TestPki::new();
    let server = tls_server(server_tls(&pki, false)).await;
    let request = || json_message(&server.pool, "myapp.SubscribeRequest", json!({"topics": ["t"]}));
    let response_type = common::message_type(&server.pool, "myapp.Notification");
    let path = format!("/{SUBSCRIBE}");

    let channel = tls_channel(&server, &pki.ca, None);
    let mut stream =
        common::open_stream(channel, &path, response_type.clone(), futures::stream::iter([request()]))
            .await
            .expect("the stream opens");
    stream.message().await.expect("a first message").expect("not the end");
    server.handle.connections.command_all(ConnectionCommand::Reset);
    let commanded = Instant::now();
    let (_, status) = tokio::time::timeout(Duration::from_secs(5), common::arrivals(&mut stream, commanded))
        .await
        .expect("the reset ends the stream");
    assert!(commanded.elapsed() < Duration::from_secs(1), "ended after {:?}", commanded.elapsed());
    assert!(format!("{status:?}").contains("ConnectionReset"), "{status:?}");

    let channel = tls_channel(&server, &pki.ca, None);
    let mut stream = common::open_stream(channel, &path, response_type, futures::stream::iter([request()]))
        .await
        .expect("the stream opens");
    stream.message().await.expect("a first message").expect("not the end");
    let hold = Duration::from_millis(800);
    server.handle.connections.command_all(ConnectionCommand::Blackhole { hold });
    let commanded = Instant::now();
    let (arrivals, status) =
        tokio::time::timeout(Duration::from_secs(5), common::arrivals(&mut stream, commanded))
            .await
            .expect("the blackhole ends the stream with a reset after its hold");
    // Messages already on the wire may still arrive; nothing is sent once the socket is held.
    assert!(arrivals.iter().all(|at| *at < Duration::from_millis(300)), "{arrivals:?}");
    assert!(
        commanded.elapsed() >= hold - Duration::from_millis(100),
        "ended after {:?}",
        commanded.elapsed()
    );
    assert!(format!("{status:?}").contains("ConnectionReset"), "{status:?}");
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamstorm"))
}

/// `server.tls` with these lines, serving the example protos, and a `load` section.
fn tls_profile(dir: &Path, tls: &str, load_tls: &str) -> std::path::PathBuf {
    let protos = common::repo_root().join("protos/myapp");
    let body = format!(
        "server:\n  protos: [{}]\n  tls:\n{tls}load:\n  connections: 2\n{load_tls}  embedded: {{ stream_interval: 20ms }}\n  scenarios:\n    - {{ method: {SUBSCRIBE}, streams: 20, request: {{ topics: [a] }} }}\n    - {{ method: {GET_USER}, streams: 2, request: {{ user_id: u1 }} }}\n",
        path_str(&protos)
    );
    let path = dir.join("tls.yaml");
    std::fs::write(&path, body).unwrap();
    path
}

/// Runs `simulate ARGS` for 2 s and returns its JSON report; it must exit 0.
fn simulate_report(profile: &Path, args: &[&str]) -> serde_json::Value {
    let report = profile.with_extension("report.json");
    let output = binary()
        .args(["simulate", "--quiet", "--metrics-listen", "127.0.0.1:0", "--duration", "2s", "--profile"])
        .arg(profile)
        .arg("--report")
        .arg(&report)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

fn assert_clean(report: &serde_json::Value) {
    assert_eq!(report["streams"]["failed"], 0, "{report}");
    assert_eq!(report["errors"], json!({}), "{report}");
    assert_eq!(report["reconnects"], 0, "{report}");
    assert!(report["messages"]["received"].as_u64().unwrap() > 100, "{report}");
}

#[test]
fn simulate_over_tls_and_mtls_against_the_embedded_server() {
    let pki = TestPki::new();
    let tls = format!("    cert: {}\n    key: {}\n", path_str(&pki.server_cert), path_str(&pki.server_key));
    // Nothing about TLS in `load`: the client trusts the server's own certificate.
    assert_clean(&simulate_report(&tls_profile(pki.dir.path(), &tls, ""), &[]));
    let mtls = format!("{tls}    client_ca: {}\n", path_str(&pki.ca));
    let load_tls = format!(
        "  tls: {{ ca: {}, cert: {}, key: {}, server_name: localhost }}\n",
        path_str(&pki.ca),
        path_str(&pki.client_cert),
        path_str(&pki.client_key)
    );
    assert_clean(&simulate_report(&tls_profile(pki.dir.path(), &mtls, &load_tls), &[]));
}

#[tokio::test]
async fn simulate_target_drives_a_separate_mtls_serve_described_by_reflection() {
    let pki = TestPki::new();
    let served = common::spawn_serve_process(
        &[
            "--protos",
            path_str(&common::repo_root().join("protos/myapp")),
            "--default-stream-messages",
            "1000000",
            "--default-stream-interval",
            "20ms",
            "--tls-cert",
            path_str(&pki.server_cert),
            "--tls-key",
            path_str(&pki.server_key),
            "--tls-client-ca",
            path_str(&pki.ca),
        ],
        &[],
    )
    .await;
    // No protos: the client asks the target over reflection, over mTLS.
    let profile = pki.path("load.yaml");
    let scenarios = format!(
        "load:\n  scenarios:\n    - {{ method: {SUBSCRIBE}, streams: 10, request: {{ topics: [a] }} }}\n"
    );
    std::fs::write(&profile, scenarios).unwrap();
    let target = served.addr.to_string();
    let args = [
        "--target",
        &target,
        "--tls-ca",
        path_str(&pki.ca),
        "--tls-cert",
        path_str(&pki.client_cert),
        "--tls-key",
        path_str(&pki.client_key),
    ];
    // The server is another process: blocking this test's thread holds up nothing it needs.
    assert_clean(&simulate_report(&profile, &args));
}

/// `validate` (or another command) on `args`: its exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = binary().args(args).output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn bad_certificate_and_key_files_are_located_errors() {
    let pki = TestPki::new();
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
        .unwrap();
    let empty = pki.path("empty.pem");
    std::fs::write(&empty, "nothing here\n").unwrap();
    let missing = pki.path("missing.pem");
    let cases = [
        (path_str(&missing), path_str(&pki.server_key), "server.tls.cert", "missing.pem: cannot read"),
        (path_str(&garbage), path_str(&pki.server_key), "server.tls.cert", "garbage.pem: not valid PEM"),
        (
            path_str(&empty),
            path_str(&pki.server_key),
            "server.tls.cert",
            "empty.pem: no certificates in the file",
        ),
        (
            path_str(&pki.server_cert),
            path_str(&empty),
            "server.tls.key",
            "empty.pem: no private key in the file",
        ),
        (
            path_str(&pki.server_cert),
            path_str(&pki.client_key),
            "server.tls.key",
            "client-key.pem: does not match the certificate in",
        ),
    ];
    for (cert, key, field, message) in cases {
        let tls = format!("    cert: {cert}\n    key: {key}\n");
        let profile = tls_profile(pki.dir.path(), &tls, "");
        let (line, column) = if field.ends_with("cert") { (4, 11) } else { (5, 10) };
        let located = format!("tls.yaml:{line}:{column}: {field}: ");
        for command in [
            vec!["validate"],
            vec!["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--profile"],
        ] {
            let mut args = command.clone();
            args.push(path_str(&profile));
            let (code, stderr) = run(&args);
            assert_eq!(code, Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(&located) && stderr.contains(message), "{args:?}: {stderr}");
        }
    }
    // A client CA that is no certificate, and the same problems named by flags.
    let tls = format!(
        "    cert: {}\n    key: {}\n    client_ca: {}\n",
        path_str(&pki.server_cert),
        path_str(&pki.server_key),
        path_str(&empty)
    );
    let (code, stderr) = run(&["validate", path_str(&tls_profile(pki.dir.path(), &tls, ""))]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("tls.yaml:6:16: server.tls.client_ca: ")
            && stderr.contains("empty.pem: no certificates"),
        "{stderr}"
    );
    let (code, stderr) = run(&[
        "serve",
        "--protos",
        path_str(&common::repo_root().join("protos/myapp")),
        "--tls-cert",
        path_str(&missing),
        "--tls-key",
        path_str(&pki.server_key),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("missing.pem: --tls-cert: cannot read"), "{stderr}");
}
