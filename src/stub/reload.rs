//! Hot reload: when a stub file changes, the whole set is compiled again and swapped in
//! atomically; calls already running keep the set they started with. A broken edit keeps the
//! previous set serving and logs every problem.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prost_reflect::DescriptorPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::loader::{is_script_file, is_stub_file, load_stubs};
use super::set::StubSet;
use crate::proto::MethodCatalog;
use crate::telemetry::names;

/// What a reload needs and where it puts the result.
pub struct StubReloader {
    pub paths: Vec<PathBuf>,
    pub catalog: Arc<MethodCatalog>,
    pub pool: DescriptorPool,
    pub target: Arc<ArcSwap<StubSet>>,
}

impl StubReloader {
    /// Watches the stub paths until `shutdown`; returns the watching task.
    pub fn spawn(self, shutdown: CancellationToken) -> notify::Result<tokio::task::JoinHandle<()>> {
        crate::telemetry::register_counter_at_zero(names::STUB_RELOADS, "result", names::RELOAD_RESULTS);
        let paths = self.paths.clone();
        let reloader = Arc::new(self);
        crate::watch::watch(
            paths,
            |path| is_stub_file(path) || is_script_file(path),
            shutdown,
            move || {
                let reloader = reloader.clone();
                async move { reloader.reload().await }
            },
        )
    }

    async fn reload(&self) {
        let (paths, catalog, pool) = (self.paths.clone(), self.catalog.clone(), self.pool.clone());
        let loaded = tokio::task::spawn_blocking(move || load_stubs(&paths, &catalog, &pool)).await;
        match loaded {
            Ok(Ok(stubs)) => {
                info!(stubs = stubs.len(), "Reloaded stubs.");
                metrics::counter!(names::STUB_RELOADS, "result" => "ok").increment(1);
                self.target.store(Arc::new(stubs));
            }
            Ok(Err(problems)) => {
                metrics::counter!(names::STUB_RELOADS, "result" => "error").increment(1);
                warn!(
                    problems = problems.len(),
                    "Stub reload failed; the previous stubs keep serving.\n{problems}"
                )
            }
            Err(error) => warn!(%error, "Stub reload task failed; the previous stubs keep serving."),
        }
    }
}
