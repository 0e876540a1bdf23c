//! Helpers shared by the integration tests: an in-process server on a free loopback port, a
//! dynamic tonic client, and access to the interop tools the test command installs.
#![allow(dead_code)]

pub mod chaos;
pub mod chaos_traffic;
pub mod cuts;
pub mod dashboards;
pub mod echo;
pub mod interop;
pub mod judge;
pub mod prometheus;
pub mod proxy;
pub mod raw_h2;
pub mod schema;
pub mod scrape;
pub mod shards;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use std::sync::Arc;

use arc_swap::ArcSwap;
use streamstorm::proto::{DynamicCodec, MethodCatalog, OutboundMessage, load_pool};
use streamstorm::server::introspection::{BUILTIN_SERVICE_PREFIXES, add_builtin_descriptors};
use streamstorm::server::{BoundServer, DefaultResponder, DefaultResponse, ServerHandle, ServerSettings};
use streamstorm::stub::{StubResponder, load_stubs};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

/// The seed in-process test servers give scripts, so their random output repeats.
pub const TEST_SEED: u64 = 42;

/// The repository root (where `protos/` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The example protos shipped in `protos/`.
pub fn example_pool() -> DescriptorPool {
    load_pool(&[repo_root().join("protos")], &[]).expect("the example protos load")
}

pub fn message_type(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(name).unwrap_or_else(|| panic!("{name} is in the pool"))
}

/// A server running in this process until dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub pool: DescriptorPool,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Serves the example protos on a free port with `settings` (its `listen` is ignored).
    pub async fn start(settings: ServerSettings) -> Self {
        Self::start_with_pool(example_pool(), settings).await
    }

    pub async fn start_with_pool(pool: DescriptorPool, settings: ServerSettings) -> Self {
        let settings = ServerSettings { listen: "127.0.0.1:0".parse().unwrap(), ..settings };
        let server = BoundServer::bind(pool.clone(), settings).await.expect("the server binds");
        Self::from_bound(server, pool)
    }

    /// Serves the protos under `proto_paths` with the stubs under `stub_paths` (both relative
    /// to the repository root, or absolute), the default responder answering methods without
    /// stubs.
    pub async fn start_with_stubs(proto_paths: &[&str], stub_paths: &[&str]) -> Self {
        let proto_paths: Vec<PathBuf> = proto_paths.iter().map(|path| repo_root().join(path)).collect();
        let mut pool =
            load_pool(&proto_paths, &[]).unwrap_or_else(|problems| panic!("protos load:\n{problems}"));
        add_builtin_descriptors(&mut pool).expect("built-in descriptors load");
        let catalog = MethodCatalog::new(&pool, BUILTIN_SERVICE_PREFIXES);
        let paths: Vec<PathBuf> = stub_paths.iter().map(|path| repo_root().join(path)).collect();
        let stubs =
            load_stubs(&paths, &catalog, &pool).unwrap_or_else(|problems| panic!("stubs load:\n{problems}"));
        let fallback = Arc::new(DefaultResponder::new(DefaultResponse::default()));
        let responder =
            Arc::new(StubResponder::new(Arc::new(ArcSwap::from_pointee(stubs)), fallback, TEST_SEED));
        let settings = ServerSettings { listen: "127.0.0.1:0".parse().unwrap(), ..ServerSettings::default() };
        let server =
            BoundServer::bind_with(&mut pool.clone(), settings, responder).await.expect("the server binds");
        Self::from_bound(server, pool)
    }

    /// Runs an already bound server.
    pub fn from_bound(server: BoundServer, pool: DescriptorPool) -> Self {
        let addr = server.local_addr();
        let handle = server.handle();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.serve(shutdown.clone()));
        Self { addr, handle, pool, shutdown, task: Some(task) }
    }

    /// A new client connection (its own HTTP/2 connection).
    pub async fn channel(&self) -> Channel {
        connect(self.addr).await
    }

    /// A client connection made without awaiting (lazily connected on first use).
    pub fn clone_channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr)).unwrap().connect_lazy()
    }

    /// Begins graceful shutdown and waits for the server to stop.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("the server task ends cleanly");
        }
    }

    /// Begins graceful shutdown without waiting.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What a call returned: every response message and the final status.
#[derive(Debug)]
pub struct CallOutcome {
    pub responses: Vec<DynamicMessage>,
    pub status: tonic::Status,
}

/// Makes any kind of call the way the server sees all of them: a stream each way.
pub fn call(
    channel: Channel,
    pool: &DescriptorPool,
    method: &str,
    requests: Vec<OutboundMessage>,
) -> impl std::future::Future<Output = CallOutcome> + Send + 'static {
    let (service, name) = method.split_once('/').expect("method is Service/Method");
    let descriptor = pool
        .get_service_by_name(service)
        .and_then(|s| s.methods().find(|m| m.name() == name))
        .map(|m| m.output())
        .unwrap_or_else(|| message_type(pool, "google.protobuf.Empty"));
    call_raw(channel, format!("/{method}"), descriptor, requests)
}

/// As [`call`], for any path and response type (including paths the server does not know).
pub async fn call_raw(
    channel: Channel,
    path: String,
    response_type: MessageDescriptor,
    requests: Vec<OutboundMessage>,
) -> CallOutcome {
    let mut responses = Vec::new();
    let status = match open_stream(channel, &path, response_type, futures::stream::iter(requests)).await {
        Ok(mut stream) => loop {
            match stream.message().await {
                Ok(Some(message)) => responses.push(message),
                Ok(None) => break tonic::Status::ok(""),
                Err(status) => break status,
            }
        },
        Err(status) => status,
    };
    CallOutcome { responses, status }
}

/// Opens any kind of call as a stream each way; the responses arrive as they are sent.
pub async fn open_stream(
    channel: Channel,
    path: &str,
    response_type: MessageDescriptor,
    requests: impl futures::Stream<Item = OutboundMessage> + Send + 'static,
) -> Result<tonic::Streaming<DynamicMessage>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let path = http::uri::PathAndQuery::try_from(path).expect("a valid path");
    let response =
        grpc.streaming(tonic::Request::new(requests), path, DynamicCodec::for_client(response_type)).await?;
    Ok(response.into_inner())
}

/// Opens a `myapp.NotificationService/Subscribe` on `channel` (once the server has answered its
/// headers) and reads it to its end in a task: how many messages arrived, and the final code.
pub async fn subscribe(
    channel: Channel,
    pool: &DescriptorPool,
) -> tokio::task::JoinHandle<(usize, tonic::Code)> {
    let response = message_type(pool, "myapp.Notification");
    let request = json_message(pool, "myapp.SubscribeRequest", serde_json::json!({}));
    let path = "/myapp.NotificationService/Subscribe";
    let mut stream = open_stream(channel, path, response, futures::stream::iter([request]))
        .await
        .expect("the subscription opens");
    tokio::spawn(async move {
        let (arrivals, status) = arrivals(&mut stream, std::time::Instant::now()).await;
        (arrivals.len(), status.code())
    })
}

/// Reads `stream` to its end: when each message arrived (since `started`) and the final status.
pub async fn arrivals(
    stream: &mut tonic::Streaming<DynamicMessage>,
    started: std::time::Instant,
) -> (Vec<Duration>, tonic::Status) {
    let mut arrivals = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(_)) => arrivals.push(started.elapsed()),
            Ok(None) => return (arrivals, tonic::Status::ok("")),
            Err(status) => return (arrivals, status),
        }
    }
}

/// The services the example protos define, with the built-in ones, as reflection lists them.
pub const EXAMPLE_SERVICES: &[&str] = &[
    "gripmock.chat.ChatService",
    "gripmock.collaboration.CollaborationService",
    "gripmock.data.DataProcessorService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "myapp.ChatService",
    "myapp.NotificationService",
    "myapp.UploadService",
    "myapp.UserService",
];

/// Starts the `streamstorm serve` binary on a free port with the example protos and `args`;
/// returns the process (killed when dropped) and the address it announced.
pub async fn spawn_serve(args: &[&str]) -> (tokio::process::Child, SocketAddr) {
    let protos = repo_root().join("protos");
    let mut all = vec!["--protos", path_str(&protos)];
    all.extend_from_slice(args);
    spawn_serve_with(&all).await
}

/// Starts `streamstorm serve --listen 127.0.0.1:0 ARGS`; see [`spawn_serve`].
pub async fn spawn_serve_with(args: &[&str]) -> (tokio::process::Child, SocketAddr) {
    spawn_serve_env(args, &[]).await
}

/// As [`spawn_serve_with`], with extra environment variables.
pub async fn spawn_serve_env(args: &[&str], env: &[(&str, &str)]) -> (tokio::process::Child, SocketAddr) {
    let served = spawn_serve_process(args, env).await;
    (served.child, served.addr)
}

/// A `streamstorm serve` process and the addresses it announced.
pub struct ServeProcess {
    pub child: tokio::process::Child,
    /// gRPC.
    pub addr: SocketAddr,
    /// `/metrics`, `/streams`, `/admin/`.
    pub metrics: SocketAddr,
}

/// Starts `streamstorm serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 ARGS` with extra
/// environment variables (the process is killed when dropped).
pub async fn spawn_serve_process(args: &[&str], env: &[(&str, &str)]) -> ServeProcess {
    spawn_serve_process_with_stderr(args, env, std::process::Stdio::inherit()).await
}

/// As [`spawn_serve_process`], with the log (stderr) going to `stderr` (e.g. piped, to read it
/// from `child.stderr`).
pub async fn spawn_serve_process_with_stderr(
    args: &[&str],
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> ServeProcess {
    spawn_serve_process_keeping_stdout(args, env, stderr).await.0
}

/// The rest of a `serve` process's stdout, after the addresses it announced.
pub type ServeStdout = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// As [`spawn_serve_process_with_stderr`], keeping the rest of stdout for the caller (what
/// `serve` prints at its end, such as its verdicts). Read it to its end: once it is dropped,
/// whatever `serve` still prints fails.
pub async fn spawn_serve_process_keeping_stdout(
    args: &[&str],
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (ServeProcess, ServeStdout) {
    spawn_listening_process("serve", args, env, stderr).await
}

/// Starts `streamstorm SUBCOMMAND --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 ARGS` for a
/// subcommand that announces its two addresses as `serve` does (`serve`, `proxy`), keeping the
/// rest of stdout for the caller; see [`spawn_serve_process_keeping_stdout`].
pub async fn spawn_listening_process(
    subcommand: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (ServeProcess, ServeStdout) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args([subcommand, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut announced = async |what: &str| -> SocketAddr {
        let line = lines.next_line().await.expect("stdout is readable").unwrap_or_default();
        let addr = line.rsplit(' ').next().unwrap_or_default().trim();
        let addr =
            addr.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches("/metrics");
        addr.parse().unwrap_or_else(|_| panic!("no {what} address in {line:?}"))
    };
    let addr = announced("gRPC").await;
    let metrics = announced("metrics").await;
    (ServeProcess { child, addr, metrics }, lines)
}

/// A `streamstorm simulate` process and where it serves its metrics.
pub struct SimulateProcess {
    pub child: tokio::process::Child,
    pub metrics: SocketAddr,
}

/// Starts `streamstorm simulate --quiet --metrics-listen <a free loopback port> ARGS` (killed
/// when dropped) and waits until its metrics answer.
pub async fn spawn_simulate_process(args: &[&str]) -> SimulateProcess {
    spawn_simulate_process_with_output(args, std::process::Stdio::null(), std::process::Stdio::inherit())
        .await
}

/// As [`spawn_simulate_process`], with the report (stdout) and the log (stderr) going where
/// the caller says.
pub async fn spawn_simulate_process_with_output(
    args: &[&str],
    stdout: std::process::Stdio,
    stderr: std::process::Stdio,
) -> SimulateProcess {
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args(["simulate", "--quiet", "--metrics-listen", &metrics.to_string()])
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(metrics).await.is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("simulate exited with {status} before serving metrics on {metrics}");
        }
        assert!(tokio::time::Instant::now() < deadline, "simulate never served metrics on {metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    SimulateProcess { child, metrics }
}

/// Writes `dir/profile.yaml`: a `server` section serving the `myapp` example protos, then
/// `body` (the other sections). Written whole then renamed, as editors do, so a watcher never
/// reads half a file.
pub fn write_profile(dir: &Path, body: &str) -> PathBuf {
    let protos = repo_root().join("protos/myapp");
    let path = dir.join("profile.yaml");
    let staging = dir.join("profile.yaml.tmp");
    std::fs::write(&staging, format!("server:\n  protos: [{}]\n{body}", path_str(&protos))).unwrap();
    std::fs::rename(&staging, &path).unwrap();
    path
}

/// A client connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.expect("the client connects")
}

/// A request message built from JSON.
pub fn json_message(pool: &DescriptorPool, type_name: &str, json: serde_json::Value) -> OutboundMessage {
    let descriptor = message_type(pool, type_name);
    OutboundMessage::Dynamic(
        streamstorm::proto::json::message_from_json(&descriptor, &json).expect("valid JSON"),
    )
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// Resident memory of a process in bytes, from /proc.
pub fn resident_bytes(pid: u32) -> u64 {
    proc_status_bytes(pid, "VmRSS:")
}

/// The most resident memory a process has had, in bytes, from /proc.
pub fn peak_resident_bytes(pid: u32) -> u64 {
    proc_status_bytes(pid, "VmHWM:")
}

/// Resident memory of a process that may be ending: `None` once it is gone.
pub fn resident_bytes_now(pid: u32) -> Option<u64> {
    read_status_bytes(pid, "VmRSS:")
}

fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    read_status_bytes(pid, field).unwrap_or_else(|| panic!("{field} is reported for process {pid}"))
}

fn read_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kib * 1024)
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}
