//! Upstream problems as clients see them through `streamstorm proxy`: an upstream down at start
//! (refused, then serving once it comes up), killed mid-run (streams in flight fail with
//! `UNAVAILABLE` naming it; new ones go through once it is back), an upstream that speaks only
//! HTTP/1, and a `--upstream` that is not HOST:PORT (exit 2 naming the flag). Each is counted
//! under its reason, and the proxy keeps serving.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::interop::{Client, ClientCall, ClientOutcome};
use common::proxy::{Http1Server, Proxy, Upstream};
use serde_json::json;

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

async fn get_user(client: Client, proxy: &Proxy) -> ClientOutcome {
    ClientCall::new(client, proxy.addr(), "myapp.UserService/GetUser")
        .requests(json!([{"user_id": "b1"}]))
        .arg("--timeout")
        .arg("10")
        .run()
        .await
}

/// An upstream on `addr`'s port, once the port is free again.
async fn upstream_on(addr: SocketAddr) -> Upstream {
    Upstream::start_on_port(addr.port()).await
}

#[tokio::test]
async fn an_upstream_down_at_start_is_unavailable_until_it_comes_up() {
    let addr = closed_port();
    let proxy = Proxy::start(&addr.to_string(), "", &[]).await;
    for client in [Client::Python, Client::Node] {
        let outcome = get_user(client, &proxy).await;
        assert_eq!(outcome.code, "UNAVAILABLE", "{client:?}: {outcome:?}");
        assert!(
            outcome.details.contains(&addr.to_string()),
            "{client:?}: the status names no upstream: {outcome:?}"
        );
    }
    assert!(proxy.upstream_errors("refused").await >= 2.0);
    let _upstream = upstream_on(addr).await;
    for client in [Client::Python, Client::Node] {
        let outcome = get_user(client, &proxy).await;
        assert_eq!((outcome.code.as_str(), outcome.responses.len()), ("OK", 1), "{client:?}: {outcome:?}");
    }
}

#[tokio::test]
async fn an_upstream_killed_mid_run_fails_the_streams_in_flight_and_the_proxy_carries_on() {
    let mut upstream = Upstream::start().await;
    let addr = upstream.addr;
    let proxy = Proxy::start(&addr.to_string(), "", &[]).await;
    let streams = |client: Client| {
        ClientCall::new(client, proxy.addr(), "myapp.NotificationService/Subscribe")
            .requests(json!([{"topics": ["k"]}]))
            .arg("--metadata")
            .arg("x-upstream-messages=-1")
            .arg("--metadata")
            .arg("x-upstream-interval-ms=50")
            .arg("--timeout")
            .arg("20")
            .call_starts_ms(&[0; 5])
            .run_calls()
    };
    let in_flight = futures::future::join(streams(Client::Python), streams(Client::Node));
    let kill = async {
        // Every stream has had messages by then (the clients start within a few seconds; the
        // upstream reports a call only once it ends, so its record cannot say when they began).
        tokio::time::sleep(Duration::from_secs(5)).await;
        upstream.kill().await;
    };
    let ((python, node), ()) = futures::future::join(in_flight, kill).await;
    for (client, calls) in [(Client::Python, python), (Client::Node, node)] {
        for call in calls {
            assert_eq!(call.code, "UNAVAILABLE", "{client:?}: {call:?}");
            assert!(
                call.details.contains(&addr.to_string()),
                "{client:?}: the status names no upstream: {call:?}"
            );
            assert!(!call.responses.is_empty(), "{client:?}: no message before the kill: {call:?}");
        }
    }
    let lost = proxy.upstream_errors("reset").await + proxy.upstream_errors("closed").await;
    assert!(lost >= 1.0, "no lost upstream connection counted");
    let _back = upstream_on(addr).await;
    let outcome = get_user(Client::Python, &proxy).await;
    assert_eq!(outcome.code, "OK", "the proxy does not serve once the upstream is back: {outcome:?}");
}

#[tokio::test]
async fn an_upstream_speaking_http1_is_unavailable_saying_so() {
    let http1 = Http1Server::start().await;
    let proxy = Proxy::start(&http1.addr.to_string(), "", &[]).await;
    for client in [Client::Python, Client::Node] {
        let outcome = get_user(client, &proxy).await;
        assert_eq!(outcome.code, "UNAVAILABLE", "{client:?}: {outcome:?}");
        assert!(outcome.details.contains(&http1.addr.to_string()), "{client:?}: {outcome:?}");
        assert!(outcome.details.contains("HTTP/2"), "{client:?}: the status does not say why: {outcome:?}");
    }
    assert!(proxy.upstream_errors("protocol").await >= 2.0);
    // The proxy still answers: another call gets the same clear status, not a hang.
    assert_eq!(get_user(Client::Python, &proxy).await.code, "UNAVAILABLE");
}

#[tokio::test]
async fn a_bad_upstream_value_exits_2_naming_the_flag() {
    for value in ["not-an-address", "127.0.0.1", "127.0.0.1:99999", ":50051", ""] {
        let output = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
                .args([
                    "proxy",
                    "--upstream",
                    value,
                    "--listen",
                    "127.0.0.1:0",
                    "--metrics-listen",
                    "127.0.0.1:0",
                ])
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("`proxy --upstream {value:?}` kept running"))
        .expect("the binary starts");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "--upstream {value:?}: {stderr}");
        assert!(
            stderr.contains("--upstream"),
            "--upstream {value:?}: the error does not name the flag: {stderr}"
        );
    }
}
