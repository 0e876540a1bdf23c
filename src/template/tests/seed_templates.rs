//! Every template of the MockForge streaming document that this engine must run, rendered
//! against the requests, messages and state that document describes.

use serde_json::{Value as Json, json};

use super::Fixture;

#[test]
fn server_streaming_templates() {
    let mut fixture = Fixture::new();
    assert_eq!(
        fixture.render(
            r#"{"topic":"{{request.topics[0]}}","message":"Subscribed to {{request.topics.length}} topics","timestamp":"{{now}}"}"#
        ),
        json!(r#"{"topic":"user","message":"Subscribed to 2 topics","timestamp":"2024-01-01T12:00:00.000Z"}"#)
    );
    for helper in ["randParagraph", "randSentence"] {
        let document = fixture.render_document(&format!(
            r#"{{"topic":"{{{{randFromArray request.topics}}}}","message":"{{{{{helper}}}}}","timestamp":"{{{{now}}}}"}}"#
        ));
        assert!(["user", "payment"].contains(&document["topic"].as_str().unwrap()), "{document}");
        let message = document["message"].as_str().unwrap();
        assert!(message.len() > 10 && message.ends_with('.') && !message.contains('\n'), "{message:?}");
    }
}

#[test]
fn client_streaming_templates() {
    let mut fixture = Fixture::new().with_state(json!({"state": "uploading", "chunks": 1}));
    let document = fixture.render_document(
        r#"{"file_id":"{{uuid}}","total_size":"{{request.ws.state.chunks * 1024}}","status":"SUCCESS"}"#,
    );
    let file_id = uuid::Uuid::parse_str(document["file_id"].as_str().unwrap()).unwrap();
    assert_eq!(file_id.get_version_num(), 4);
    assert_eq!(document["total_size"], json!("1024"));
    assert_eq!(fixture.render("{{request.ws.state.chunks + 1}}"), json!(2));
    assert_eq!(fixture.render("{{request.ws.state.chunks * 1024}}"), json!(1024));
}

#[test]
fn bidirectional_templates() {
    let mut fixture = Fixture::new();
    assert_eq!(
        fixture.render_document(
            r#"{"user_id":"system","content":"{{request.ws.message.user_id}} joined the chat","type":"SYSTEM"}"#
        )["content"],
        json!("user123 joined the chat")
    );
    assert_eq!(
        fixture.render(
            r#"{"user_id":"{{request.ws.message.user_id}}","content":"{{request.ws.message.content}}"}"#
        ),
        json!(r#"{"user_id":"user123","content":"Hello from client"}"#)
    );
    assert_eq!(fixture.render("{{request.ws.message}}"), fixture.message.clone().unwrap());
    for (source, low, high) in
        [("Server uptime: {{randInt 1 24}} hours", 1, 24), ("Connected users: {{randInt 1 50}}", 1, 50)]
    {
        let text = fixture.render(source);
        let number: i64 = text.as_str().unwrap().split(' ').find_map(|word| word.parse().ok()).unwrap();
        assert!((low..=high).contains(&number), "{text}");
    }
    assert_eq!(fixture.render("{{!request.ws.state.authenticated}}"), json!(true));
    assert_eq!(fixture.render("{{request.ws.state.authenticated}}"), Json::Null);
    let mut fixture = Fixture::new().with_state(json!({"authenticated": true}));
    assert_eq!(fixture.render("{{!request.ws.state.authenticated}}"), json!(false));
    assert_eq!(fixture.render("{{request.ws.state.authenticated}}"), json!(true));
}

#[test]
fn stream_control_and_limit_templates() {
    let mut fixture = Fixture::new();
    assert_eq!(fixture.render("{{request.stream_enabled}}"), json!(true));
    assert_eq!(fixture.render("{{request.ws.state.active}}"), Json::Null);
    assert_eq!(fixture.render("{{request.ws.message.type === 'END'}}"), json!(false));
    fixture.message = Some(json!({"type": "END"}));
    assert_eq!(fixture.render("{{request.ws.message.type === 'END'}}"), json!(true));
    fixture.message = None;
    assert_eq!(fixture.render("{{request.ws.message.type === 'END'}}"), json!(false));
    for _ in 0..50 {
        let delay = fixture.render("{{randInt 1000 5000}}").as_i64().expect("an integer");
        assert!((1000..=5000).contains(&delay), "{delay}");
    }
    assert_eq!(fixture.render("{{request.interval || 2000}}"), json!(2000));
    fixture.request["interval"] = json!(500);
    assert_eq!(fixture.render("{{request.interval || 2000}}"), json!(500));
    fixture.request = json!({});
    assert_eq!(fixture.render("{{request.interval || 2000}}"), json!(2000));

    let condition = "{{(request.ws.state.messageCount || 0) < 100}}";
    let limit = "{{(request.ws.state.messageCount || 0) >= 100}}";
    let count = "{{(request.ws.state.messageCount || 0) + 1}}";
    assert_eq!(
        [fixture.render(condition), fixture.render(limit), fixture.render(count)],
        [json!(true), json!(false), json!(1)]
    );
    let mut fixture = Fixture::new().with_state(json!({"messageCount": 100}));
    assert_eq!(
        [fixture.render(condition), fixture.render(limit), fixture.render(count)],
        [json!(false), json!(true), json!(101)]
    );
}

#[test]
fn connection_and_recovery_templates() {
    let mut fixture = Fixture::new().with_state(json!({"lastMessageId": 17}));
    assert_eq!(
        fixture.render("Connection {{request.ws.connectionId}} established"),
        json!("Connection conn-42 established")
    );
    assert_eq!(
        fixture.render("Resuming stream from message {{request.ws.state.lastMessageId}}"),
        json!("Resuming stream from message 17")
    );
    let server = fixture.render("Response from server {{randInt 1 3}}");
    assert!(["1", "2", "3"].iter().any(|n| server == json!(format!("Response from server {n}"))), "{server}");
    assert_eq!(fixture.render("stream {{stream.id}}"), json!("stream 3"));
}
