//! grpcurl (1.8, reflection v1alpha only) against the server: listing, describing, and every
//! call pattern, through reflection and through `.proto` files.

mod common;

use common::TestServer;
use common::interop::grpcurl;
use serde_json::json;

#[tokio::test]
async fn lists_every_service_through_reflection() {
    let server = TestServer::start_echo().await;
    let output = grpcurl(server.addr, &[], &["list"], None).await;
    assert!(output.success, "{}", output.stderr);
    let services: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(services, common::EXAMPLE_SERVICES);
    let output = grpcurl(server.addr, &[], &["describe", "myapp.ChatService"], None).await;
    assert!(
        output
            .stdout
            .contains("rpc Chat ( stream .myapp.ChatMessage ) returns ( stream .myapp.ChatMessage );"),
        "{}",
        output.stdout
    );
}

#[tokio::test]
async fn unary_through_reflection_maps_every_field_kind() {
    let server = TestServer::start_echo().await;
    let output =
        grpcurl(server.addr, &["-d", r#"{"user_id":"u1"}"#], &["myapp.UserService/GetUser"], None).await;
    assert!(output.success, "{}", output.stderr);
    // grpcurl prints the canonical proto3 JSON form: lowerCamelCase names.
    assert_eq!(
        output.messages(),
        [json!({
            "userId": "u1", "name": "User u1", "roles": ["admin", "dev"], "labels": {"team": "core"},
            "createdAt": "2024-01-01T12:00:00Z", "sessionTtl": "90s", "loginCount": "9007199254740993",
            "avatar": "AAEC/w==", "email": "u1@example.com", "address": {"city": "Oslo"},
            "state": "USER_STATE_ACTIVE"
        })]
    );
}

#[tokio::test]
async fn server_streaming_from_proto_files() {
    let server = TestServer::start_echo().await;
    let protos = common::repo_root().join("protos");
    let flags = [
        "-import-path",
        common::path_str(&protos),
        "-proto",
        "myapp/notification.proto",
        "-d",
        r#"{"topics":["user","payment"]}"#,
    ];
    let output = grpcurl(server.addr, &flags, &["myapp.NotificationService/Subscribe"], None).await;
    assert!(output.success, "{}", output.stderr);
    let topics: Vec<_> = output.messages().iter().map(|m| m["topic"].clone()).collect();
    assert_eq!(topics, [json!("user"), json!("payment"), json!("user")]);
    assert_eq!(output.messages()[2]["sequence"], json!("2"));
}

#[tokio::test]
async fn client_streaming_reads_messages_from_stdin() {
    let server = TestServer::start_echo().await;
    let chunks = r#"{"data": "AAAA", "sequence": 0} {"data": "AAAA", "sequence": 1} {"data": "AA==", "sequence": 2, "is_last": true}"#;
    let output = grpcurl(server.addr, &["-d", "@"], &["myapp.UploadService/UploadFile"], Some(chunks)).await;
    assert!(output.success, "{}", output.stderr);
    assert_eq!(output.messages(), [json!({"fileId": "f-3", "totalSize": "7"})]);
}

#[tokio::test]
async fn bidi_echoes_each_message() {
    let server = TestServer::start_echo().await;
    let messages =
        r#"{"user_id": "alice", "content": "hi"} {"user_id": "alice", "content": "bye", "type": "LEAVE"}"#;
    let output = grpcurl(server.addr, &["-d", "@"], &["myapp.ChatService/Chat"], Some(messages)).await;
    assert!(output.success, "{}", output.stderr);
    let contents: Vec<_> = output.messages().iter().map(|m| m["content"].clone()).collect();
    assert_eq!(contents, [json!("echo: hi"), json!("echo: bye")]);
}

#[tokio::test]
async fn health_check_and_unknown_method() {
    let server = TestServer::start_echo().await;
    let output = grpcurl(
        server.addr,
        &["-d", r#"{"service":"myapp.UserService"}"#],
        &["grpc.health.v1.Health/Check"],
        None,
    )
    .await;
    assert_eq!(output.messages(), [json!({"status": "SERVING"})]);
    let output = grpcurl(server.addr, &[], &["myapp.UserService/Nope"], None).await;
    assert!(!output.success);
    assert!(output.stderr.contains("Nope"), "{}", output.stderr);
}
