//! Stub outputs as real clients see them: rich error details decoded by grpcio-status,
//! response headers and trailers in grpcio and grpc-js.

mod common;

use common::TestServer;
use common::interop::{Client, ClientCall};
use serde_json::json;

const STUBS: &str = r#"
- service: myapp.UserService
  method: GetUser
  input: { equals: { user_id: "locked" } }
  output:
    error: "account locked"
    code: FAILED_PRECONDITION
    details:
      - "@type": type.googleapis.com/google.rpc.ErrorInfo
        reason: ACCOUNT_LOCKED
        domain: users.example.com
        metadata: { until: "2030-01-01" }
      - type: google.rpc.RetryInfo
        retry_delay: 30s
- service: myapp.UserService
  method: GetUser
  input: { equals: { user_id: "u1" } }
  output:
    data: { name: "Ada" }
    headers: { x-request-source: "stub", x-multi: "a;b" }
    trailers: { x-served-by: "streamstorm" }
"#;

async fn server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stubs.yaml");
    std::fs::write(&path, STUBS).unwrap();
    (TestServer::start_with_stubs(&["protos/myapp"], &[path.to_str().unwrap()]).await, dir)
}

#[tokio::test]
async fn python_decodes_error_details() {
    let (server, _dir) = server().await;
    let outcome = ClientCall::new(Client::Python, server.addr, "myapp.UserService/GetUser")
        .requests(json!([{"user_id": "locked"}]))
        .arg("--rich-status")
        .run()
        .await;
    assert_eq!(outcome.code, "FAILED_PRECONDITION");
    assert_eq!(outcome.details, "account locked");
    let rich = outcome.rich_status.expect("grpc-status-details-bin is present");
    assert_eq!(rich["message"], json!("account locked"));
    assert_eq!(
        rich["details"],
        json!([
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCOUNT_LOCKED",
             "domain": "users.example.com", "metadata": {"until": "2030-01-01"}},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retry_delay": "30s"}
        ])
    );
}

#[tokio::test]
async fn headers_and_trailers_reach_both_clients() {
    let (server, _dir) = server().await;
    for client in [Client::Python, Client::Node] {
        let outcome = ClientCall::new(client, server.addr, "myapp.UserService/GetUser")
            .requests(json!([{"user_id": "u1"}]))
            .run()
            .await;
        assert_eq!(outcome.code, "OK", "{client:?}: {}", outcome.details);
        assert_eq!(outcome.responses, [json!({"name": "Ada"})], "{client:?}");
        assert_eq!(outcome.initial_metadata["x-request-source"], json!("stub"), "{client:?}");
        assert_eq!(outcome.initial_metadata["x-multi"], json!("a, b"), "{client:?}");
        assert_eq!(outcome.trailing_metadata["x-served-by"], json!("streamstorm"), "{client:?}");
    }
}
