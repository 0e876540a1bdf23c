//! The `upstream` fault: after N response messages the proxy's connection to the upstream (a
//! connection of the stream's own) is reset or closed, as if the backend crashed. The client
//! gets the N messages, then `UNAVAILABLE` naming the upstream; the upstream sees its call end;
//! other streams through the same proxy carry on; the fault is counted.

mod common;

use std::time::Duration;

use common::interop::{Client, ClientCall};
use common::proxy::{Proxy, Upstream};
use serde_json::json;

/// Each client's Subscribe gets the fault; a Chat on the same proxy at the same time must not.
async fn upstream_fault_case(mode: &str) {
    let upstream = Upstream::start().await;
    let rule = format!(
        "match: {{ method: myapp.NotificationService/Subscribe }}\n      upstream: {{ rate: 100%, after_messages: 3, mode: {mode} }}"
    );
    let proxy = Proxy::with_rule(upstream.addr, &rule).await;
    for client in [Client::Python, Client::Node] {
        let tag = format!("{mode}-{client:?}");
        let subscribe = ClientCall::new(client, proxy.addr(), "myapp.NotificationService/Subscribe")
            .requests(json!([{"topics": ["u"]}]))
            .arg("--timeout")
            .arg("15")
            .arg("--metadata")
            .arg(format!("x-call-tag={tag}"))
            // An endless stream, a message every 50 ms: only the fault ends it.
            .arg("--metadata")
            .arg("x-upstream-messages=-1")
            .arg("--metadata")
            .arg("x-upstream-interval-ms=50");
        let chat = (0..10).map(|n| json!({"content": format!("m{n}")})).collect::<Vec<_>>();
        let bystander = ClientCall::new(client, proxy.addr(), "myapp.ChatService/Chat")
            .requests(json!(chat))
            .arg("--send-interval-ms")
            .arg("60")
            .arg("--timeout")
            .arg("15");
        let (cut, bystander) = futures::future::join(subscribe.run(), bystander.run()).await;
        assert_eq!(cut.code, "UNAVAILABLE", "{client:?} {mode}: {cut:?}");
        assert!(cut.details.contains(&upstream.addr.to_string()), "{client:?} {mode}: {cut:?}");
        let sequences: Vec<&serde_json::Value> = cut.responses.iter().map(|r| &r["sequence"]).collect();
        assert_eq!(sequences, [&json!("1"), &json!("2"), &json!("3")], "{client:?} {mode}: {cut:?}");
        assert_eq!(
            (bystander.code.as_str(), bystander.responses.len()),
            ("OK", 10),
            "{client:?}: {bystander:?}"
        );
        let seen = upstream.wait_for_calls("x-call-tag", &tag, 1, Duration::from_secs(5)).await;
        assert_eq!(seen.len(), 1, "{client:?} {mode}: the upstream's call never ended");
        assert_ne!(seen[0]["code"], "OK", "{client:?} {mode}: {seen:?}");
    }
    assert_eq!(proxy.metric("streamstorm_faults_injected_total", &[("kind", "upstream")]).await, 2.0);
}

#[tokio::test]
async fn an_upstream_reset_mid_stream_is_unavailable_naming_the_upstream() {
    upstream_fault_case("reset").await;
}

#[tokio::test]
async fn an_upstream_close_mid_stream_is_unavailable_naming_the_upstream() {
    upstream_fault_case("close").await;
}
