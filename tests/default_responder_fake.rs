//! The default responder answers with plausible data: fields filled by type and name, the
//! same data for the same seed, and server streams that keep sending at a steady pace until
//! the client cancels — which is what `serve` does with no flags.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{TestServer, call, example_pool, json_message, message_type, open_stream};
use serde_json::{Value, json};
use streamstorm::proto::json::{DefaultFields, FieldNames, message_to_json};
use streamstorm::server::{DefaultResponse, ServerSettings};

const GET_USER: &str = "myapp.UserService/GetUser";
const SUBSCRIBE: &str = "myapp.NotificationService/Subscribe";

async fn fake_server(seed: u64) -> TestServer {
    let default_response = DefaultResponse::Fake { stream_messages: 3, stream_interval: Duration::ZERO };
    TestServer::start(ServerSettings { default_response, seed, ..ServerSettings::default() }).await
}

/// The replies of one GetUser and one Subscribe call, as JSON.
async fn replies(server: &TestServer) -> (Value, Vec<Value>) {
    let pool = example_pool();
    let request = json_message(&pool, "myapp.GetUserRequest", json!({"user_id": "u1"}));
    let user = call(server.channel().await, &pool, GET_USER, vec![request]).await;
    assert!(user.status.code() == tonic::Code::Ok, "{:?}", user.status);
    let request = json_message(&pool, "myapp.SubscribeRequest", json!({"topics": ["user"]}));
    let notifications = call(server.channel().await, &pool, SUBSCRIBE, vec![request]).await;
    assert!(notifications.status.code() == tonic::Code::Ok, "{:?}", notifications.status);
    let to_json = |message| message_to_json(message, FieldNames::Proto, DefaultFields::Skip).unwrap();
    (to_json(&user.responses[0]), notifications.responses.iter().map(to_json).collect())
}

/// Removes the fields that say when a message was sent, which follow the clock, not the seed.
fn without_times(mut value: Value) -> Value {
    if let Value::Object(fields) = &mut value {
        fields.retain(|name, _| !name.contains("time") && !name.ends_with("_at"));
        for field in fields.values_mut() {
            *field = without_times(field.take());
        }
    }
    value
}

#[tokio::test]
async fn fields_are_filled_by_type_and_name() {
    let server = fake_server(7).await;
    let (user, notifications) = replies(&server).await;
    let text = |value: &Value, field: &str| value[field].as_str().unwrap_or_default().to_owned();
    let id = text(&user, "user_id");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "an id: {user}");
    assert!(text(&user, "name").contains(' '), "a full name: {user}");
    let roles = user["roles"].as_array().expect("repeated fields have items");
    assert!((1..=3).contains(&roles.len()), "one to three items: {user}");
    assert!(user["labels"].as_object().is_some_and(|labels| !labels.is_empty()), "map entries: {user}");
    // Enum value 0 is UNSPECIFIED by convention: a named value is drawn.
    assert!(user["state"].as_str().is_some_and(|state| state != "USER_STATE_UNSPECIFIED"), "{user}");
    // One member of the `contact` oneof: the first, an e-mail.
    assert!(text(&user, "email").contains('@') && user.get("phone").is_none(), "{user}");

    assert_eq!(notifications.len(), 3);
    for (index, notification) in notifications.iter().enumerate() {
        assert_eq!(notification["sequence"], json!((index + 1).to_string()), "a counter: {notification}");
        assert!(text(notification, "message").split(' ').count() >= 3, "a sentence: {notification}");
        let at = humantime::parse_rfc3339(&text(notification, "timestamp")).expect("a timestamp");
        let age = SystemTime::now().duration_since(at).unwrap_or_default();
        assert!(age < Duration::from_secs(60), "near now: {notification}");
    }
}

#[tokio::test]
async fn the_same_seed_gives_the_same_data() {
    let (first, second, other) = (fake_server(7).await, fake_server(7).await, fake_server(8).await);
    let strip = |(user, notifications): (Value, Vec<Value>)| {
        (without_times(user), notifications.into_iter().map(without_times).collect::<Vec<_>>())
    };
    let (a, b, c) =
        (strip(replies(&first).await), strip(replies(&second).await), strip(replies(&other).await));
    assert_eq!(a, b);
    assert_ne!(a.0, c.0, "another seed, other data");
    // The next call of a method gets data of its own.
    assert_ne!(strip(replies(&first).await).0, a.0);
}

/// `serve` with no flags: a server stream sends a message a second and stays open.
#[tokio::test]
async fn serve_streams_until_the_client_cancels() {
    let (_server, addr) = common::spawn_serve(&[]).await;
    let pool = example_pool();
    let request = json_message(&pool, "myapp.SubscribeRequest", json!({"topics": ["user"]}));
    let output = message_type(&pool, "myapp.Notification");
    let channel = common::connect(addr).await;
    let mut stream = open_stream(channel, &format!("/{SUBSCRIBE}"), output, futures::stream::iter([request]))
        .await
        .unwrap();
    let started = Instant::now();
    let mut arrivals = Vec::new();
    while arrivals.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(5), stream.message()).await;
        let message = message.expect("the stream keeps sending").expect("no error").expect("not ended");
        assert!(
            message.get_field_by_name("message").is_some_and(|text| !text.as_str().unwrap_or("").is_empty())
        );
        arrivals.push(started.elapsed());
    }
    // A second apart by default (timers fire late on a busy machine, never early).
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(950) && gap < Duration::from_millis(1600), "{arrivals:?}");
    }
    drop(stream);
}
