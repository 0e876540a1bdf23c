//! Finds stub files (YAML and JSON) and stream scripts (JSONL) under the stub paths, compiles
//! them all into one [`StubSet`], and binds each script that no stub names to the method its
//! path spells: `<stubs-dir>/<package.Service>/<Method>.jsonl`. Every file's problems are
//! collected before failing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost_reflect::DescriptorPool;

use super::compile::{compile_file, resolve_service};
use super::set::StubSet;
use crate::diagnostic::{Problem, Problems, files_under};
use crate::proto::MethodCatalog;
use crate::script::{Script, parse_script};

const STUB_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];
const SCRIPT_EXTENSION: &str = "jsonl";

/// True when `path` names a stub file by its extension.
pub fn is_stub_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|ext| STUB_EXTENSIONS.contains(&ext))
}

/// True when `path` names a stream script.
pub fn is_script_file(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == SCRIPT_EXTENSION)
}

/// The stub and script files under `paths` (files as given, directories searched
/// recursively), sorted within each directory so load order is stable.
pub fn stub_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Problems> {
    let mut files = Vec::new();
    let mut problems = Problems::default();
    for path in paths {
        if path.is_dir() {
            files.extend(files_under(
                path,
                &|file| is_stub_file(file) || is_script_file(file),
                &mut problems,
            ));
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            problems.push(Problem::in_file(path, "no such file or directory"));
        }
    }
    problems.into_result(files)
}

/// Loads and compiles every stub and script under `paths` against the catalog's methods.
pub fn load_stubs(
    paths: &[PathBuf],
    catalog: &MethodCatalog,
    pool: &DescriptorPool,
) -> Result<StubSet, Problems> {
    let files = stub_files(paths)?;
    let mut problems = Problems::default();
    let mut stubs = Vec::new();
    for file in files.iter().filter(|file| !is_script_file(file)) {
        match read(file) {
            Ok(text) => match compile_file(file, &text, catalog, pool, stubs.len()) {
                Ok(compiled) => stubs.extend(compiled),
                Err(found) => problems.extend(found),
            },
            Err(problem) => problems.push(problem),
        }
    }
    let named: HashSet<PathBuf> = stubs
        .iter()
        .filter_map(|stub| stub.output.script.as_ref())
        .map(|script| absolute(&script.file))
        .collect();
    let mut scripts: HashMap<String, Arc<Script>> = HashMap::new();
    for file in files.iter().filter(|file| is_script_file(file) && !named.contains(&absolute(file))) {
        match bind_by_path(file, catalog) {
            Ok(method) => {
                let path = method.path.clone();
                let parsed =
                    read(file).map_err(Problems::from).and_then(|text| parse_script(file, &text, method));
                match parsed {
                    Ok(script) => {
                        if let Some(previous) = scripts.insert(path.clone(), Arc::new(script)) {
                            problems.push(Problem::in_file(
                                file,
                                format!("{path} already has a script: {}", previous.file.display()),
                            ));
                        }
                    }
                    Err(found) => problems.extend(found),
                }
            }
            Err(message) => problems.push(Problem::in_file(file, message)),
        }
    }
    problems.into_result(StubSet::with_scripts(stubs, scripts))
}

/// The method a script's path names: its directory is the service, its stem the method.
fn bind_by_path(file: &Path, catalog: &MethodCatalog) -> Result<Arc<crate::proto::MethodEntry>, String> {
    let hint = "a script binds to a method as <stubs-dir>/<package.Service>/<Method>.jsonl, or is named by a stub's output.script";
    let service = file.parent().and_then(Path::file_name).and_then(|name| name.to_str()).unwrap_or_default();
    let method = file.file_stem().and_then(|stem| stem.to_str()).unwrap_or_default();
    let service = resolve_service(catalog, service).map_err(|error| format!("{error}; {hint}"))?;
    catalog
        .by_path(&format!("/{service}/{method}"))
        .cloned()
        .ok_or_else(|| format!("{service} has no method '{method}'; {hint}"))
}

fn read(file: &Path) -> Result<String, Problem> {
    std::fs::read_to_string(file).map_err(|error| Problem::in_file(file, format!("cannot read: {error}")))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
