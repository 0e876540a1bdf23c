//! `streamstorm validate`: loads every input named and reports every problem at once, starting
//! nothing. Today it checks protos and descriptor sets; stubs, scripts and profiles join as
//! their loaders land.

use std::path::PathBuf;

use crate::diagnostic::{Problem, Problems};
use crate::proto::loader::{is_proto_input, load_pool};

/// Validates `paths` (files or directories); on success, a one-line summary of what was loaded.
pub fn validate(paths: &[PathBuf], import_paths: &[PathBuf]) -> Result<String, Problems> {
    let mut problems = Problems::default();
    let mut proto_paths = Vec::new();
    for path in paths {
        if path.is_dir() || is_proto_input(path) || !path.exists() {
            proto_paths.push(path.clone());
        } else {
            problems.push(Problem::in_file(path, "unrecognised input: expected .proto, .pb or .protoset"));
        }
    }
    let pool = match load_pool(&proto_paths, import_paths) {
        Ok(pool) => Some(pool),
        Err(found) => {
            problems.extend(found);
            None
        }
    };
    let pool = problems.into_result(pool)?.unwrap_or_default();
    let services = pool.services().filter(|s| !s.full_name().starts_with("google.")).count();
    let methods: usize = pool.services().map(|service| service.methods().len()).sum();
    Ok(format!("{} files, {services} services, {methods} methods", pool.files().len()))
}
