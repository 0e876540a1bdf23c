//! Recorded streams replayed by scripts, as a real client (Python grpcio) sees them: delayed
//! multi-message replies that hold up neither later client messages nor the timeline, identical
//! client messages told apart by a per-stream counter, an error with rich details, an OK end at
//! a recorded time, and the choosing stub's headers and trailers. Times are checked to 5 ms.

mod common;

use std::path::Path;

use common::interop::{Client, ClientCall, ClientOutcome};
use serde_json::{Value, json};

/// How far a gap the client sees may be from the script's.
const TOLERANCE_MS: f64 = 5.0;

/// Calls made when a gap is off: a machine busy with other work can hold up a client thread
/// for tens of milliseconds once; a replay that keeps the wrong time is off on every call.
const ATTEMPTS: usize = 3;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn field(outcome: &ClientOutcome, name: &str) -> Vec<Value> {
    outcome.responses.iter().map(|response| response[name].clone()).collect()
}

/// Every gap (what, from, to, the script's gap) that is off by more than [`TOLERANCE_MS`].
fn gaps_off(gaps: &[(&str, f64, f64, f64)]) -> Vec<String> {
    gaps.iter()
        .filter(|(_, from, to, expected)| (to - from - expected).abs() > TOLERANCE_MS)
        .map(|(what, from, to, expected)| {
            format!("{what}: the client saw {:.1} ms, the script says {expected} ms", to - from)
        })
        .collect()
}

/// Runs `call` until its gaps are right, at most [`ATTEMPTS`] times; every other check in
/// `call` holds on every attempt.
async fn with_right_gaps<F, Fut>(mut call: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let mut seen = Vec::new();
    for _ in 0..ATTEMPTS {
        let off = call().await;
        if off.is_empty() {
            return;
        }
        seen.push(off.join("; "));
    }
    panic!("gaps off on every one of {ATTEMPTS} calls:\n{}", seen.join("\n"));
}

/// The k-th recorded client message (k from 1) is the entry whose condition wants k - 1
/// messages received before it; both messages are the same.
const CHAT: &str = r#"// Recorded: the client said "hello" twice; each got its own replies.
{"ts":0,"dir":"in","text":{"content":"hello"},"condition":"{{(request.ws.state.received || 0) == 0}}","received":"{{(request.ws.state.received || 0) + 1}}","responses":[{"ts":20,"text":{"content":"first-a"}},{"ts":70,"text":{"content":"first-b"}},{"ts":400,"text":{"content":"first-c"}}]}
{"ts":0,"dir":"in","text":{"content":"hello"},"condition":"{{(request.ws.state.received || 0) == 1}}","received":"{{(request.ws.state.received || 0) + 1}}","responses":[{"ts":10,"text":{"content":"second-a {{request.ws.message.user_id}}"}},{"ts":60,"text":"second-b"},{"ts":250,"error":true,"code":"FAILED_PRECONDITION","text":"recorded failure","details":[{"@type":"google.rpc.ErrorInfo","reason":"RECORDED","domain":"chat.example.com"}]}]}
{"ts":300,"dir":"out","text":{"content":"timeline"}}
"#;

const CHAT_STUB: &str = r#"
- service: myapp.ChatService
  method: Chat
  output:
    script: chat.jsonl
    headers: { x-recorded: "yes", x-user: "{{request.user_id}}" }
    trailers: { x-trailer: "t-{{request.content}}" }
"#;

#[tokio::test]
async fn bidi_replay_keeps_the_recorded_timing_and_ends_with_the_recorded_error() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("stubs.yaml"), CHAT_STUB);
    write(&dir.path().join("chat.jsonl"), CHAT);
    let (_serve, addr) = common::spawn_serve(&["--stubs", dir.path().to_str().unwrap()]).await;
    let hello = json!({"user_id": "u1", "content": "hello"});
    with_right_gaps(|| async {
    let outcome = ClientCall::new(Client::Python, addr, "myapp.ChatService/Chat")
        .requests(json!([hello, hello]))
        .arg("--send-interval-ms")
        .arg("200")
        .arg("--rich-status")
        .run()
        .await;
    // The second message arrives (about 200 ms) before the first one's last reply (400 ms),
    // and the timeline's entry (300 ms) goes between them.
    assert_eq!(
        field(&outcome, "content"),
        ["first-a", "first-b", "second-a u1", "second-b", "timeline", "first-c"],
        "{outcome:?}"
    );
    assert_eq!(outcome.code, "FAILED_PRECONDITION", "{}", outcome.details);
    assert_eq!(outcome.details, "recorded failure");
    assert_eq!(
        outcome.rich_status,
        Some(json!({
            "code": 9,
            "message": "recorded failure",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RECORDED", "domain": "chat.example.com"}]
        }))
    );
    assert_eq!(outcome.initial_metadata.get("x-recorded"), Some(&json!("yes")));
    assert_eq!(outcome.initial_metadata.get("x-user"), Some(&json!("u1")));
    assert_eq!(outcome.trailing_metadata.get("x-trailer"), Some(&json!("t-hello")), "{outcome:?}");
    let at = &outcome.received_at_ms;
    gaps_off(&[
        ("first-a to first-b", at[0], at[1], 50.0),
        ("first-a to first-c", at[0], at[5], 380.0),
        ("second-a to second-b", at[2], at[3], 50.0),
        ("second-a to the error", at[2], outcome.ended_at_ms, 240.0),
        ("second-b to the error", at[3], outcome.ended_at_ms, 190.0),
    ])
    })
    .await;
}

#[tokio::test]
async fn server_stream_replay_ends_ok_at_the_recorded_close() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("stubs.yaml"),
        r#"
- service: myapp.NotificationService
  method: Subscribe
  output: { script: subscribe.jsonl, trailers: { x-served-by: "script {{request.topics[0]}}" } }
"#,
    );
    write(
        &dir.path().join("subscribe.jsonl"),
        r#"{"ts":0,"dir":"out","text":{"topic":"t0"}}
{"ts":40,"dir":"out","text":{"topic":"t1"}}
{"ts":100,"dir":"out","text":{"topic":"t2"}}
{"ts":250,"dir":"out","close":true}
{"ts":400,"dir":"out","text":{"topic":"never sent"}}
"#,
    );
    let (_serve, addr) = common::spawn_serve(&["--stubs", dir.path().to_str().unwrap()]).await;
    with_right_gaps(|| async {
        let outcome = ClientCall::new(Client::Python, addr, "myapp.NotificationService/Subscribe")
            .requests(json!([{"topics": ["news"]}]))
            .run()
            .await;
        assert_eq!(outcome.code, "OK", "{}", outcome.details);
        assert_eq!(field(&outcome, "topic"), ["t0", "t1", "t2"]);
        assert_eq!(outcome.trailing_metadata.get("x-served-by"), Some(&json!("script news")), "{outcome:?}");
        let at = &outcome.received_at_ms;
        gaps_off(&[
            ("t0 to t1", at[0], at[1], 40.0),
            ("t1 to t2", at[1], at[2], 60.0),
            ("t0 to the end", at[0], outcome.ended_at_ms, 250.0),
        ])
    })
    .await;
}

#[tokio::test]
async fn bidi_replay_without_an_ending_waits_for_pending_replies() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("myapp.ChatService/Chat.jsonl"),
        r#"{"dir":"in","text":{"content":"once"},"responses":[{"ts":30,"text":"a"},{"ts":120,"text":"b"}]}
{"dir":"in","text":{"content":"later"},"ts":60,"response":"c"}
"#,
    );
    let (_serve, addr) = common::spawn_serve(&["--stubs", dir.path().to_str().unwrap()]).await;
    // The client half-closes right after its messages: the stream still ends only after the
    // last reply, OK.
    with_right_gaps(|| async {
        let outcome = ClientCall::new(Client::Python, addr, "myapp.ChatService/Chat")
            .requests(json!([{"content": "once"}, {"content": "later"}]))
            .run()
            .await;
        assert_eq!(outcome.code, "OK", "{}", outcome.details);
        assert_eq!(field(&outcome, "content"), ["a", "c", "b"]);
        let at = &outcome.received_at_ms;
        gaps_off(&[("a to b", at[0], at[2], 90.0), ("b to the end", at[2], outcome.ended_at_ms, 0.0)])
    })
    .await;
}
