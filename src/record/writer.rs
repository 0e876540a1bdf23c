//! The writer thread: decodes each finished call, folds it into its method's distinct
//! exchanges, and rewrites the method's files. Every file is written beside its final name
//! (a hidden `.NAME.tmp`, which no stub loader reads) and renamed over it, so a `serve` with
//! hot reload watching the directory never reads half a file; a new exchange's script is in
//! place before the stub file naming it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use tracing::{debug, warn};

use super::exchange::Exchange;
use super::files::{Recorded, has_scripts, script, script_name, stub_file, stub_path};
use super::{CallLog, RecordError};

/// Checks that `dir` is absent or empty, and creates it.
pub fn prepare_dir(dir: &Path) -> Result<(), RecordError> {
    let error = |reason: String| RecordError::Directory { dir: dir.display().to_string(), reason };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|io| error(format!("cannot read it: {io}")))?;
        if entries.next().is_some() {
            return Err(error(
                "the directory is not empty; recordings are not merged into files already there: name a new or empty directory".into(),
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|io| error(format!("cannot create it: {io}")))
}

/// Starts the writer thread; it ends when every sender of `finished` is gone.
pub fn spawn(dir: PathBuf, finished: Receiver<CallLog>) {
    let started = std::thread::Builder::new().name("recorder".into()).spawn(move || {
        let mut writer = Writer { dir, methods: HashMap::new(), failing: HashSet::new() };
        for log in finished {
            writer.record(log);
        }
    });
    if let Err(error) = started {
        warn!(%error, "The recorder's writer thread did not start: nothing will be recorded.");
    }
}

struct Writer {
    dir: PathBuf,
    /// Per method path: its distinct exchanges, and where each identity is among them.
    methods: HashMap<String, (Vec<Recorded>, HashMap<String, usize>)>,
    /// Methods whose files could not be written or whose calls could not be decoded (said once
    /// each).
    failing: HashSet<String>,
}

impl Writer {
    fn record(&mut self, log: CallLog) {
        let method = log.method.clone();
        let exchange = match Exchange::decode(log) {
            Ok(exchange) => exchange,
            Err(reason) => return self.fail(&method.path, &format!("a call is not recorded: {reason}")),
        };
        let (recorded, index) = self.methods.entry(method.path.clone()).or_default();
        let identity = exchange.identity();
        let new_script = match index.get(&identity) {
            Some(&at) => {
                recorded[at].seen += 1;
                None
            }
            None => {
                index.insert(identity, recorded.len());
                recorded.push(Recorded { exchange, seen: 1 });
                has_scripts(&method).then(|| {
                    let last = recorded.len();
                    (script_name(&method, last), script(&method, &recorded[last - 1].exchange))
                })
            }
        };
        let stubs = stub_file(&method, recorded);
        let stub_file = self.dir.join(stub_path(&method));
        let written = new_script
            .map_or(Ok(()), |(name, text)| write_atomically(&stub_file.with_file_name(name), &text))
            .and_then(|()| stubs.and_then(|text| write_atomically(&stub_file, &text)));
        match written {
            Ok(()) => debug!(method = %method.path, "Recorded a call."),
            Err(reason) => self.fail(&method.path, &reason),
        }
    }

    fn fail(&mut self, method: &str, reason: &str) {
        if self.failing.insert(method.to_owned()) {
            warn!(method, "Recording: {reason} (said once per method).");
        }
    }
}

/// Writes `text` to a hidden file beside `path`, then renames it to `path`.
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("recorded");
    let temporary = parent.join(format!(".{name}.tmp"));
    std::fs::create_dir_all(parent)
        .and_then(|()| std::fs::write(&temporary, text))
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|io| format!("cannot write {}: {io}", path.display()))
}
