//! The real clients the test command installs under `.interop/` (grpcurl, Python grpcio,
//! Node @grpc/grpc-js): where they are, how to run them, and what they print. A missing tool is
//! a test failure with the setup command in the message, never a skip.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;

use serde::Deserialize;
use serde_json::Value;

use super::repo_root;

/// Where the setup script put the tools.
pub fn interop_dir() -> PathBuf {
    std::env::var_os("STREAMSTORM_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".interop"))
}

pub fn require(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-interop.sh (the README's test command runs it)",
        path.display()
    );
    path
}

/// Which real client library makes the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Python,
    Node,
}

/// What a client printed about its call. Times are milliseconds since the call started.
#[derive(Debug, Deserialize)]
pub struct ClientOutcome {
    pub responses: Vec<Value>,
    pub code: String,
    pub details: String,
    #[serde(default)]
    pub initial_metadata: serde_json::Map<String, Value>,
    #[serde(default)]
    pub trailing_metadata: serde_json::Map<String, Value>,
    pub received_at_ms: Vec<f64>,
    pub sent_at_ms: Vec<f64>,
    #[serde(default)]
    pub rich_status: Option<Value>,
    /// When the final status was known.
    pub ended_at_ms: f64,
    /// With [`ClientCall::call_starts_ms`]: when this call started, since the first one did.
    #[serde(default)]
    pub started_at_ms: f64,
    /// What the client wrote to stderr (library traces asked for with [`ClientCall::env`]).
    #[serde(skip)]
    pub stderr: String,
}

impl ClientOutcome {
    /// When the final status was known, on the clock shared by every call of one client run.
    pub fn ended_at(&self) -> f64 {
        self.started_at_ms + self.ended_at_ms
    }
}

/// The report of a client run making several calls.
#[derive(Debug, Deserialize)]
struct ClientCalls {
    calls: Vec<ClientOutcome>,
}

/// One call made by a real client library.
pub struct ClientCall {
    client: Client,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl ClientCall {
    pub fn new(client: Client, target: SocketAddr, method: &str) -> Self {
        let mut call = Self { client, args: vec!["--target".into(), target.to_string()], env: Vec::new() };
        match client {
            Client::Python => call
                .args
                .extend(["--proto-root".into(), interop_dir().join("python-gen").display().to_string()]),
            Client::Node => {
                call.args.extend(["--proto-root".into(), repo_root().join("protos").display().to_string()])
            }
        }
        if !method.is_empty() {
            call.args.extend(["--method".into(), method.into()]);
        }
        call
    }

    /// A Python `grpc.health.v1.Health/Check` of `service` ("" for the whole server).
    pub fn health(target: SocketAddr, service: &str) -> Self {
        Self::new(Client::Python, target, "").arg("--health").arg(service)
    }

    pub fn requests(self, requests: Value) -> Self {
        self.arg("--requests").arg(requests.to_string())
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// A channel option, given to the library as is (`grpc.keepalive_time_ms=1000`).
    pub fn channel_option(self, key: &str, value: impl std::fmt::Display) -> Self {
        self.arg("--channel-option").arg(format!("{key}={value}"))
    }

    /// Makes one call per entry on the same channel, each this many ms after the first; use
    /// [`Self::run_calls`] for the reports.
    pub fn call_starts_ms(self, starts: &[u64]) -> Self {
        let starts: Vec<String> = starts.iter().map(u64::to_string).collect();
        self.arg("--call-starts-ms").arg(starts.join(","))
    }

    /// An environment variable for the client process (e.g. the library's trace switches).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the client and parses its report; panics on a harness error.
    pub async fn run(self) -> ClientOutcome {
        let (output, args) = self.output().await;
        let mut outcome: ClientOutcome = parse_report(&output, &args);
        outcome.stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        outcome
    }

    /// Runs a client making several calls ([`Self::call_starts_ms`]); their reports in order.
    pub async fn run_calls(self) -> Vec<ClientOutcome> {
        let (output, args) = self.output().await;
        let ClientCalls { mut calls } = parse_report(&output, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        for call in &mut calls {
            call.stderr = stderr.to_string();
        }
        calls
    }

    /// Runs the client to its end. The process is killed if the future is dropped, so a caller
    /// may bound a client that hangs with `tokio::time::timeout`.
    async fn output(self) -> (Output, Vec<String>) {
        let mut command = script_command(self.client, "client");
        command.args(&self.args).envs(self.env);
        (command.output().await.expect("the client starts"), self.args)
    }
}

/// A command running the program `name` (`client`, `subscriber`) of `client`'s library from
/// `tests/interop/` (`python/NAME.py` or `node/NAME.js`), killed when dropped.
pub fn script_command(client: Client, name: &str) -> tokio::process::Command {
    let (program, script) = match client {
        Client::Python => {
            (require(interop_dir().join("venv/bin/python")), format!("tests/interop/python/{name}.py"))
        }
        Client::Node => ("node".into(), format!("tests/interop/node/{name}.js")),
    };
    let mut command = tokio::process::Command::new(program);
    command.arg(repo_root().join(script)).kill_on_drop(true);
    if client == Client::Node {
        command.env("NODE_PATH", require(interop_dir().join("node/node_modules")));
    }
    command
}

fn parse_report<T: serde::de::DeserializeOwned>(output: &Output, args: &[String]) -> T {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("client printed no report ({error}): {stdout}"))
}

/// What grpcurl said.
#[derive(Debug)]
pub struct GrpcurlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl GrpcurlOutput {
    /// The JSON messages grpcurl printed, one after another.
    pub fn messages(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|error| {
                panic!("grpcurl printed something other than JSON ({error}): {}", self.stdout)
            })
    }
}

/// Runs `grpcurl -plaintext FLAGS TARGET COMMAND...`, feeding `stdin` when given (for `-d @`).
pub async fn grpcurl(
    target: SocketAddr,
    flags: &[&str],
    command: &[&str],
    stdin: Option<&str>,
) -> GrpcurlOutput {
    grpcurl_over(&["-plaintext"], target, flags, command, stdin).await
}

/// Runs `grpcurl TRANSPORT FLAGS TARGET COMMAND...`; `TRANSPORT` is `-plaintext`, or TLS
/// flags such as `-cacert ca.pem`.
pub async fn grpcurl_over(
    transport: &[&str],
    target: SocketAddr,
    flags: &[&str],
    command: &[&str],
    stdin: Option<&str>,
) -> GrpcurlOutput {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(require(interop_dir().join("bin/grpcurl")))
        .args(transport)
        .args(flags)
        .arg(target.to_string())
        .args(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("grpcurl starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    input.write_all(stdin.unwrap_or_default().as_bytes()).await.expect("grpcurl reads its input");
    drop(input);
    let output = child.wait_with_output().await.expect("grpcurl runs");
    GrpcurlOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
