//! The built-in load client (`streamstorm simulate --target`) measured against the driver on
//! the same server: one throughput run of it against a running server (rate, its CPU and the
//! server's per message).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use streamstorm_driver::harness::process::{ServerProcess, cpu, run_to_end};

use crate::driven::Throughput;
use crate::setup::Workspace;

/// Drives `server` with the built-in load client, with the load in `profile`, for `seconds`.
pub fn throughput(
    workspace: &Workspace,
    server: &ServerProcess,
    profile: &Path,
    seconds: f64,
    ticks: f64,
) -> Result<Throughput> {
    let report_path = workspace.scratch.join("throughput.json");
    let server_before = cpu(server.pid(), ticks)?.seconds;
    let client = workspace
        .client(profile, server.addr, seconds, &report_path)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let client_cpu = run_to_end(client, ticks, Duration::from_secs_f64(seconds + 30.0))?;
    let server_cpu = cpu(server.pid(), ticks)?.seconds - server_before;
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report_path)?)?;
    let received = report["messages"]["received"].as_f64().context("report without messages")?;
    let duration = report["duration_s"].as_f64().context("report without duration")?;
    let failed = report["streams"]["failed"].as_u64().unwrap_or(0);
    if received == 0.0 || failed > 0 {
        bail!("the run did not go cleanly: {received} messages received, {failed} calls failed");
    }
    Ok(Throughput {
        per_second: received / duration,
        client_cpu_per_message: client_cpu / received,
        server_cpu_per_message: server_cpu / received,
    })
}
