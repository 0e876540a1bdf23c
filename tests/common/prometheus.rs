//! Prometheus tools for the metrics tests: the `prometheus` and `promtool` binaries (installed by
//! `scripts/setup-prometheus.sh`, which the test command runs; a missing binary fails the test
//! and names that script), and a Prometheus server of the test's own — loopback, a free port,
//! its own storage in a temporary directory, scraping the given targets every second — with its
//! query API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::scrape;

/// The command that installs the binaries.
pub const SETUP: &str = "scripts/setup-prometheus.sh";

/// How long Prometheus may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of `tool` on PATH; panics, naming the setup command, when it is not installed.
pub fn binary(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(tool)).find(|path| path.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "`{tool}` is not installed: run `{SETUP}` as root (it installs the Debian package \
                 prometheus), or the whole suite with `scripts/test.sh`, which runs it first"
            )
        })
}

/// A process for Prometheus to scrape.
#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    /// The `job` label of its series.
    pub job: String,
    /// Where its `/metrics` is.
    pub metrics: SocketAddr,
}

/// A Prometheus server run by the test, killed when dropped.
pub struct PrometheusServer {
    pub addr: SocketAddr,
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

/// One series of a query result.
#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: Value,
    pub value: f64,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `targets` every second and waits until it is ready.
    pub async fn start(targets: &[ScrapeTarget]) -> Self {
        let binary = binary("prometheus");
        let mut dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, scrape_config(targets)).unwrap();
        // Prometheus cannot listen on port 0: take a free port and hand it over. Another
        // process may grab it in between, so a failed start is retried on a new port.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let addr = free_loopback_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let child = tokio::process::Command::new(&binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|error| panic!("{} does not start: {error}", binary.display()));
            let mut server = Self { addr, child, dir };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(problem) => {
                    failures.push(format!("{problem}\n{}", server.log()));
                    dir = server.into_dir().await;
                }
            }
        }
        panic!("Prometheus did not start:\n{}", failures.join("\n---\n"));
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("Prometheus on {} exited: {status}", self.addr));
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok()
                && scrape::request(self.addr, "GET", "/-/ready").await.0 == 200
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("Prometheus on {} not ready after {READY_TIMEOUT:?}", self.addr));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the process and keeps its directory for another try.
    async fn into_dir(mut self) -> tempfile::TempDir {
        let _ = self.child.kill().await;
        self.dir
    }

    /// What Prometheus logged (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Runs an instant query; an error is Prometheus's own message (a bad query).
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", percent_encode(promql))).await?;
        let results = data["result"].as_array().cloned().unwrap_or_default();
        Ok(results
            .into_iter()
            .map(|result| {
                let value =
                    result["value"][1].as_str().and_then(|value| value.parse().ok()).unwrap_or(f64::NAN);
                Sample { labels: result["metric"].clone(), value }
            })
            .collect())
    }

    /// The values of `label` over the series `selector` matches.
    pub async fn label_values(&self, selector: &str, label: &str) -> Result<Vec<String>, String> {
        let data = self
            .api(&format!("/api/v1/label/{label}/values?match%5B%5D={}", percent_encode(selector)))
            .await?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|value| value.as_str().map(str::to_owned))
            .collect())
    }

    /// `GET path` on the HTTP API: its `data`, or the error it reported.
    async fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = scrape::request(self.addr, "GET", path).await;
        let response: Value = serde_json::from_str(&body)
            .map_err(|error| format!("HTTP {status}, not JSON ({error}): {body}"))?;
        if response["status"] != "success" {
            return Err(format!("{}: {}", response["errorType"], response["error"]));
        }
        Ok(response["data"].clone())
    }
}

/// The configuration: one job per job name with all of its targets, scraped every second.
fn scrape_config(targets: &[ScrapeTarget]) -> String {
    let mut jobs: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for target in targets {
        jobs.entry(&target.job).or_default().push(format!("'{}'", target.metrics));
    }
    let mut config = String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for (job, addresses) in jobs {
        config.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            addresses.join(", ")
        ));
    }
    config
}

/// A loopback port nobody listens on right now.
fn free_loopback_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// `text` percent-encoded for a URL query.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
