//! What the end-to-end benchmark needs before it starts, on top of the shared harness
//! ([`streamstorm_driver::harness`]): the stubs for its three calls, the streamstorm profile,
//! and the built-in load client's profiles and command line.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use streamstorm_baseline::IDLE_TOPIC;
use streamstorm_driver::harness::stubs::Stubs;
use streamstorm_driver::harness::workspace;

/// A `Subscribe` with this topic streams [`Workspace::stream_messages`] notifications.
pub const LOAD_TOPIC: &str = "load";

/// The shared workspace (binaries, protos, scratch) and this benchmark's stream length.
pub struct Workspace {
    shared: workspace::Workspace,
    /// Notifications per streamed `Subscribe` call, on both servers.
    pub stream_messages: u32,
}

impl Deref for Workspace {
    type Target = workspace::Workspace;

    fn deref(&self) -> &Self::Target {
        &self.shared
    }
}

impl Workspace {
    /// Builds both servers (release) and prepares the scratch directory.
    pub fn prepare(stream_messages: u32) -> Result<Self> {
        Ok(Self { shared: workspace::Workspace::prepare("streamstorm-bench")?, stream_messages })
    }

    /// The streamstorm profile: protos, a chaos plan injecting nothing, metrics on.
    pub fn profile(&self) -> PathBuf {
        self.root.join("benches/e2e/profile.yaml")
    }

    /// Writes the stubs for streamstorm, after checking that their messages are the baseline's.
    /// The idle stream sends one message at once and the next after an hour, as the baseline's.
    pub fn write_stubs(&self) -> Result<PathBuf> {
        let path = self.scratch.join("stubs.yaml");
        Stubs::checked(&self.protos)?
            .subscribe(LOAD_TOPIC, self.stream_messages)
            .idle_subscribe(IDLE_TOPIC, "1h")
            .get_user()
            .write(&path)?;
        Ok(path)
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
        self.shared.streamstorm_server(&self.profile(), stubs)
    }

    /// `streamstorm proxy` in front of `upstream`, with the benchmark's quiet proxy profile.
    pub fn proxy_server(&self, upstream: std::net::SocketAddr) -> Command {
        let mut command = Command::new(&self.streamstorm);
        command.arg("proxy").arg("--upstream").arg(upstream.to_string());
        command.arg("--profile").arg(self.root.join("benches/e2e/proxy-profile.yaml"));
        command.args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]);
        command
    }

    pub fn baseline_server(&self) -> Command {
        self.shared.baseline_server(&["--stream-messages", &self.stream_messages.to_string()])
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
