//! The transparent relay as real clients see it: grpcio, grpc-js and grpcurl call all four
//! patterns through `streamstorm proxy` (no protos given to it, no chaos) in front of the
//! Python grpcio upstream, and every message, header, trailer, status with details and deadline
//! arrives unchanged and in order. The workspace's baseline tonic server is an upstream too.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::interop::{Client, ClientCall, grpcurl};
use common::proxy::{Proxy, RelayLoad, Upstream, relay_check};
use serde_json::{Value, json};

/// grpcurl's `-proto` flags for the example protos.
fn proto_flags(file: &str) -> Vec<String> {
    let protos = common::repo_root().join("protos");
    vec!["-import-path".into(), common::path_str(&protos).into(), "-proto".into(), file.into()]
}

/// grpcurl's messages for one call of `method` with `flags` (and `stdin` for `-d @`).
async fn grpcurl_messages(
    target: SocketAddr,
    proto: &str,
    flags: &[&str],
    method: &str,
    stdin: Option<&str>,
) -> Vec<Value> {
    let mut all: Vec<String> = proto_flags(proto);
    all.extend(flags.iter().map(|flag| flag.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let output = grpcurl(target, &all, &[method], stdin).await;
    assert!(output.success, "grpcurl {method} via {target}: {}\n{}", output.stdout, output.stderr);
    output.messages()
}

#[tokio::test]
async fn grpcio_and_grpc_js_get_every_message_of_every_pattern_unchanged() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&upstream.addr.to_string(), "", &[]).await;
    let load = RelayLoad::all_patterns(25, 8);
    let (python, node) = futures::future::join(
        relay_check(Client::Python, proxy.addr(), &load, &[]),
        relay_check(Client::Node, proxy.addr(), &load, &[]),
    )
    .await;
    python.assert_all_ok("through the proxy");
    node.assert_all_ok("through the proxy");
    // Both clients' calls reached the upstream, each once: 4 patterns × 25 calls × 2 clients.
    let seen = upstream.calls().len();
    assert_eq!(seen, 200, "the upstream saw {seen} calls");
}

const UPLOAD: &str = "myapp.UploadService/UploadFile";
const CHAT: &str = "myapp.ChatService/Chat";

/// One grpcurl call: its proto, flags, method and input, and how many messages it answers.
struct GrpcurlCase<'a> {
    proto: &'a str,
    flags: &'a [&'a str],
    method: &'a str,
    stdin: Option<&'a str>,
    count: usize,
}

impl<'a> GrpcurlCase<'a> {
    fn new(proto: &'a str, flags: &'a [&'a str], method: &'a str, count: usize) -> Self {
        Self { proto, flags, method, stdin: None, count }
    }
}

#[tokio::test]
async fn grpcurl_sees_through_the_proxy_what_it_sees_directly_on_all_four_patterns() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&upstream.addr.to_string(), "", &[]).await;
    let chunks = r#"{"data": "AAEC", "sequence": 0} {"data": "AwQF", "sequence": 1, "isLast": true}"#;
    let chat = r#"{"content": "hello"} {"content": "again"} {"content": "bye"}"#;
    let cases = [
        GrpcurlCase::new("myapp/user.proto", &["-d", r#"{"user_id": "g1"}"#], "myapp.UserService/GetUser", 1),
        GrpcurlCase::new(
            "myapp/notification.proto",
            &["-H", "x-upstream-messages: 6", "-d", r#"{"topics": ["g"], "resumeAfter": "100"}"#],
            "myapp.NotificationService/Subscribe",
            6,
        ),
        GrpcurlCase {
            stdin: Some(chunks),
            ..GrpcurlCase::new("myapp/upload.proto", &["-d", "@"], UPLOAD, 1)
        },
        GrpcurlCase { stdin: Some(chat), ..GrpcurlCase::new("myapp/chat.proto", &["-d", "@"], CHAT, 3) },
    ];
    for case in cases {
        let GrpcurlCase { proto, flags, method, stdin, count } = case;
        let direct = grpcurl_messages(upstream.addr, proto, flags, method, stdin).await;
        let relayed = grpcurl_messages(proxy.addr(), proto, flags, method, stdin).await;
        assert_eq!(direct.len(), count, "{method} directly: {direct:?}");
        assert_eq!(relayed, direct, "{method}: through the proxy, then directly");
    }
    // The content is the upstream's, in order.
    let notifications = grpcurl_messages(
        proxy.addr(),
        "myapp/notification.proto",
        &["-H", "x-upstream-messages: 3", "-d", r#"{"topics": ["g"], "resumeAfter": "100"}"#],
        "myapp.NotificationService/Subscribe",
        None,
    )
    .await;
    let sequences: Vec<&Value> = notifications.iter().map(|message| &message["sequence"]).collect();
    assert_eq!(sequences, [&json!("101"), &json!("102"), &json!("103")]);
}

#[tokio::test]
async fn metadata_trailers_status_details_and_deadline_pass_through() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&upstream.addr.to_string(), "", &[]).await;
    for client in [Client::Python, Client::Node] {
        let mut call = ClientCall::new(client, proxy.addr(), "myapp.NotificationService/Subscribe")
            .requests(json!([{"topics": ["m"]}]))
            .arg("--timeout")
            .arg("20");
        for pair in [
            format!("x-call-tag={client:?}"),
            "x-upstream-messages=2".into(),
            "x-upstream-status=FAILED_PRECONDITION".into(),
            "x-upstream-status-message=upstream says no".into(),
            "x-upstream-status-details=1".into(),
            "x-echo-color=blue".into(),
            "x-trailer-echo-shape=round".into(),
            "x-echo-raw-bin=AAECAwQ=".into(),
        ] {
            call = call.arg("--metadata").arg(pair);
        }
        if client == Client::Python {
            call = call.arg("--rich-status");
        }
        let outcome = call.run().await;
        assert_eq!(outcome.responses.len(), 2, "{client:?}: {outcome:?}");
        assert_eq!(
            (outcome.code.as_str(), outcome.details.as_str()),
            ("FAILED_PRECONDITION", "upstream says no")
        );
        assert_eq!(outcome.initial_metadata["x-echo-color"], "blue", "{client:?}: {outcome:?}");
        assert_eq!(outcome.initial_metadata["x-echo-raw-bin"], "AAECAwQ=", "{client:?}: {outcome:?}");
        assert_eq!(outcome.trailing_metadata["x-trailer-echo-shape"], "round", "{client:?}: {outcome:?}");
        assert!(outcome.trailing_metadata.contains_key("grpc-status-details-bin"), "{client:?}: {outcome:?}");
        if client == Client::Python {
            let details = &outcome.rich_status.as_ref().expect("a rich status")["details"][0];
            assert_eq!(details["reason"], "UPSTREAM_SAID_SO", "{outcome:?}");
        }
        // The client's deadline reached the upstream (`grpc-timeout`), a little spent.
        let seen =
            upstream.wait_for_calls("x-call-tag", &format!("{client:?}"), 1, Duration::from_secs(5)).await;
        let deadline = seen[0]["deadline_s"].as_f64().expect("the upstream saw a deadline");
        assert!((15.0..=20.0).contains(&deadline), "{client:?}: deadline at the upstream {deadline} s");
        assert_eq!(seen[0]["metadata"]["x-echo-color"], "blue");
    }
}

#[tokio::test]
async fn the_baseline_tonic_server_behind_the_proxy_answers_as_it_does_directly() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let baseline = listener.local_addr().unwrap();
    let behaviour = streamstorm_baseline::Behaviour {
        stream_messages: 40,
        idle_delay: Duration::from_secs(3600),
        per_message_delay: None,
    };
    let server = tokio::spawn(streamstorm_baseline::serve(listener, behaviour));
    let proxy = Proxy::start(&baseline.to_string(), "", &[]).await;
    for client in [Client::Python, Client::Node] {
        for (method, request) in [
            ("myapp.UserService/GetUser", json!([{"user_id": "alice"}])),
            ("myapp.NotificationService/Subscribe", json!([{"topics": ["load"]}])),
        ] {
            let direct = ClientCall::new(client, baseline, method).requests(request.clone()).run().await;
            let relayed = ClientCall::new(client, proxy.addr(), method).requests(request).run().await;
            assert_eq!(direct.code, "OK", "{client:?} {method} directly: {direct:?}");
            assert_eq!(
                (relayed.code.as_str(), &relayed.responses),
                ("OK", &direct.responses),
                "{client:?} {method}"
            );
        }
    }
    server.abort();
}
