//! Watching input files for hot reload: files are watched through their directory (editors
//! often replace a file by rename), and a burst of changes is one reload once writes settle.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{MetadataKind, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Editors write a file in several steps; changes this close together are one reload.
const SETTLE: Duration = Duration::from_millis(200);

/// Calls `reload` after each settled burst of changes to files under `paths` that `relevant`
/// accepts, until `shutdown`. Returns the watching task.
pub fn watch<Relevant, Reload, Reloading>(
    paths: Vec<PathBuf>,
    relevant: Relevant,
    shutdown: CancellationToken,
    mut reload: Reload,
) -> notify::Result<JoinHandle<()>>
where
    Relevant: Fn(&Path) -> bool + Send + 'static,
    Reload: FnMut() -> Reloading + Send + 'static,
    Reloading: Future<Output = ()> + Send,
{
    let (sender, mut changes) = mpsc::unbounded_channel();
    let watched = paths.clone();
    let mut watcher = RecommendedWatcher::new(
        move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && changes_content(&event.kind)
                && event.paths.iter().any(|path| relevant(path) && is_under(path, &watched))
            {
                let _ = sender.send(());
            }
        },
        notify::Config::default(),
    )?;
    for path in &paths {
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
            reload().await;
        }
    }))
}

/// Whether an event can change what a file holds. Opening, reading and closing are reported
/// too, and a reload reads the files: counting those would reload again and again.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Other => false,
    }
}

/// True when `path` is one of `roots` or inside one of them.
fn is_under(path: &Path, roots: &[PathBuf]) -> bool {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    roots.iter().any(|root| path.starts_with(std::path::absolute(root).unwrap_or_else(|_| root.clone())))
}
