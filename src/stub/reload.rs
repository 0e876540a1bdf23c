//! Hot reload: when a stub file changes, the whole set is compiled again and swapped in
//! atomically; calls already running keep the set they started with. A broken edit keeps the
//! previous set serving and logs every problem.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use prost_reflect::DescriptorPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::loader::{is_script_file, is_stub_file, load_stubs};
use super::set::StubSet;
use crate::proto::MethodCatalog;

/// Editors write a file in several steps; changes this close together are one reload.
const SETTLE: Duration = Duration::from_millis(200);

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
        let (sender, mut changes) = mpsc::unbounded_channel();
        let watched = self.paths.clone();
        let mut watcher =
            RecommendedWatcher::new(
                move |event: notify::Result<notify::Event>| {
                    if let Ok(event) = event {
                        if event.paths.iter().any(|path| {
                            (is_stub_file(path) || is_script_file(path)) && is_under(path, &watched)
                        }) {
                            let _ = sender.send(());
                        }
                    }
                },
                notify::Config::default(),
            )?;
        for path in &self.paths {
            // Files are watched through their directory: editors often replace them by rename.
            let (target, mode) = if path.is_dir() {
                (path.as_path(), RecursiveMode::Recursive)
            } else {
                (
                    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")),
                    RecursiveMode::NonRecursive,
                )
            };
            watcher.watch(target, mode)?;
        }
        Ok(tokio::spawn(async move {
            let _watcher = watcher;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    change = changes.recv() => if change.is_none() { break },
                }
                tokio::time::sleep(SETTLE).await;
                while changes.try_recv().is_ok() {}
                self.reload().await;
            }
        }))
    }

    async fn reload(&self) {
        let (paths, catalog, pool) = (self.paths.clone(), self.catalog.clone(), self.pool.clone());
        let loaded = tokio::task::spawn_blocking(move || load_stubs(&paths, &catalog, &pool)).await;
        match loaded {
            Ok(Ok(stubs)) => {
                info!(stubs = stubs.len(), "Reloaded stubs.");
                self.target.store(Arc::new(stubs));
            }
            Ok(Err(problems)) => {
                warn!(
                    problems = problems.len(),
                    "Stub reload failed; the previous stubs keep serving.\n{problems}"
                )
            }
            Err(error) => warn!(%error, "Stub reload task failed; the previous stubs keep serving."),
        }
    }
}

/// True when `path` is one of `roots` or inside one of them.
fn is_under(path: &Path, roots: &[PathBuf]) -> bool {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    roots.iter().any(|root| path.starts_with(std::path::absolute(root).unwrap_or_else(|_| root.clone())))
}
