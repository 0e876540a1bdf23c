//! The workspace a benchmark runs in: its root, the release binaries of streamstorm and of the
//! baseline server (built first, so a benchmark never measures a stale binary), the example
//! protos, and a scratch directory removed at the end.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

/// Paths of a run: the workspace, its release binaries and a scratch directory.
pub struct Workspace {
    pub root: PathBuf,
    pub streamstorm: PathBuf,
    pub baseline: PathBuf,
    pub scratch: PathBuf,
    pub protos: PathBuf,
}

impl Workspace {
    /// Builds both servers (release) and makes a scratch directory named after `benchmark`.
    pub fn prepare(benchmark: &str) -> Result<Self> {
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
        let scratch = std::env::temp_dir().join(format!("{benchmark}-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        Ok(Self {
            streamstorm: target.join("release/streamstorm"),
            baseline: target.join("release/streamstorm-baseline"),
            protos: root.join("protos/myapp"),
            root,
            scratch,
        })
    }

    /// `streamstorm serve` with `profile` and `stubs`, gRPC and metrics on free loopback ports.
    pub fn streamstorm_server(&self, profile: &Path, stubs: &Path) -> Command {
        let mut command = Command::new(&self.streamstorm);
        command.arg("serve").arg("--profile").arg(profile).arg("--stubs").arg(stubs);
        command.args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]);
        command
    }

    /// The baseline server on a free loopback port, with `flags` (see its `--help` line).
    pub fn baseline_server(&self, flags: &[&str]) -> Command {
        let mut command = Command::new(&self.baseline);
        command.args(["--listen", "127.0.0.1:0"]).args(flags);
        command
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}
