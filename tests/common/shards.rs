//! Scale-out tests' processes: `serve` replicas on free loopback ports, `simulate` shards
//! driving them, and `report merge`, all through the built binary as users run them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

/// A `serve` process, killed when dropped.
pub struct ServeProcess {
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
    _child: tokio::process::Child,
}

impl ServeProcess {
    /// Serves `profile` on free ports; server streams send 20 messages 20 ms apart, so calls
    /// end by themselves and the server's counts settle.
    pub async fn start(profile: &Path) -> Self {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
            .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(["--default-stream-messages", "20", "--default-stream-interval", "20ms", "--profile"])
            .arg(profile)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        let mut address = async || {
            let mut line = String::new();
            stdout.read_line(&mut line).await.unwrap();
            let address = line.trim().rsplit(' ').next().unwrap().trim_start_matches("http://");
            address.trim_end_matches("/metrics").parse::<SocketAddr>().unwrap()
        };
        let (grpc, metrics) = (address().await, address().await);
        Self { grpc, metrics, _child: child }
    }

    /// The server's metrics page, parsed.
    pub async fn samples(&self) -> Vec<(super::scrape::Series, f64)> {
        super::scrape::parse_samples(&super::scrape::get(self.metrics, "/metrics").await)
    }
}

/// Runs `streamstorm` with `args` to the end.
pub async fn streamstorm(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("the binary runs")
}

/// Runs shards `0/count` … of `profile` against `target` at once, each for `duration`,
/// starting together; returns their report files. Each must exit with `expected_exit`.
pub async fn run_shards(
    profile: &Path,
    target: &str,
    duration: &str,
    count: u32,
    dir: &Path,
    expected_exit: i32,
) -> Vec<PathBuf> {
    let start_at =
        humantime::format_rfc3339(std::time::SystemTime::now() + std::time::Duration::from_secs(1));
    let start_at = start_at.to_string();
    let runs = (0..count).map(|index| {
        let report = dir.join(format!("shard-{index}.json"));
        let (profile, start_at) = (profile.to_owned(), start_at.clone());
        async move {
            let shard = format!("{index}/{count}");
            let args = [
                "simulate",
                "--quiet",
                "--metrics-listen",
                "127.0.0.1:0",
                "--target",
                target,
                "--duration",
                duration,
                "--shard",
                &shard,
                "--start-at",
                &start_at,
                "--profile",
                super::path_str(&profile),
                "--report",
                super::path_str(&report),
            ];
            let output = streamstorm(&args).await;
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(expected_exit), "shard {shard}: {stderr}");
            report
        }
    });
    futures::future::join_all(runs).await
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `report merge` over `shards` (plus `extra` flags), its exit code, stderr, and the merged
/// report when one was written.
pub async fn merge(shards: &[PathBuf], extra: &[&str], out: &Path) -> (Option<i32>, String, Option<Value>) {
    let mut args: Vec<&str> = vec!["report", "merge"];
    args.extend(shards.iter().map(|path| super::path_str(path)));
    args.extend(extra);
    args.extend(["--report", super::path_str(out)]);
    let _ = std::fs::remove_file(out);
    let output = streamstorm(&args).await;
    let merged = out.exists().then(|| read_json(out));
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned(), merged)
}
