//! Stub matching, ranking, `times`, headers and outputs, through a dynamic tonic client.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{TestServer, call, json_message};
use prost_reflect::DynamicMessage;
use serde_json::{Value, json};
use streamstorm::proto::json::{DefaultFields, FieldNames, message_to_json};
use tonic::Code;

/// Writes `yaml` to a temporary stub file and serves it.
async fn serve_stubs(yaml: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("stubs.yaml");
    std::fs::write(&path, yaml).unwrap();
    let server = TestServer::start_with_stubs(&["protos/myapp"], &[path.to_str().unwrap()]).await;
    (server, dir)
}

fn to_json(message: &DynamicMessage) -> Value {
    message_to_json(message, FieldNames::Proto, DefaultFields::Skip).unwrap()
}

async fn get_user(server: &TestServer, request: Value) -> (Code, Vec<Value>, String) {
    let request = json_message(&server.pool, "myapp.GetUserRequest", request);
    let outcome =
        call(server.channel().await, &server.pool, "myapp.UserService/GetUser", vec![request]).await;
    (
        outcome.status.code(),
        outcome.responses.iter().map(to_json).collect(),
        outcome.status.message().to_owned(),
    )
}

fn user(name: &str) -> Value {
    json!({"name": name})
}

const MATCHERS: &str = r#"
- service: UserService
  method: GetUser
  input: { equals: { user_id: "exact" } }
  output: { data: { name: "equals" } }
- service: myapp.UserService
  method: GetUser
  input: { matches: { userId: "^re-[0-9]+$" } }
  output: { data: { name: "matches" } }
- service: UserService
  method: GetUser
  input: { glob: { user_id: "glob-*" } }
  output: { data: { name: "glob" } }
- service: UserService
  method: GetUser
  input:
    equals: { user_id: "any" }
    anyOf: [ { equals: { user_id: "nope" } }, { matches: { user_id: "an." } } ]
  output: { data: { name: "anyOf" } }
- service: UserService
  method: GetUser
  input: {}
  output: { data: { name: "catch-all" } }
"#;

#[tokio::test]
async fn each_matcher_kind_selects_its_stub() {
    let (server, _dir) = serve_stubs(MATCHERS).await;
    for (user_id, expected) in [
        ("exact", "equals"),
        ("re-42", "matches"),
        ("glob-xyz", "glob"),
        ("any", "anyOf"),
        ("other", "catch-all"),
    ] {
        let (code, responses, message) = get_user(&server, json!({"user_id": user_id})).await;
        assert_eq!(code, Code::Ok, "{user_id}: {message}");
        assert_eq!(responses, [user(expected)], "request {user_id}");
    }
    // An unanchored regex is a search, as in GripMock; the anchored one above rejects this.
    let (_, responses, _) = get_user(&server, json!({"user_id": "xre-42"})).await;
    assert_eq!(responses, [user("catch-all")]);
}

#[tokio::test]
async fn ranking_specificity_then_priority_then_v2_then_load_order() {
    let yaml = r#"
- service: ChatService
  method: Chat
  priority: 100
  input: { equals: { user_id: "alice" } }
  output: { data: { content: "one field, high priority" } }
- service: ChatService
  method: Chat
  input: { equals: { user_id: "alice", content: "hi" } }
  output: { data: { content: "two fields" } }
- service: ChatService
  method: Chat
  priority: 5
  inputs: [ { equals: { user_id: "bob" } } ]
  output: { stream: [ { content: "v2, priority 5" } ] }
- service: ChatService
  method: Chat
  priority: 5
  input: { equals: { user_id: "bob" } }
  output: { data: { content: "v1, priority 5" } }
- service: ChatService
  method: Chat
  priority: 7
  input: { equals: { user_id: "carol" } }
  output: { data: { content: "carol, priority 7" } }
- service: ChatService
  method: Chat
  input: { equals: { user_id: "dave" } }
  output: { data: { content: "dave, first loaded" } }
- service: ChatService
  method: Chat
  input: { equals: { user_id: "dave" } }
  output: { data: { content: "dave, second loaded" } }
"#;
    let (server, _dir) = serve_stubs(yaml).await;
    let chat = |user_id: &'static str, content: &'static str| {
        let message =
            json_message(&server.pool, "myapp.ChatMessage", json!({"user_id": user_id, "content": content}));
        call(server.clone_channel(), &server.pool, "myapp.ChatService/Chat", vec![message])
    };
    let reply = |outcome: common::CallOutcome| {
        outcome.responses.iter().map(|m| to_json(m)["content"].clone()).collect::<Vec<_>>()
    };
    // More specific beats higher priority.
    assert_eq!(reply(chat("alice", "hi").await), [json!("two fields")]);
    // With specificity equal, priority decides over load order.
    assert_eq!(reply(chat("alice", "other").await), [json!("one field, high priority")]);
    assert_eq!(reply(chat("carol", "x").await), [json!("carol, priority 7")]);
    // Same specificity and priority: the v2 `inputs` stub wins.
    assert_eq!(reply(chat("bob", "x").await), [json!("v2, priority 5")]);
    // Everything equal: the stub loaded first.
    assert_eq!(reply(chat("dave", "x").await), [json!("dave, first loaded")]);
}

#[tokio::test]
async fn equals_contains_and_array_order() {
    let yaml = r#"
- service: UserService
  method: GetUser
  input: { equals: { user_id: "u1" } }
  output: { data: { name: "ignores extra fields", roles: ["b", "a"], address: { city: "Oslo", street: "Main" } } }
"#;
    let (server, _dir) = serve_stubs(yaml).await;
    let (code, responses, _) = get_user(&server, json!({"user_id": "u1"})).await;
    assert_eq!(code, Code::Ok);
    assert_eq!(responses[0]["roles"], json!(["b", "a"]));
    assert_eq!(responses[0]["address"], json!({"city": "Oslo", "street": "Main"}));
}

#[tokio::test]
async fn times_limits_how_often_a_stub_answers() {
    let yaml = r#"
- service: UserService
  method: GetUser
  options: { times: 2 }
  input: { equals: { user_id: "u" } }
  output: { data: { name: "limited" } }
- service: UserService
  method: GetUser
  input: { contains: { user_id: "u" } }
  output: { data: { name: "after the limit" } }
"#;
    let (server, _dir) = serve_stubs(yaml).await;
    let mut names = Vec::new();
    for _ in 0..3 {
        let (_, responses, _) = get_user(&server, json!({"user_id": "u"})).await;
        names.push(responses[0]["name"].clone());
    }
    assert_eq!(names, [json!("limited"), json!("limited"), json!("after the limit")]);
}

#[tokio::test]
async fn headers_select_stubs_and_outputs_carry_headers_and_statuses() {
    let yaml = r#"
- service: UserService
  method: GetUser
  headers: { equals: { x-tenant: "acme" } }
  input: { equals: { user_id: "u" } }
  output:
    data: { name: "acme user" }
    headers: { x-served-by: "stub-a" }
- service: UserService
  method: GetUser
  input: { equals: { user_id: "u" } }
  output: { error: "tenant required", code: PERMISSION_DENIED }
- service: UserService
  method: GetUser
  input: { equals: { user_id: "aborted" } }
  output: { error: "no code given" }
"#;
    let (server, _dir) = serve_stubs(yaml).await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let mut request =
        tonic::Request::new(json_message(&server.pool, "myapp.GetUserRequest", json!({"user_id": "u"})));
    request.metadata_mut().insert("x-tenant", "acme".parse().unwrap());
    let output = common::message_type(&server.pool, "myapp.User");
    let response = grpc
        .unary(
            request,
            "/myapp.UserService/GetUser".parse().unwrap(),
            streamstorm::proto::DynamicCodec::for_client(output),
        )
        .await
        .expect("the acme stub answers");
    assert_eq!(response.metadata().get("x-served-by").unwrap(), "stub-a");
    assert_eq!(to_json(response.get_ref()), json!({"name": "acme user"}));

    let (code, _, message) = get_user(&server, json!({"user_id": "u"})).await;
    assert_eq!((code, message.as_str()), (Code::PermissionDenied, "tenant required"));
    // GripMock's rule: an error without a code is ABORTED.
    let (code, _, _) = get_user(&server, json!({"user_id": "aborted"})).await;
    assert_eq!(code, Code::Aborted);
}

#[tokio::test]
async fn no_match_is_not_found_naming_the_closest_stub_and_fields() {
    let yaml = r#"
- id: alice-stub
  service: myapp.ChatService
  method: Chat
  input: { equals: { user_id: "alice", content: "hi" } }
  output: { data: { content: "hello alice" } }
- id: bob-stub
  service: myapp.ChatService
  method: Chat
  input: { equals: { user_id: "bob", content: "yo", type: "JOIN" } }
  output: { data: { content: "hello bob" } }
"#;
    let (server, _dir) = serve_stubs(yaml).await;
    let message =
        json_message(&server.pool, "myapp.ChatMessage", json!({"user_id": "alice", "content": "bye"}));
    let outcome = call(server.channel().await, &server.pool, "myapp.ChatService/Chat", vec![message]).await;
    assert_eq!(outcome.status.code(), Code::NotFound);
    let text = outcome.status.message();
    assert!(text.contains("closest stub 'alice-stub'"), "{text}");
    assert!(text.ends_with("differs in: content"), "{text}");
}

#[tokio::test]
async fn server_streaming_delays_and_per_element_directives() {
    let yaml = r#"
- service: NotificationService
  method: Subscribe
  input: { contains: { topics: ["news"] } }
  output:
    delay: 100ms
    stream:
      - { topic: "news", message: "one" }
      - { topic: "news", message: "two", _gripmock: { delay: 300ms } }
      - { topic: "news", message: "three" }
      - { _gripmock: { error: "feed broke", code: 14 } }
      - { topic: "news", message: "never sent" }
"#;
    let (server, _dir) = serve_stubs(yaml).await;
    let request = json_message(&server.pool, "myapp.SubscribeRequest", json!({"topics": ["sports", "news"]}));
    let output = common::message_type(&server.pool, "myapp.Notification");
    let started = Instant::now();
    let mut stream = common::open_stream(
        server.channel().await,
        "/myapp.NotificationService/Subscribe",
        output,
        futures::stream::iter([request]),
    )
    .await
    .unwrap();
    let mut arrivals = Vec::new();
    let status = loop {
        match stream.message().await {
            Ok(Some(message)) => arrivals.push((to_json(&message)["message"].clone(), started.elapsed())),
            Ok(None) => panic!("the stream should end with the element's error"),
            Err(status) => break status,
        }
    };
    assert_eq!((status.code(), status.message()), (Code::Unavailable, "feed broke"));
    let messages: Vec<_> = arrivals.iter().map(|(m, _)| m.clone()).collect();
    assert_eq!(messages, [json!("one"), json!("two"), json!("three")]);
    let gap = arrivals[1].1 - arrivals[0].1;
    assert!(
        gap >= Duration::from_millis(280) && gap < Duration::from_millis(600),
        "per-element delay: {gap:?}"
    );
    assert!(arrivals[0].1 >= Duration::from_millis(90), "stub delay before the first message");
}

#[tokio::test]
async fn client_streaming_matches_each_message_in_turn() {
    let yaml = r#"
- service: UploadService
  method: UploadFile
  inputs:
    - equals: { sequence: 0 }
    - equals: { sequence: 1, is_last: true }
  output: { data: { file_id: "two-chunks", status: SUCCESS } }
- service: UploadService
  method: UploadFile
  inputs:
    - matches: { sequence: "[0-9]+" }
  output: { data: { file_id: "any-number-of-chunks" } }
"#;
    let (server, _dir) = serve_stubs(yaml).await;
    let chunk = |value: Value| json_message(&server.pool, "myapp.FileChunk", value);
    let upload =
        |chunks| call(server.clone_channel(), &server.pool, "myapp.UploadService/UploadFile", chunks);
    let outcome =
        upload(vec![chunk(json!({"sequence": 0})), chunk(json!({"sequence": 1, "is_last": true}))]).await;
    assert_eq!(to_json(&outcome.responses[0]), json!({"file_id": "two-chunks"}));
    let outcome = upload(vec![
        chunk(json!({"sequence": 5})),
        chunk(json!({"sequence": 6})),
        chunk(json!({"sequence": 7})),
    ])
    .await;
    assert_eq!(to_json(&outcome.responses[0]), json!({"file_id": "any-number-of-chunks"}));
}

#[tokio::test]
async fn bidi_single_input_flushes_the_whole_stream_once() {
    let yaml = r#"
- service: myapp.ChatService
  method: Chat
  inputs: [ { equals: { user_id: "alice" } } ]
  output: { stream: [ { content: "one" }, { content: "two" }, { content: "three" } ] }
"#;
    let (server, _dir) = serve_stubs(yaml).await;
    let message = || json_message(&server.pool, "myapp.ChatMessage", json!({"user_id": "alice"}));
    let outcome =
        call(server.channel().await, &server.pool, "myapp.ChatService/Chat", vec![message(), message()])
            .await;
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    let contents: Vec<_> = outcome.responses.iter().map(|m| to_json(m)["content"].clone()).collect();
    // The only input is also the last: it flushes the stream; later messages get nothing more.
    assert_eq!(contents, [json!("one"), json!("two"), json!("three")]);
}

#[tokio::test]
async fn json_arrays_single_stubs_and_multi_document_yaml_all_load() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("nested/deeper");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(
        dir.path().join("a.json"),
        r#"[{"service": "myapp.UserService", "method": "GetUser",
             "input": {"equals": {"userId": "json"}}, "output": {"data": {"name": "from json"}}}]"#,
    )
    .unwrap();
    std::fs::write(
        nested.join("b.yml"),
        "service: myapp.UserService\nmethod: GetUser\ninput: { equals: { user_id: single } }\noutput: { data: { name: from single } }\n---\n- service: myapp.UserService\n  method: GetUser\n  input: { equals: { user_id: second } }\n  output: { data: { name: from second document } }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a stub").unwrap();
    let server = TestServer::start_with_stubs(&["protos/myapp"], &[dir.path().to_str().unwrap()]).await;
    for (user_id, name) in
        [("json", "from json"), ("single", "from single"), ("second", "from second document")]
    {
        let (code, responses, message) = get_user(&server, json!({"user_id": user_id})).await;
        assert_eq!(code, Code::Ok, "{message}");
        assert_eq!(responses, [user(name)]);
    }
}

#[tokio::test]
async fn templates_in_outputs_render_per_call() {
    let yaml = r#"
- service: myapp.UserService
  method: GetUser
  output:
    data: { user_id: "{{request.user_id}}", name: "User {{request.user_id}}", login_count: "{{request.user_id.length * 10}}" }
    headers: { x-echo: "{{request.user_id}}" }
- service: myapp.ChatService
  method: Chat
  input: { equals: { user_id: "alice" } }
  output: { data: { user_id: "bot", content: "you said: {{request.ws.message.content}} (first: {{request.content}})" } }
"#;
    let (server, _dir) = serve_stubs(yaml).await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let request =
        tonic::Request::new(json_message(&server.pool, "myapp.GetUserRequest", json!({"user_id": "ada"})));
    let output = common::message_type(&server.pool, "myapp.User");
    let response = grpc
        .unary(
            request,
            "/myapp.UserService/GetUser".parse().unwrap(),
            streamstorm::proto::DynamicCodec::for_client(output),
        )
        .await
        .unwrap();
    assert_eq!(response.metadata().get("x-echo").unwrap(), "ada");
    assert_eq!(
        to_json(response.get_ref()),
        json!({"user_id": "ada", "name": "User ada", "login_count": "30"})
    );

    let message = |content: &str| {
        json_message(&server.pool, "myapp.ChatMessage", json!({"user_id": "alice", "content": content}))
    };
    let outcome = call(
        server.channel().await,
        &server.pool,
        "myapp.ChatService/Chat",
        vec![message("hi"), message("bye")],
    )
    .await;
    let replies: Vec<_> = outcome.responses.iter().map(|m| to_json(m)["content"].clone()).collect();
    assert_eq!(replies, [json!("you said: hi (first: hi)"), json!("you said: bye (first: hi)")]);
}
