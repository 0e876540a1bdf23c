//! `streamstorm validate`: loads every input named — protos, descriptor sets, stub files, and
//! directories of them — and reports every problem at once, starting nothing. Stubs are checked
//! against the protos named in the same run.

use std::path::PathBuf;

use crate::diagnostic::{Problem, Problems};
use crate::proto::MethodCatalog;
use crate::proto::loader::{is_proto_input, load_pool};
use crate::server::introspection::{BUILTIN_SERVICE_PREFIXES, add_builtin_descriptors};
use crate::stub::loader::{is_script_file, is_stub_file, load_stubs};

/// Validates `paths` (files or directories); on success, a one-line summary of what was loaded.
pub fn validate(paths: &[PathBuf], import_paths: &[PathBuf]) -> Result<String, Problems> {
    let mut problems = Problems::default();
    let (mut proto_paths, mut stub_paths) = (Vec::new(), Vec::new());
    for path in paths {
        if path.is_dir() {
            proto_paths.push(path.clone());
            stub_paths.push(path.clone());
        } else if is_proto_input(path) {
            proto_paths.push(path.clone());
        } else if is_stub_file(path) || is_script_file(path) {
            stub_paths.push(path.clone());
        } else if !path.exists() {
            problems.push(Problem::in_file(path, "no such file or directory"));
        } else {
            problems.push(Problem::in_file(
                path,
                "unrecognised input: expected .proto, .pb, .protoset, .yaml, .yml, .json or .jsonl",
            ));
        }
    }
    if proto_paths.is_empty() {
        problems.push(Problem::in_file(
            paths.first().cloned().unwrap_or_default(),
            "no protos given: name the .proto files or directories the stubs are for",
        ));
        return Err(problems);
    }
    let mut pool = load_pool(&proto_paths, import_paths).map_err(|mut found| {
        found.extend(problems.clone());
        found
    })?;
    add_builtin_descriptors(&mut pool)
        .map_err(|error| Problem::in_file(&proto_paths[0], error.to_string()))?;
    let catalog = MethodCatalog::new(&pool, BUILTIN_SERVICE_PREFIXES);
    let (stubs, scripts) = match load_stubs(&stub_paths, &catalog, &pool) {
        Ok(set) => (set.len(), set.script_count()),
        Err(found) => {
            problems.extend(found);
            (0, 0)
        }
    };
    problems.into_result(format!(
        "{} services, {} methods, {stubs} stubs, {scripts} scripts bound by path",
        catalog.services().len(),
        catalog.methods().count()
    ))
}
