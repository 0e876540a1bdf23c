//! Every example of GripMock's bidirectional-streaming documentation, as written in the stub
//! files under `stubs/gripmock/`, served as `streamstorm serve --protos protos/gripmock --stubs
//! FILE` serves it and driven by real clients (Python grpcio, Node grpc-js): exact replies in
//! order, final statuses, and the documented semantics (ranking by priority, progressive
//! filtering, v1 ping-pong, NOT_FOUND for a message no stub matches).

mod common;

use common::interop::{Client, ClientCall, ClientOutcome};
use common::{TestServer, repo_root};
use serde_json::{Value, json};
use std::path::Path;

const CHAT: &str = "gripmock.chat.ChatService/Chat";
const PROCESS_DATA: &str = "gripmock.data.DataProcessorService/ProcessData";
const COLLABORATE: &str = "gripmock.collaboration.CollaborationService/Collaborate";

/// Serves `protos/gripmock` with one stub file, as the file's `# Run:` line does (with all of
/// `protos/` the seed's short name `ChatService` would be ambiguous).
async fn serve(stub_file: &str) -> TestServer {
    TestServer::start_with_stubs(&["protos/gripmock"], &[stub_file]).await
}

/// One bidi call by `client`, the requests 400 ms apart (room for a loaded machine) so that
/// each reply can arrive before the next request goes out.
async fn converse(server: &TestServer, client: Client, method: &str, requests: Value) -> ClientOutcome {
    ClientCall::new(client, server.addr, method)
        .requests(requests)
        .arg("--send-interval-ms")
        .arg("400")
        .run()
        .await
}

fn assert_ok(outcome: &ClientOutcome) {
    assert_eq!(outcome.code, "OK", "{}: {outcome:?}", outcome.details);
}

/// Each reply arrived before the request after the message it answers was sent: the server
/// answers message by message, not after the client half-closes.
fn assert_interactive(outcome: &ClientOutcome) {
    for (index, received) in outcome.received_at_ms.iter().enumerate() {
        if let Some(next_sent) = outcome.sent_at_ms.get(index + 1) {
            assert!(
                received < next_sent,
                "reply {index} came after request {} was sent: {outcome:?}",
                index + 1
            );
        }
    }
}

fn contents(outcome: &ClientOutcome) -> Vec<&str> {
    outcome.responses.iter().map(|response| response["content"].as_str().unwrap_or_default()).collect()
}

fn alice(content: &str) -> Value {
    json!({"user_id": "alice", "content": content, "type": "MESSAGE_TYPE_TEXT"})
}

// --- Basic Configuration --------------------------------------------------------------------

#[tokio::test]
async fn v2_basic_answers_each_message_with_its_stream_element() {
    let server = serve("stubs/gripmock/chat-v2-basic.yaml").await;
    let outcome =
        converse(&server, Client::Python, CHAT, json!([alice("Hello"), alice("How are you?")])).await;
    assert_ok(&outcome);
    assert_eq!(
        outcome.responses,
        [
            json!({"user_id": "bob", "content": "Hello Alice!", "type": "MESSAGE_TYPE_TEXT",
                   "timestamp": "2024-01-01T12:00:00Z"}),
            json!({"user_id": "bob", "content": "I'm doing great!", "type": "MESSAGE_TYPE_TEXT",
                   "timestamp": "2024-01-01T12:00:01Z"}),
        ]
    );
    assert_interactive(&outcome);
}

#[tokio::test]
async fn v1_legacy_answers_every_matching_message_ping_pong() {
    let server = serve("stubs/gripmock/chat-v1-legacy.yaml").await;
    let outcome =
        converse(&server, Client::Python, CHAT, json!([alice("Hello"), alice("Hello"), alice("Hello")]))
            .await;
    assert_ok(&outcome);
    let reply = json!({"user_id": "bob", "content": "Hello Alice!", "type": "MESSAGE_TYPE_TEXT"});
    assert_eq!(outcome.responses, [reply.clone(), reply.clone(), reply]);
    assert_interactive(&outcome);
}

#[tokio::test]
async fn v1_legacy_message_that_matches_nothing_is_not_found() {
    let server = serve("stubs/gripmock/chat-v1-legacy.yaml").await;
    let outcome = converse(&server, Client::Node, CHAT, json!([alice("Hello"), alice("Goodbye")])).await;
    assert_eq!(contents(&outcome), ["Hello Alice!"]);
    assert_eq!(outcome.code, "NOT_FOUND", "{outcome:?}");
    assert!(outcome.details.contains("message 2"), "{}", outcome.details);
    assert!(outcome.details.contains("chat-v1-legacy.yaml:3 differs in: content"), "{}", outcome.details);

    // The v1 matcher is `equals` on all three fields: a missing `type` does not match.
    let outcome =
        converse(&server, Client::Node, CHAT, json!([{"user_id": "alice", "content": "Hello"}])).await;
    assert!(outcome.responses.is_empty(), "{outcome:?}");
    assert_eq!(outcome.code, "NOT_FOUND", "{outcome:?}");
    assert!(outcome.details.contains("message 1"), "{}", outcome.details);
    assert!(outcome.details.contains("differs in: type"), "{}", outcome.details);
}

// --- How Bidirectional Streaming Works: Stub Matching Process --------------------------------

#[tokio::test]
async fn conversation_answers_message_i_with_reply_i() {
    let server = serve("stubs/gripmock/chat-conversation.yaml").await;
    let outcome = converse(
        &server,
        Client::Python,
        CHAT,
        json!([alice("Hello"), alice("How are you?"), alice("Let's chat")]),
    )
    .await;
    assert_ok(&outcome);
    assert_eq!(
        outcome.responses,
        [
            json!({"user_id": "bob", "content": "Hello Alice!", "type": "MESSAGE_TYPE_TEXT"}),
            json!({"user_id": "bob", "content": "I'm doing great!", "type": "MESSAGE_TYPE_TEXT"}),
            json!({"user_id": "bob", "content": "Sure, let's chat!", "type": "MESSAGE_TYPE_TEXT"}),
        ]
    );
    assert_interactive(&outcome);
}

#[tokio::test]
async fn conversation_that_diverges_at_message_2_is_not_found_naming_the_closest_stub() {
    let server = serve("stubs/gripmock/chat-conversation.yaml").await;
    let outcome = converse(
        &server,
        Client::Python,
        CHAT,
        json!([alice("Hello"), alice("What's up?"), alice("Let's chat")]),
    )
    .await;
    // Progressive filtering: the first message matched and was answered; the second leaves no
    // stub in the running.
    assert_eq!(contents(&outcome), ["Hello Alice!"]);
    assert_eq!(outcome.code, "NOT_FOUND", "{outcome:?}");
    let details = &outcome.details;
    assert!(details.contains("no stub matched gripmock.chat.ChatService/Chat message 2"), "{details}");
    assert!(details.contains(r#""content":"What's up?""#), "{details}");
    assert!(details.contains("closest stub"), "{details}");
    assert!(details.contains("chat-conversation.yaml:3 differs in: content"), "{details}");
}

#[tokio::test]
async fn conversation_out_of_order_is_not_found() {
    // "Messages are processed in the order received": the second pattern does not match first.
    let server = serve("stubs/gripmock/chat-conversation.yaml").await;
    let outcome =
        converse(&server, Client::Python, CHAT, json!([alice("How are you?"), alice("Hello")])).await;
    assert!(outcome.responses.is_empty(), "{outcome:?}");
    assert_eq!(outcome.code, "NOT_FOUND", "{outcome:?}");
    assert!(outcome.details.contains("message 1"), "{}", outcome.details);
    assert!(outcome.details.contains("differs in: content"), "{}", outcome.details);
}

#[tokio::test]
async fn conversation_state_is_per_connection() {
    // "Each connection maintains separate state": two clients at different points of the same
    // conversation at once.
    let server = serve("stubs/gripmock/chat-conversation.yaml").await;
    let whole = ClientCall::new(Client::Python, server.addr, CHAT)
        .requests(json!([alice("Hello"), alice("How are you?"), alice("Let's chat")]))
        .arg("--send-interval-ms")
        .arg("150")
        .run();
    let start = ClientCall::new(Client::Node, server.addr, CHAT)
        .requests(json!([alice("Hello"), alice("How are you?")]))
        .arg("--send-interval-ms")
        .arg("100")
        .run();
    let (whole, start) = tokio::join!(whole, start);
    assert_ok(&whole);
    assert_ok(&start);
    assert_eq!(contents(&whole), ["Hello Alice!", "I'm doing great!", "Sure, let's chat!"]);
    assert_eq!(contents(&start), ["Hello Alice!", "I'm doing great!"]);
}

// --- Advanced Examples ----------------------------------------------------------------------

fn room_message(user: &str, room: &str, content: &str) -> Value {
    json!({"user_id": user, "room_id": room, "content": content, "type": "MESSAGE_TYPE_TEXT"})
}

#[tokio::test]
async fn chat_room_answers_each_user_in_turn() {
    let server = serve("stubs/gripmock/chat-room.yaml").await;
    let outcome = converse(
        &server,
        Client::Python,
        CHAT,
        json!([
            room_message("alice", "room_001", "Hello everyone!"),
            room_message("bob", "room_001", "Hi Alice!"),
            room_message("charlie", "room_001", "Hello there!"),
        ]),
    )
    .await;
    assert_ok(&outcome);
    assert_eq!(
        outcome.responses,
        [
            json!({"user_id": "system", "content": "Alice joined the chat", "type": "MESSAGE_TYPE_SYSTEM",
                   "timestamp": "2024-01-01T12:00:00Z"}),
            json!({"user_id": "bob", "content": "Hi Alice!", "type": "MESSAGE_TYPE_TEXT",
                   "timestamp": "2024-01-01T12:00:01Z"}),
            json!({"user_id": "charlie", "content": "Hello there!", "type": "MESSAGE_TYPE_TEXT",
                   "timestamp": "2024-01-01T12:00:02Z"}),
        ]
    );
}

#[tokio::test]
async fn chat_room_message_to_another_room_is_not_found() {
    let server = serve("stubs/gripmock/chat-room.yaml").await;
    let outcome = converse(
        &server,
        Client::Python,
        CHAT,
        json!([
            room_message("alice", "room_001", "Hello everyone!"),
            room_message("bob", "room_002", "Hi Alice!"),
        ]),
    )
    .await;
    assert_eq!(contents(&outcome), ["Alice joined the chat"]);
    assert_eq!(outcome.code, "NOT_FOUND", "{outcome:?}");
    assert!(outcome.details.contains("message 2"), "{}", outcome.details);
    assert!(outcome.details.contains("chat-room.yaml:3 differs in: room_id"), "{}", outcome.details);
}

#[tokio::test]
async fn data_processing_reports_progress_per_command() {
    let server = serve("stubs/gripmock/data-processing.yaml").await;
    let outcome = converse(
        &server,
        Client::Node,
        PROCESS_DATA,
        json!([
            {"command": "START", "dataset": "large_dataset", "format": "JSON"},
            {"command": "PROCESS", "batch_size": 1000},
            {"command": "COMPLETE", "total_records": "50000"},
        ]),
    )
    .await;
    assert_ok(&outcome);
    // proto-loader: Timestamps as {seconds, nanos}, int64 as strings.
    assert_eq!(
        outcome.responses,
        [
            json!({"status": "STARTED", "message": "Processing started", "dataset": "large_dataset",
                   "timestamp": {"seconds": "1704110400"}}),
            json!({"status": "PROCESSING", "message": "Processing batch of 1000 records", "progress": 20,
                   "timestamp": {"seconds": "1704110401"}}),
            json!({"status": "COMPLETED", "message": "Processing completed", "total_processed": "50000",
                   "timestamp": {"seconds": "1704110402"}}),
        ]
    );
}

#[tokio::test]
async fn data_processing_with_another_batch_size_stops_after_start() {
    let server = serve("stubs/gripmock/data-processing.yaml").await;
    let outcome = converse(
        &server,
        Client::Python,
        PROCESS_DATA,
        json!([
            {"command": "START", "dataset": "large_dataset", "format": "JSON"},
            {"command": "PROCESS", "batch_size": 500},
            {"command": "COMPLETE", "total_records": "50000"},
        ]),
    )
    .await;
    let statuses: Vec<_> = outcome.responses.iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses, [json!("STARTED")]);
    assert_eq!(outcome.code, "NOT_FOUND", "{outcome:?}");
    assert!(outcome.details.contains("data-processing.yaml:3 differs in: batch_size"), "{}", outcome.details);
}

#[tokio::test]
async fn collaboration_echoes_each_edit_with_a_timestamp() {
    let server = serve("stubs/gripmock/collaboration.yaml").await;
    let outcome = converse(
        &server,
        Client::Node,
        COLLABORATE,
        json!([
            {"user_id": "editor_1", "action": "CURSOR_MOVE", "position": {"x": 100, "y": 200}},
            {"user_id": "editor_1", "action": "TEXT_INSERT", "text": "Hello world",
             "position": {"line": 1, "column": 1}},
            {"user_id": "editor_2", "action": "CURSOR_MOVE", "position": {"x": 150, "y": 250}},
        ]),
    )
    .await;
    assert_ok(&outcome);
    assert_eq!(
        outcome.responses,
        [
            json!({"user_id": "editor_1", "action": "CURSOR_MOVE", "position": {"x": 100, "y": 200},
                   "timestamp": {"seconds": "1704110400"}}),
            json!({"user_id": "editor_1", "action": "TEXT_INSERT", "text": "Hello world",
                   "position": {"line": 1, "column": 1}, "timestamp": {"seconds": "1704110401"}}),
            json!({"user_id": "editor_2", "action": "CURSOR_MOVE", "position": {"x": 150, "y": 250},
                   "timestamp": {"seconds": "1704110402"}}),
        ]
    );
}

#[tokio::test]
async fn collaboration_position_must_equal_as_a_whole() {
    // `equals` compares a nested message whole: an extra `line` on the cursor does not match.
    let server = serve("stubs/gripmock/collaboration.yaml").await;
    let outcome = converse(
        &server,
        Client::Python,
        COLLABORATE,
        json!([{"user_id": "editor_1", "action": "CURSOR_MOVE", "position": {"x": 100, "y": 200, "line": 3}}]),
    )
    .await;
    assert!(outcome.responses.is_empty(), "{outcome:?}");
    assert_eq!(outcome.code, "NOT_FOUND", "{outcome:?}");
    assert!(outcome.details.contains("collaboration.yaml:3 differs in: position"), "{}", outcome.details);
}

// --- Stub Ranking and Selection: Priority Control -------------------------------------------

#[tokio::test]
async fn priority_100_wins_over_50() {
    let server = serve("stubs/gripmock/priority.yaml").await;
    for client in [Client::Python, Client::Node] {
        let outcome = converse(&server, client, CHAT, json!([alice("Hello")])).await;
        assert_ok(&outcome);
        assert_eq!(
            outcome.responses,
            [
                json!({"user_id": "bob", "content": "Hello Alice! (High priority)", "type": "MESSAGE_TYPE_TEXT"})
            ],
            "{client:?}"
        );
    }
}

// --- Best Practices ("Good" patterns) -------------------------------------------------------

#[tokio::test]
async fn best_practices_consistent_structure_with_timestamps_gets_meaningful_replies() {
    let server = serve("stubs/gripmock/best-practices.yaml").await;
    let outcome = converse(
        &server,
        Client::Python,
        CHAT,
        json!([
            {"user_id": "alice", "content": "Hello", "type": "MESSAGE_TYPE_TEXT",
             "timestamp": "2024-01-01T12:00:00Z"},
            {"user_id": "alice", "content": "How are you?", "type": "MESSAGE_TYPE_TEXT",
             "timestamp": "2024-01-01T12:00:01Z"},
        ]),
    )
    .await;
    assert_ok(&outcome);
    assert_eq!(
        outcome.responses,
        [
            json!({"user_id": "bob", "content": "Hello Alice! Nice to see you.", "type": "MESSAGE_TYPE_TEXT",
                   "timestamp": "2024-01-01T12:00:00Z"}),
            json!({"user_id": "bob", "content": "I'm doing great! How about you?", "type": "MESSAGE_TYPE_TEXT",
                   "timestamp": "2024-01-01T12:00:01Z"}),
        ]
    );
}

#[tokio::test]
async fn best_practices_clear_sequence_is_answered_in_order() {
    let server = serve("stubs/gripmock/best-practices.yaml").await;
    let outcome = converse(
        &server,
        Client::Node,
        CHAT,
        json!([
            {"sequence": 1, "content": "First message"},
            {"sequence": 2, "content": "Second message"},
            {"sequence": 3, "content": "Third message"},
        ]),
    )
    .await;
    assert_ok(&outcome);
    let sequences: Vec<_> = outcome.responses.iter().map(|r| r["sequence"].clone()).collect();
    assert_eq!(sequences, [json!(1), json!(2), json!(3)]);
    assert_eq!(
        contents(&outcome),
        ["Got your first message", "Got your second message", "Got all three messages, in order"]
    );

    // The sequence numbers are part of the pattern: the second message first matches nothing.
    let outcome =
        converse(&server, Client::Node, CHAT, json!([{"sequence": 2, "content": "Second message"}])).await;
    assert_eq!(outcome.code, "NOT_FOUND", "{outcome:?}");
    assert!(outcome.details.contains("differs in: sequence, content"), "{}", outcome.details);
}

#[tokio::test]
async fn best_practices_message_types_text_system_file() {
    let server = serve("stubs/gripmock/best-practices.yaml").await;
    let outcome = converse(
        &server,
        Client::Python,
        CHAT,
        json!([
            {"type": "MESSAGE_TYPE_TEXT", "content": "Hello"},
            {"type": "MESSAGE_TYPE_SYSTEM", "content": "User joined"},
            {"type": "MESSAGE_TYPE_FILE", "file_id": "file_001"},
        ]),
    )
    .await;
    assert_ok(&outcome);
    assert_eq!(
        outcome.responses,
        [
            json!({"user_id": "bob", "content": "Hello! Good to have you here.", "type": "MESSAGE_TYPE_TEXT",
                   "timestamp": "2024-01-01T12:00:00Z"}),
            json!({"user_id": "system", "content": "Welcome to the chat!", "type": "MESSAGE_TYPE_SYSTEM",
                   "timestamp": "2024-01-01T12:00:01Z"}),
            json!({"user_id": "bob", "content": "Thanks, file_001 received.", "type": "MESSAGE_TYPE_FILE",
                   "file_id": "file_001", "timestamp": "2024-01-01T12:00:02Z"}),
        ]
    );
}

#[tokio::test]
async fn best_practices_most_specific_stub_answers_and_each_message_reselects() {
    let server = serve("stubs/gripmock/best-practices.yaml").await;
    // "Hello" from alice with the timestamp matches both the consistent-structure stub (four
    // fields) and the message-types stub (two): the more specific one answers. The second
    // message only fits the message-types stub, which answers it ("re-evaluates matching
    // stubs").
    let outcome = converse(
        &server,
        Client::Python,
        CHAT,
        json!([
            {"user_id": "alice", "content": "Hello", "type": "MESSAGE_TYPE_TEXT",
             "timestamp": "2024-01-01T12:00:00Z"},
            {"user_id": "alice", "content": "User joined", "type": "MESSAGE_TYPE_SYSTEM"},
        ]),
    )
    .await;
    assert_ok(&outcome);
    assert_eq!(contents(&outcome), ["Hello Alice! Nice to see you.", "Welcome to the chat!"]);

    // Without the timestamp only the message-types stub matches the first message.
    let outcome = converse(&server, Client::Python, CHAT, json!([alice("Hello")])).await;
    assert_ok(&outcome);
    assert_eq!(contents(&outcome), ["Hello! Good to have you here."]);
}

// --- Error Handling -------------------------------------------------------------------------

#[tokio::test]
async fn stream_interruption_ends_with_unavailable() {
    let server = serve("stubs/gripmock/errors.yaml").await;
    for client in [Client::Python, Client::Node] {
        let outcome =
            converse(&server, client, CHAT, json!([{"user_id": "alice", "content": "Hello"}])).await;
        assert!(outcome.responses.is_empty(), "{outcome:?}");
        assert_eq!((outcome.code.as_str(), outcome.details.as_str()), ("UNAVAILABLE", "Connection lost"));
    }
}

#[tokio::test]
async fn invalid_message_format_ends_with_invalid_argument() {
    let server = serve("stubs/gripmock/errors.yaml").await;
    let outcome =
        converse(&server, Client::Python, CHAT, json!([{"user_id": "alice", "content": "invalid_message"}]))
            .await;
    assert!(outcome.responses.is_empty(), "{outcome:?}");
    assert_eq!(
        (outcome.code.as_str(), outcome.details.as_str()),
        ("INVALID_ARGUMENT", "Invalid message format")
    );
}

#[tokio::test]
async fn stream_interruption_does_not_wait_for_the_client_to_finish() {
    // The stream is interrupted when "Hello" arrives, not when the client half-closes: a client
    // that keeps the stream open (its second message is 3 s away) sees UNAVAILABLE well within
    // its 1.5 s deadline.
    let server = serve("stubs/gripmock/errors.yaml").await;
    let hello = json!({"user_id": "alice", "content": "Hello"});
    let outcome = ClientCall::new(Client::Python, server.addr, CHAT)
        .requests(json!([hello, hello]))
        .arg("--send-interval-ms")
        .arg("3000")
        .arg("--timeout")
        .arg("1.5")
        .run()
        .await;
    assert_eq!((outcome.code.as_str(), outcome.details.as_str()), ("UNAVAILABLE", "Connection lost"));
}

// --- Migration from V1 to V2 ----------------------------------------------------------------

#[tokio::test]
async fn migration_v1_and_v2_give_the_same_answer() {
    let hello = json!({"user_id": "alice", "content": "Hello"});
    let reply = json!({"user_id": "bob", "content": "Hello Alice!"});
    let v1 = serve("stubs/gripmock/migration-v1.yaml").await;
    let v2 = serve("stubs/gripmock/migration-v2.yaml").await;
    for (server, client) in
        [(&v1, Client::Python), (&v2, Client::Python), (&v1, Client::Node), (&v2, Client::Node)]
    {
        let outcome = converse(server, client, CHAT, json!([hello])).await;
        assert_ok(&outcome);
        assert_eq!(outcome.responses, std::slice::from_ref(&reply), "{client:?}");
    }
    // They part on a repeated message: v1 `data` answers every message it matches, v2 `stream`
    // element i answers message i, and this stream has one element.
    let outcome = converse(&v1, Client::Python, CHAT, json!([hello, hello])).await;
    assert_ok(&outcome);
    assert_eq!(outcome.responses, [reply.clone(), reply.clone()]);
    let outcome = converse(&v2, Client::Python, CHAT, json!([hello, hello])).await;
    assert_ok(&outcome);
    assert_eq!(outcome.responses, [reply]);
}

// --- The files themselves -------------------------------------------------------------------

#[test]
fn every_stub_file_validates_and_says_how_to_run_it() {
    let dir = repo_root().join("stubs/gripmock");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("stubs/gripmock is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    let names: Vec<_> = files.iter().map(|path| file_name(path)).collect();
    for expected in [
        "chat-v2-basic.yaml",
        "chat-v1-legacy.yaml",
        "chat-conversation.yaml",
        "chat-room.yaml",
        "data-processing.yaml",
        "collaboration.yaml",
        "priority.yaml",
        "errors.yaml",
        "best-practices.yaml",
        "migration-v1.yaml",
        "migration-v2.yaml",
    ] {
        assert!(names.contains(&expected), "stubs/gripmock/{expected} is missing: {names:?}");
    }
    for path in &files {
        let name = file_name(path);
        let text = std::fs::read_to_string(path).expect("the stub file is readable");
        let run_line =
            format!("# Run: streamstorm serve --protos protos/gripmock --stubs stubs/gripmock/{name}");
        let header: Vec<_> = text.lines().take_while(|line| line.starts_with('#')).collect();
        assert!(header.contains(&run_line.as_str()), "{name} does not start with {run_line:?}: {header:?}");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
            .current_dir(repo_root())
            .args(["validate", "protos/gripmock", &format!("stubs/gripmock/{name}")])
            .output()
            .expect("the binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.starts_with("ok: "),
            "{name} does not validate: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|name| name.to_str()).expect("UTF-8 file names")
}
