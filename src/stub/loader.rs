//! Finds stub files (YAML and JSON, recursively under directories) and compiles them all into
//! one [`StubSet`], collecting every file's problems before failing.

use std::path::{Path, PathBuf};

use prost_reflect::DescriptorPool;

use super::compile::compile_file;
use super::set::StubSet;
use crate::diagnostic::{Problem, Problems};
use crate::proto::MethodCatalog;

const STUB_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// True when `path` names a stub file by its extension.
pub fn is_stub_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|ext| STUB_EXTENSIONS.contains(&ext))
}

/// The stub files under `paths` (files as given, directories searched recursively), sorted
/// within each directory so load order is stable.
pub fn stub_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Problems> {
    let mut files = Vec::new();
    let mut problems = Problems::default();
    for path in paths {
        if path.is_dir() {
            collect(path, &mut files, &mut problems);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            problems.push(Problem::in_file(path, "no such file or directory"));
        }
    }
    problems.into_result(files)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>, problems: &mut Problems) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|entry| entry.path()).collect(),
        Err(error) => {
            problems.push(Problem::in_file(dir, format!("cannot read directory: {error}")));
            return;
        }
    };
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, files, problems);
        } else if is_stub_file(&path) {
            files.push(path);
        }
    }
}

/// Loads and compiles every stub under `paths` against the catalog's methods.
pub fn load_stubs(
    paths: &[PathBuf],
    catalog: &MethodCatalog,
    pool: &DescriptorPool,
) -> Result<StubSet, Problems> {
    let files = stub_files(paths)?;
    let mut problems = Problems::default();
    let mut stubs = Vec::new();
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) => {
                problems.push(Problem::in_file(file, format!("cannot read: {error}")));
                continue;
            }
        };
        match compile_file(file, &text, catalog, pool, stubs.len()) {
            Ok(compiled) => stubs.extend(compiled),
            Err(found) => problems.extend(found),
        }
    }
    problems.into_result(StubSet::new(stubs))
}
