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
        let mut build = Command::new(cargo);
        build.current_dir(&root).args([
            "build",
            "--release",
            "-p",
            "streamstorm",
            "-p",
            "streamstorm-baseline",
            "--bins",
        ]);
        // `cargo run` gives this process its package's variables; some build scripts (ring's)
        // track them, and would rebuild the servers on every run if they leaked into the build.
        for (name, _) in std::env::vars_os() {
            if let Some(name) = name.to_str().filter(|name| is_package_variable(name)) {
                build.env_remove(name);
            }
        }
        let status = build.status()?;
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

/// The variables `cargo run` sets for the program it runs, about the program's own package.
fn is_package_variable(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || matches!(name, "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE")
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}
