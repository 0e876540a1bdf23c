//! The real parts of the proxy tests: the Python grpcio upstream (`tests/interop/python/
//! upstream.py`) and what it saw, an HTTP/1 server posing as an upstream, the `streamstorm
//! proxy` process in front of either, and the relay checks (grpcio and grpc-js clients that
//! check every message of K concurrent calls of each call pattern).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use super::interop::{Client, interop_dir, script_command};
use super::scrape::{get, parse_samples, sum};
use super::{ServeProcess, ServeStdout, path_str, repo_root, spawn_listening_process};

/// How long a relay check or a client may take before the test fails instead of hanging.
pub const CLIENT_LIMIT: Duration = Duration::from_secs(90);

/// `streamstorm record` in front of `upstream`, writing into `dir` and decoding with the
/// example protos; `extra` adds flags.
pub async fn spawn_recorder(
    upstream: SocketAddr,
    dir: &std::path::Path,
    extra: &[&str],
    stderr: std::process::Stdio,
) -> (ServeProcess, ServeStdout) {
    let upstream = upstream.to_string();
    let protos = repo_root().join("protos/myapp");
    let mut args = vec!["--upstream", &upstream, "--protos", path_str(&protos), "--record", path_str(dir)];
    args.extend_from_slice(extra);
    spawn_listening_process("record", &args, &[("NO_COLOR", "1")], stderr).await
}

/// The interop upstream, a grpcio server (killed when dropped), and the calls it has seen.
pub struct Upstream {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<Value>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// A plaintext upstream on a free loopback port.
    pub async fn start() -> Self {
        Self::launch(&[]).await
    }

    /// A plaintext upstream on this loopback port (one an earlier upstream left, say).
    pub async fn start_on_port(port: u16) -> Self {
        Self::launch(&["--port", &port.to_string()]).await
    }

    /// An upstream serving TLS with this certificate and key.
    pub async fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> Self {
        Self::launch(&["--cert", path_str(cert), "--key", path_str(key)]).await
    }

    async fn launch(args: &[&str]) -> Self {
        let python = interop_dir().join("venv/bin/python");
        assert!(python.exists(), "{} is missing: run scripts/setup-interop.sh", python.display());
        let mut child = tokio::process::Command::new(python)
            .arg(repo_root().join("tests/interop/python/upstream.py"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the upstream starts");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
        let banner = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the upstream announces itself within 20 s")
            .expect("its stdout is readable")
            .unwrap_or_default();
        let addr = banner.rsplit(' ').next().unwrap_or_default().trim_start_matches("https://");
        let addr = addr.parse().unwrap_or_else(|_| panic!("no address in the upstream's banner {banner:?}"));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let record = calls.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let call =
                    serde_json::from_str(&line).unwrap_or_else(|_| panic!("upstream printed {line:?}"));
                record.lock().unwrap().push(call);
            }
        });
        Self { child, addr, calls, reader }
    }

    /// Every call that has ended at the upstream so far, as it printed them.
    pub fn calls(&self) -> Vec<Value> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls the upstream saw that carried metadata `key: value`.
    pub fn calls_with(&self, key: &str, value: &str) -> Vec<Value> {
        self.calls().into_iter().filter(|call| call["metadata"][key] == value).collect()
    }

    /// Waits until `count` calls with metadata `key: value` have ended at the upstream, or
    /// `limit` passes; returns them.
    pub async fn wait_for_calls(&self, key: &str, value: &str, count: usize, limit: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let calls = self.calls_with(key, value);
            if calls.len() >= count || tokio::time::Instant::now() >= deadline {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the upstream process (SIGKILL: its connections are reset by the kernel) and
    /// waits for it.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("the upstream can be killed");
        self.reader.abort();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// An HTTP/1.1-only server (Python's `http.server`) on a free loopback port: an upstream that
/// does not speak HTTP/2.
pub struct Http1Server {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
}

impl Http1Server {
    pub async fn start() -> Self {
        let mut child = tokio::process::Command::new(interop_dir().join("venv/bin/python"))
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("http.server starts");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let banner = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("http.server announces itself")
            .expect("its stdout is readable")
            .unwrap_or_default();
        let port: u16 = banner
            .split_once(" port ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {banner:?}"));
        Self { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) }
    }
}

/// A `streamstorm proxy` process (killed when dropped), with its profile's directory.
pub struct Proxy {
    pub process: ServeProcess,
    /// What the proxy prints after its two address lines.
    pub stdout: ServeStdout,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// `streamstorm proxy --upstream UPSTREAM` with `chaos` (the profile's `chaos:` section
    /// body, indented two spaces, or "" for none) and extra `args`.
    pub async fn start(upstream: &str, chaos: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec!["--upstream", upstream];
        let profile = dir.path().join("proxy.yaml");
        if !chaos.is_empty() {
            std::fs::write(&profile, format!("chaos:\n{chaos}")).unwrap();
            all.extend(["--profile", path_str(&profile)]);
        }
        all.extend_from_slice(args);
        let (process, stdout) =
            spawn_listening_process("proxy", &all, &[], std::process::Stdio::inherit()).await;
        Self { process, stdout, _dir: dir }
    }

    /// A proxy to `upstream` whose every stream gets `rule` (one rule's keys, as YAML flow).
    pub async fn with_rule(upstream: SocketAddr, rule: &str) -> Self {
        Self::start(&upstream.to_string(), &format!("  seed: 11\n  rules:\n    - {rule}\n"), &[]).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.process.addr
    }

    /// The sum of a counter's samples with these labels, from the proxy's `/metrics`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        sum(&parse_samples(&get(self.process.metrics, "/metrics").await), name, labels)
    }

    /// `streamstorm_proxy_upstream_errors_total{reason}`.
    pub async fn upstream_errors(&self, reason: &str) -> f64 {
        self.metric("streamstorm_proxy_upstream_errors_total", &[("reason", reason)]).await
    }
}

/// One call pattern's part of a relay check's summary.
#[derive(Debug, Deserialize)]
pub struct PatternSummary {
    pub calls: usize,
    /// Calls whose every message, header, trailer and status was right.
    pub ok: usize,
    pub messages: usize,
    pub codes: BTreeMap<String, usize>,
    /// The first few mismatches.
    pub problems: Vec<String>,
}

/// What a relay check printed.
#[derive(Debug, Deserialize)]
pub struct RelaySummary {
    pub library: String,
    pub patterns: BTreeMap<String, PatternSummary>,
}

impl RelaySummary {
    /// Asserts every call of every pattern got everything right.
    pub fn assert_all_ok(&self, context: &str) {
        for (pattern, summary) in &self.patterns {
            assert_eq!(
                summary.ok, summary.calls,
                "{context}, {}, {pattern}: {} of {} calls relayed right: {summary:#?}",
                self.library, summary.ok, summary.calls
            );
        }
    }
}

/// What a relay check runs.
#[derive(Debug, Clone)]
pub struct RelayLoad {
    /// Concurrent calls of each pattern.
    pub calls: usize,
    /// Messages per streamed call.
    pub messages: usize,
    /// Which of `unary`, `server`, `client`, `bidi`.
    pub patterns: &'static str,
    /// Connections the calls are spread over.
    pub channels: usize,
}

impl RelayLoad {
    pub fn all_patterns(calls: usize, messages: usize) -> Self {
        Self { calls, messages, patterns: "unary,server,client,bidi", channels: 1 }
    }
}

/// Runs `client`'s relay check against `target` (plaintext, or TLS trusting `tls_root` for
/// Python) and returns its summary.
pub async fn relay_check(
    client: Client,
    target: SocketAddr,
    load: &RelayLoad,
    extra: &[&str],
) -> RelaySummary {
    let mut command = script_command(client, "relay_check");
    command.args(["--target", &target.to_string()]);
    command.args(["--calls", &load.calls.to_string(), "--messages", &load.messages.to_string()]);
    command.args(["--patterns", load.patterns, "--channels", &load.channels.to_string()]);
    command.args(extra);
    let output = tokio::time::timeout(CLIENT_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("the {client:?} relay check did not finish within {CLIENT_LIMIT:?}"))
        .expect("the relay check starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the {client:?} relay check failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("no summary ({error}): {stdout}"))
}
