//! The two servers the fidelity benchmark compares, both streaming one notification every
//! configured gap on `Subscribe`:
//!
//! - **streamstorm**, `serve` with stubs streaming the baseline's notification and a chaos rule
//!   `latency: { first_message: GAP, per_message: GAP }` on `NotificationService/Subscribe`;
//! - **reference**, the baseline tonic server with `--per-message-delay GAP`: a
//!   `tokio::time::sleep(GAP)` before each message, the naive way.

use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use streamstorm_driver::harness::process::ServerProcess;
use streamstorm_driver::harness::stubs::Stubs;
use streamstorm_driver::harness::workspace::Workspace;

/// The topic the streamstorm stub answers; the reference streams for any topic but `idle`.
pub const PACED_TOPIC: &str = "paced";

/// Which server a measurement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Streamstorm,
    Reference,
}

impl Server {
    pub const BOTH: [Self; 2] = [Self::Streamstorm, Self::Reference];

    pub fn name(self) -> &'static str {
        match self {
            Self::Streamstorm => "streamstorm",
            Self::Reference => "reference",
        }
    }
}

/// Starts both servers, each sending `messages` notifications per call, one every `gap`.
pub fn start_both(workspace: &Workspace, gap: Duration, messages: u32) -> Result<[ServerProcess; 2]> {
    let streamstorm = ServerProcess::start(streamstorm_command(workspace, gap, messages)?)?;
    let delay = humantime::format_duration(gap).to_string();
    let reference = workspace.baseline_server(&[
        "--stream-messages",
        &messages.to_string(),
        "--per-message-delay",
        &delay,
    ]);
    Ok([streamstorm, ServerProcess::start(reference)?])
}

/// Writes the stubs and the profile, and returns the `serve` command.
fn streamstorm_command(workspace: &Workspace, gap: Duration, messages: u32) -> Result<Command> {
    let stubs = workspace.scratch.join("paced-stubs.yaml");
    Stubs::checked(&workspace.protos)?.subscribe(PACED_TOPIC, messages).write(&stubs)?;
    let profile = workspace.scratch.join("paced-profile.yaml");
    std::fs::write(&profile, profile_yaml(workspace, gap))?;
    Ok(workspace.streamstorm_server(&profile, &stubs))
}

/// The profile: the example protos, one latency rule on `Subscribe`, metrics on (as in use).
/// `first_message` is the same gap, so every message of a stream waits alike.
fn profile_yaml(workspace: &Workspace, gap: Duration) -> String {
    let gap = humantime::format_duration(gap);
    format!(
        "server:\n  protos: [{protos:?}]\n\
         chaos:\n  seed: 1\n  rules:\n    - match: {{ method: myapp.NotificationService/Subscribe }}\n      \
         latency: {{ first_message: {gap}, per_message: {gap} }}\n\
         metrics:\n  listen: 127.0.0.1:0\n",
        protos = workspace.protos.display().to_string(),
    )
}
