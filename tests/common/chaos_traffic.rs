//! A `streamstorm serve` process under chaos that makes every server metric move, and client
//! traffic to keep it moving: each method has a fault of its own that fires on every call
//! (abort, mid-stream failure, stream reset, GOAWAY), streams get injected latency, a phase
//! timeline alternates with a full outage, connections are drained at a maximum age or closed by
//! the client, and the profile and a stub can be edited once each to count hot reloads.

use std::path::PathBuf;
use std::time::Duration;

use prost_reflect::DescriptorPool;
use serde_json::json;
use streamstorm::proto::OutboundMessage;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::scrape::{get, parse_samples, sum};
use super::{ServeProcess, call, connect, json_message, path_str, repo_root, spawn_serve_process};

/// Every fault fires on every call of its method, so what is counted does not depend on luck.
const PROFILE: &str = r#"
server:
  protos: [PROTOS]
  stubs: [STUBS]
chaos:
  seed: SEED
  rules:
    - match: { method: myapp.UserService/GetUser }
      abort: { rate: 100%, code: UNAVAILABLE, message: "injected abort" }
    - match: { method: myapp.NotificationService/Subscribe }
      latency: { first_message: 1ms..3ms, per_message: 1ms..5ms }
      fail: { rate: 100%, after_messages: 3, code: INTERNAL }
    - match: { method: myapp.ChatService/Chat }
      disconnect: { rate: 100%, after_messages: 2, mode: reset_stream }
    - match: { method: gripmock.chat.ChatService/Chat }
      disconnect: { rate: 100%, after_messages: 1, mode: goaway, grace: 50ms }
PHASES  connections: { max_age: 2s, max_age_grace: 200ms }
metrics:
  per_stream: { max_streams: 4 }
"#;

/// The phase timeline of [`PROFILE`], unless the server is started without one.
const PHASES: &str = r#"  phases:
    - { name: steady, duration: 1500ms }
    - { name: outage, duration: 500ms, abort: { rate: 100%, code: UNAVAILABLE } }
"#;

/// The answer to UploadFile (the one method without faults), in a stub file.
const STUB: &str = r#"
service: myapp.UploadService
method: UploadFile
output:
  data: { file_id: FILE_ID, total_size: 4096, checksum: "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f0", status: SUCCESS }
"#;

/// A `serve` process with [`PROFILE`], killed when dropped.
pub struct ChaosServer {
    pub process: ServeProcess,
    pub pool: DescriptorPool,
    profile: PathBuf,
    stub: PathBuf,
    /// Whether the profile has the phase timeline.
    phases: bool,
    _dir: tempfile::TempDir,
}

impl ChaosServer {
    pub async fn start() -> Self {
        Self::launch(true).await
    }

    /// The same server with no phase timeline in its profile.
    pub async fn start_without_phases() -> Self {
        Self::launch(false).await
    }

    async fn launch(phases: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stubs = dir.path().join("stubs");
        std::fs::create_dir(&stubs).unwrap();
        let profile = dir.path().join("profile.yaml");
        let stub = stubs.join("upload.yaml");
        write_profile(&profile, &stubs, 11, phases);
        std::fs::write(&stub, STUB.replace("FILE_ID", "file-1")).unwrap();
        let process = spawn_serve_process(
            &[
                "--profile",
                path_str(&profile),
                "--default-stream-messages",
                "6",
                "--default-stream-interval",
                "10ms",
            ],
            &[],
        )
        .await;
        Self { process, pool: super::example_pool(), profile, stub, phases, _dir: dir }
    }

    /// Edits the profile (a new seed) and the stub (a new answer); `edit` numbers the edit.
    pub fn edit_inputs(&self, edit: u64) {
        write_profile(&self.profile, self.stub.parent().unwrap(), 12 + edit, self.phases);
        std::fs::write(&self.stub, STUB.replace("FILE_ID", &format!("file-{}", edit + 1))).unwrap();
    }

    /// Successful profile and stub reloads so far, from `/metrics`.
    pub async fn reloads(&self) -> (f64, f64) {
        let samples = parse_samples(&get(self.process.metrics, "/metrics").await);
        let ok = [("result", "ok")];
        (
            sum(&samples, "streamstorm_profile_reloads_total", &ok),
            sum(&samples, "streamstorm_stub_reloads_total", &ok),
        )
    }

    /// Edits the profile and the stub until the server has reloaded each (it watches them from
    /// shortly after it announces itself); returns how many edits that took.
    pub async fn reload_inputs(&self) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        for edit in 1.. {
            self.edit_inputs(edit);
            // Longer than the 200 ms the watcher lets a burst of writes settle.
            tokio::time::sleep(Duration::from_millis(400)).await;
            let (profile, stubs) = self.reloads().await;
            if profile >= 1.0 && stubs >= 1.0 {
                return edit;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no reload after {edit} edits: {:?}",
                (profile, stubs)
            );
        }
        unreachable!()
    }
}

fn write_profile(path: &std::path::Path, stubs: &std::path::Path, seed: u64, phases: bool) {
    let text = PROFILE
        .replace("PHASES", if phases { PHASES } else { "" })
        .replace("PROTOS", path_str(&repo_root().join("protos")))
        .replace("STUBS", path_str(stubs))
        .replace("SEED", &seed.to_string());
    std::fs::write(path, text).unwrap();
}

/// Client traffic on every faulty method, in a loop per method until stopped.
pub struct Traffic {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A pause between calls, so a few loops keep every metric moving without loading the machine.
const PACE: Duration = Duration::from_millis(25);

impl Traffic {
    pub async fn start(server: &ChaosServer) -> Self {
        let stop = CancellationToken::new();
        let addr = server.process.addr;
        let shared = connect(addr).await;
        let pool = &server.pool;
        let message = |type_name: &str, value| json_message(pool, type_name, value);
        let get_user = vec![message("myapp.GetUserRequest", json!({"user_id": "alice"}))];
        let subscribe = vec![message("myapp.SubscribeRequest", json!({"topics": ["user", "payment"]}))];
        let chat =
            (0..4).map(|n| message("myapp.ChatMessage", json!({"content": format!("hello {n}")}))).collect();
        let room = (0..2)
            .map(|n| message("gripmock.chat.ChatMessage", json!({"room_id": "lobby", "sequence": n})))
            .collect();
        let upload = (0..3)
            .map(|n| message("myapp.FileChunk", json!({"data": "AAECAwQFBgcICQ==", "sequence": n})))
            .collect();
        let loops = [
            // Aborted before any message.
            (Some(shared.clone()), "myapp.UserService/GetUser", get_user),
            // Latency on every message, then INTERNAL after three.
            (Some(shared.clone()), "myapp.NotificationService/Subscribe", subscribe),
            // Reset (RST_STREAM) after two answers.
            (Some(shared.clone()), "myapp.ChatService/Chat", chat),
            // GOAWAY after one answer: a connection of its own each time.
            (None, "gripmock.chat.ChatService/Chat", room),
            // Answered OK by the stub on a connection of its own, which the client then closes.
            (None, "myapp.UploadService/UploadFile", upload),
        ];
        let tasks = loops
            .into_iter()
            .map(|(channel, method, requests)| {
                tokio::spawn(call_loop(stop.clone(), addr, channel, pool.clone(), method, requests))
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops every loop and waits for them.
    pub async fn stop(mut self) {
        self.stop.cancel();
        for task in std::mem::take(&mut self.tasks) {
            task.await.expect("a traffic loop ends cleanly");
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Calls `method` until `stop`, on `channel` or on a new connection each time.
async fn call_loop(
    stop: CancellationToken,
    addr: std::net::SocketAddr,
    channel: Option<Channel>,
    pool: DescriptorPool,
    method: &'static str,
    requests: Vec<OutboundMessage>,
) {
    while !stop.is_cancelled() {
        let channel = match &channel {
            Some(channel) => channel.clone(),
            None => connect(addr).await,
        };
        // The outcome is the server's business here; the metrics tests check what it counted.
        tokio::select! {
            _ = call(channel, &pool, method, requests.clone()) => {}
            _ = stop.cancelled() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(PACE) => {}
            _ = stop.cancelled() => break,
        }
    }
}

/// `simulate --target` against a chaos server: its calls fail (aborts, mid-stream failures,
/// outages), reconnect and recover, so every client metric moves.
const LOAD_PROFILE: &str = "server:
  protos: [PROTOS]
load:
  connections: 2
  scenarios:
    - method: myapp.NotificationService/Subscribe
      streams: 5
      request: { topics: [a] }
      reconnect: { initial_backoff: 20ms, max_backoff: 100ms }
    - method: myapp.UserService/GetUser
      streams: 2
      request: { user_id: u }
      reconnect: { initial_backoff: 50ms, max_backoff: 200ms }
";

/// A load client process driving a server for two minutes at most (killed when dropped).
pub struct LoadClient {
    pub process: super::SimulateProcess,
    _dir: tempfile::TempDir,
}

impl LoadClient {
    pub async fn start(server: std::net::SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("load.yaml");
        let protos = repo_root().join("protos/myapp");
        std::fs::write(&profile, LOAD_PROFILE.replace("PROTOS", path_str(&protos))).unwrap();
        let target = server.to_string();
        let args = ["--target", &target, "--duration", "120s", "--profile", path_str(&profile)];
        let process = super::spawn_simulate_process(&args).await;
        Self { process, _dir: dir }
    }
}
