//! Profile hot reload: when the profile file changes, its chaos plan is compiled again and
//! swapped into the engine for new streams; live streams keep the faults drawn at their start.
//! A broken edit keeps the previous plan and logs every problem. Other sections (listen
//! addresses, protos, load) take effect at the next start.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{check_methods, load_profile};
use crate::chaos::{ChaosEngine, FaultPlan};
use crate::proto::MethodCatalog;
use crate::telemetry::names;

/// What a profile reload needs and where the plan goes.
pub struct ProfileReloader {
    pub path: PathBuf,
    pub catalog: Arc<MethodCatalog>,
    pub engine: Arc<ChaosEngine>,
    /// `--seed`, which outranks the profile's `chaos.seed` on every reload too.
    pub seed_override: Option<u64>,
}

impl ProfileReloader {
    /// Watches the profile until `shutdown`; returns the watching task.
    pub fn spawn(self, shutdown: CancellationToken) -> notify::Result<JoinHandle<()>> {
        crate::telemetry::register_counter_at_zero(names::PROFILE_RELOADS, "result", names::RELOAD_RESULTS);
        let file = std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone());
        let reloader = Arc::new(self);
        crate::watch::watch(
            vec![file.clone()],
            move |path| std::path::absolute(path).is_ok_and(|path| path == file),
            shutdown,
            move || {
                let reloader = reloader.clone();
                async move { reloader.reload().await }
            },
        )
    }

    async fn reload(&self) {
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || load_profile(&path)).await;
        let problems = match loaded {
            Ok(Ok(profile)) => {
                let problems = check_methods(&profile, &self.catalog);
                if problems.is_empty() {
                    let seed = self.seed_override.unwrap_or(profile.chaos.seed);
                    let rules = profile.chaos.rules.len();
                    self.engine.replace(FaultPlan { seed, ..profile.chaos });
                    metrics::counter!(names::PROFILE_RELOADS, "result" => "ok").increment(1);
                    info!(profile = %self.path.display(), rules, "Reloaded the chaos plan.");
                    return;
                }
                problems.to_string()
            }
            Ok(Err(problems)) => problems.to_string(),
            Err(error) => error.to_string(),
        };
        metrics::counter!(names::PROFILE_RELOADS, "result" => "error").increment(1);
        warn!(profile = %self.path.display(), "Profile reload failed; the previous plan stays.\n{problems}");
    }
}
