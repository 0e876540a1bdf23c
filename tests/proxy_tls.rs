//! TLS on either side of `streamstorm proxy`: clients over TLS to the proxy (`--tls-cert`,
//! `--tls-key`), the proxy over TLS to a TLS upstream (`--upstream-tls-ca`, with the server
//! name from the upstream host or `--upstream-server-name`), and both at once, every message
//! checked by grpcio's relay check and by grpcurl. An upstream whose certificate the proxy
//! does not trust is `UNAVAILABLE`, counted under `tls`.

mod common;

use common::interop::{Client, ClientCall, grpcurl_over};
use common::path_str;
use common::proxy::{Proxy, RelayLoad, Upstream, relay_check};
use common::tls::TestPki;

/// The relay check (grpcio) and a grpcurl Subscribe through `proxy`, over TLS when
/// `client_tls` (trusting `pki`'s CA).
async fn assert_relays(proxy: &Proxy, pki: &TestPki, client_tls: bool, context: &str) {
    let ca = path_str(&pki.ca).to_owned();
    let extra: Vec<&str> = if client_tls { vec!["--tls-root", &ca] } else { vec![] };
    relay_check(Client::Python, proxy.addr(), &RelayLoad::all_patterns(10, 5), &extra)
        .await
        .assert_all_ok(context);
    let transport: Vec<&str> = if client_tls { vec!["-cacert", &ca] } else { vec!["-plaintext"] };
    let protos = common::repo_root().join("protos");
    let flags = ["-import-path", path_str(&protos), "-proto", "myapp/notification.proto"];
    let flags = [&flags[..], &["-H", "x-upstream-messages: 4", "-d", r#"{"topics": ["tls"]}"#]].concat();
    let output =
        grpcurl_over(&transport, proxy.addr(), &flags, &["myapp.NotificationService/Subscribe"], None).await;
    assert!(output.success, "{context}: grpcurl: {}", output.stderr);
    let messages: Vec<String> =
        output.messages().iter().map(|message| message["message"].as_str().unwrap().to_owned()).collect();
    assert_eq!(messages, ["tls #1", "tls #2", "tls #3", "tls #4"], "{context}");
}

#[tokio::test]
async fn clients_over_tls_to_the_proxy() {
    let pki = TestPki::new();
    let upstream = Upstream::start().await;
    let tls = ["--tls-cert", path_str(&pki.server_cert), "--tls-key", path_str(&pki.server_key)];
    let proxy = Proxy::start(&upstream.addr.to_string(), "", &tls).await;
    assert_relays(&proxy, &pki, true, "client-side TLS").await;
}

#[tokio::test]
async fn the_proxy_over_tls_to_the_upstream() {
    let pki = TestPki::new();
    let upstream = Upstream::start_tls(&pki.server_cert, &pki.server_key).await;
    let proxy = Proxy::start(&upstream.addr.to_string(), "", &["--upstream-tls-ca", path_str(&pki.ca)]).await;
    assert_relays(&proxy, &pki, false, "upstream-side TLS").await;
    // The certificate also names localhost: the name the proxy checks can be given.
    let by_name = ["--upstream-tls-ca", path_str(&pki.ca), "--upstream-server-name", "localhost"];
    let proxy = Proxy::start(&upstream.addr.to_string(), "", &by_name).await;
    assert_relays(&proxy, &pki, false, "upstream-side TLS, server name localhost").await;
}

#[tokio::test]
async fn tls_on_both_sides() {
    let pki = TestPki::new();
    let upstream = Upstream::start_tls(&pki.server_cert, &pki.server_key).await;
    let args = [
        "--upstream-tls-ca",
        path_str(&pki.ca),
        "--tls-cert",
        path_str(&pki.server_cert),
        "--tls-key",
        path_str(&pki.server_key),
    ];
    let proxy = Proxy::start(&upstream.addr.to_string(), "", &args).await;
    assert_relays(&proxy, &pki, true, "TLS on both sides").await;
}

#[tokio::test]
async fn an_upstream_certificate_the_proxy_does_not_trust_is_unavailable() {
    let pki = TestPki::new();
    let upstream = Upstream::start_tls(&pki.server_cert, &pki.server_key).await;
    let proxy =
        Proxy::start(&upstream.addr.to_string(), "", &["--upstream-tls-ca", path_str(&pki.other_ca)]).await;
    let outcome = ClientCall::new(Client::Python, proxy.addr(), "myapp.UserService/GetUser")
        .arg("--timeout")
        .arg("10")
        .run()
        .await;
    assert_eq!(outcome.code, "UNAVAILABLE", "{outcome:?}");
    assert!(outcome.details.contains(&upstream.addr.to_string()), "{outcome:?}");
    assert!(upstream.calls().is_empty(), "a call reached an upstream the proxy should not trust");
    assert!(proxy.upstream_errors("tls").await >= 1.0);
}
