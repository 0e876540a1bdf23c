//! Stubs that make streamstorm answer exactly as the baseline server does: the same
//! notification and user, checked to decode to the same content and encoded size as the
//! baseline's prost messages before any stub is written.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use prost::Message;
use serde_json::{Value, json};
use streamstorm::proto::json::message_from_json;
use streamstorm::proto::load_pool;

/// A stub file being written, for messages already checked against the baseline's.
pub struct Stubs {
    notification: Value,
    user: Value,
    text: String,
}

impl Stubs {
    /// Checks the stubs' messages against the baseline's, read with the protos in `protos`.
    pub fn checked(protos: &Path) -> Result<Self> {
        let notification = notification_json();
        let user = user_json();
        check_same_message(
            protos,
            "myapp.Notification",
            &notification,
            &streamstorm_baseline::notification(),
        )?;
        check_same_message(protos, "myapp.User", &user, &streamstorm_baseline::user())?;
        Ok(Self { notification, user, text: String::new() })
    }

    /// A `Subscribe` stub for calls on exactly `topic`: `messages` notifications, at once.
    pub fn subscribe(&mut self, topic: &str, messages: u32) -> &mut Self {
        let notifications = vec![self.notification.clone(); messages as usize];
        self.subscribe_stream(topic, &notifications)
    }

    /// An idle `Subscribe` stub, as the baseline's [`streamstorm_baseline::IDLE_TOPIC`]: one
    /// notification at once, another after `hold` (a humantime duration), then the end.
    pub fn idle_subscribe(&mut self, topic: &str, hold: &str) -> &mut Self {
        let mut later = self.notification.clone();
        later["_gripmock"] = json!({ "delay": hold });
        self.subscribe_stream(topic, &[self.notification.clone(), later])
    }

    fn subscribe_stream(&mut self, topic: &str, notifications: &[Value]) -> &mut Self {
        let text = &mut self.text;
        let _ = writeln!(text, "- service: myapp.NotificationService\n  method: Subscribe");
        let _ = writeln!(text, "  input: {{ equals: {{ topics: [{topic}] }} }}\n  output:\n    stream:");
        for notification in notifications {
            let _ = writeln!(text, "      - {notification}");
        }
        self
    }

    /// A `GetUser` stub for `user_id: alice`.
    pub fn get_user(&mut self) -> &mut Self {
        let text = &mut self.text;
        let _ = writeln!(text, "- service: myapp.UserService\n  method: GetUser");
        let _ =
            writeln!(text, "  input: {{ equals: {{ user_id: alice }} }}\n  output:\n    data: {}", self.user);
        self
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, &self.text).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The stub's JSON, read as `type_name`, must be the baseline's message: same fields, same
/// encoded size.
fn check_same_message(protos: &Path, type_name: &str, json: &Value, baseline: &impl Message) -> Result<()> {
    let pool = load_pool(&[protos.to_path_buf()], &[]).map_err(|problems| anyhow::anyhow!("{problems}"))?;
    let descriptor = pool.get_message_by_name(type_name).context("type exists")?;
    let stub = message_from_json(&descriptor, json)?;
    let baseline_bytes = baseline.encode_to_vec();
    let decoded = prost_reflect::DynamicMessage::decode(descriptor, baseline_bytes.as_slice())?;
    if decoded != stub || stub.encoded_len() != baseline_bytes.len() {
        bail!("the stub's {type_name} differs from the baseline's: {stub:?} vs {decoded:?}");
    }
    Ok(())
}

/// `streamstorm_baseline::notification()` in proto3 JSON.
fn notification_json() -> Value {
    json!({"topic": "payment", "message": "Payment processed for order 1234 in 23 ms",
           "timestamp": "2024-01-01T12:00:00.250Z", "severity": "WARNING", "sequence": "42"})
}

/// `streamstorm_baseline::user()` in proto3 JSON.
fn user_json() -> Value {
    json!({"user_id": "alice", "name": "Alice Example", "roles": ["admin", "billing"],
           "labels": {"team": "payments"}, "created_at": "2024-01-01T12:00:00Z", "session_ttl": "3600s",
           "login_count": "1234", "avatar": "iVBORw==", "email": "alice@example.com",
           "address": {"street": "1 Main St", "city": "Springfield"}, "state": "USER_STATE_ACTIVE"})
}
