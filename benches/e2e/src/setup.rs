//! What a benchmark run needs before it starts: the two server binaries built, the stubs that
//! make streamstorm send exactly the baseline's messages (checked byte count and content), and
//! the load client's profiles.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use prost::Message;
use serde_json::{Value, json};
use streamstorm::proto::json::message_from_json;
use streamstorm::proto::load_pool;
use streamstorm_baseline::IDLE_TOPIC;

/// A `Subscribe` with this topic streams [`Workspace::stream_messages`] notifications.
pub const LOAD_TOPIC: &str = "load";

/// Paths of a run: the workspace, its release binaries and a scratch directory.
pub struct Workspace {
    pub root: PathBuf,
    pub streamstorm: PathBuf,
    pub baseline: PathBuf,
    pub scratch: PathBuf,
    pub protos: PathBuf,
    /// Notifications per streamed `Subscribe` call, on both servers.
    pub stream_messages: u32,
}

impl Workspace {
    /// Builds both servers (release) and prepares the scratch directory.
    pub fn prepare(stream_messages: u32) -> Result<Self> {
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).canonicalize()?;
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--release", "-p", "streamstorm", "-p", "streamstorm-baseline", "--bins"])
            .status()?;
        if !status.success() {
            bail!("building the servers failed");
        }
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let scratch = std::env::temp_dir().join(format!("streamstorm-bench-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        Ok(Self {
            streamstorm: target.join("release/streamstorm"),
            baseline: target.join("release/streamstorm-baseline"),
            protos: root.join("protos/myapp"),
            root,
            scratch,
            stream_messages,
        })
    }

    /// The streamstorm profile: protos, a chaos plan injecting nothing, metrics on.
    pub fn profile(&self) -> PathBuf {
        self.root.join("benches/e2e/profile.yaml")
    }

    /// Writes the stubs for streamstorm, after checking that their messages are the baseline's.
    pub fn write_stubs(&self) -> Result<PathBuf> {
        let notification = notification_json();
        let user = user_json();
        self.check_same_message("myapp.Notification", &notification, &streamstorm_baseline::notification())?;
        self.check_same_message("myapp.User", &user, &streamstorm_baseline::user())?;
        let mut stubs = String::new();
        writeln!(stubs, "- service: myapp.NotificationService\n  method: Subscribe")?;
        writeln!(stubs, "  input: {{ equals: {{ topics: [{LOAD_TOPIC}] }} }}\n  output:\n    stream:")?;
        for _ in 0..self.stream_messages {
            writeln!(stubs, "      - {notification}")?;
        }
        // The idle stream: its one message waits an hour, as the baseline's does.
        let mut idle = notification.clone();
        idle["_gripmock"] = json!({"delay": "1h"});
        writeln!(stubs, "- service: myapp.NotificationService\n  method: Subscribe")?;
        writeln!(stubs, "  input: {{ equals: {{ topics: [{IDLE_TOPIC}] }} }}\n  output:\n    stream:")?;
        writeln!(stubs, "      - {idle}")?;
        writeln!(stubs, "- service: myapp.UserService\n  method: GetUser")?;
        writeln!(stubs, "  input: {{ equals: {{ user_id: alice }} }}\n  output:\n    data: {user}")?;
        let path = self.scratch.join("stubs.yaml");
        std::fs::write(&path, stubs)?;
        Ok(path)
    }

    /// The stub's JSON, read as `type_name`, must be the baseline's message: same fields, same
    /// encoded size.
    fn check_same_message(&self, type_name: &str, json: &Value, baseline: &impl Message) -> Result<()> {
        let pool = load_pool(std::slice::from_ref(&self.protos), &[])
            .map_err(|problems| anyhow::anyhow!("{problems}"))?;
        let descriptor = pool.get_message_by_name(type_name).context("type exists")?;
        let stub = message_from_json(&descriptor, json)?;
        let baseline_bytes = baseline.encode_to_vec();
        let decoded = prost_reflect::DynamicMessage::decode(descriptor, baseline_bytes.as_slice())?;
        if decoded != stub || stub.encoded_len() != baseline_bytes.len() {
            bail!("the stub's {type_name} differs from the baseline's: {stub:?} vs {decoded:?}");
        }
        Ok(())
    }

    /// Writes a load-client profile with one scenario.
    pub fn load_profile(&self, name: &str, connections: usize, scenario: &str) -> Result<PathBuf> {
        let path = self.scratch.join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!("load:\n  connections: {connections}\n  scenarios:\n    - {scenario}\n"),
        )?;
        Ok(path)
    }

    pub fn streamstorm_server(&self, stubs: &Path) -> Command {
        let mut command = Command::new(&self.streamstorm);
        command.arg("serve").arg("--profile").arg(self.profile()).arg("--stubs").arg(stubs);
        command.args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]);
        command
    }

    pub fn baseline_server(&self) -> Command {
        let mut command = Command::new(&self.baseline);
        command.args(["--listen", "127.0.0.1:0", "--stream-messages", &self.stream_messages.to_string()]);
        command
    }

    /// `streamstorm simulate` against `target` with the load in `profile`.
    pub fn client(
        &self,
        profile: &Path,
        target: std::net::SocketAddr,
        seconds: f64,
        report: &Path,
    ) -> Command {
        let mut command = Command::new(&self.streamstorm);
        command.arg("simulate").arg("--profile").arg(profile).arg("--target").arg(target.to_string());
        command.arg("--protos").arg(&self.protos).arg("--report").arg(report);
        command.args(["--duration", &format!("{}ms", (seconds * 1000.0) as u64)]);
        command.args(["--metrics-listen", "127.0.0.1:0", "--seed", "1"]);
        command
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
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
