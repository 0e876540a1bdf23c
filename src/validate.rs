//! `streamstorm validate`: loads every input named — protos, descriptor sets, stub files,
//! scripts, profiles, and directories of them — and reports every problem at once, starting
//! nothing. Stubs are checked against the protos named in the same run or by a profile; a
//! profile brings its own protos, import paths and stubs, the methods its rules name are
//! checked against them, and the files its `server.tls` names are read and checked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::config::{Profile, check_methods, is_profile, load_profile, server_tls};
use crate::diagnostic::{Problem, Problems, files_under};
use crate::proto::MethodCatalog;
use crate::proto::loader::{is_proto_input, load_pool};
use crate::server::introspection::{BUILTIN_SERVICE_PREFIXES, add_builtin_descriptors};
use crate::stub::loader::{is_script_file, is_stub_file, load_stubs};

/// The inputs of one run, sorted by kind.
#[derive(Default)]
struct Inputs {
    protos: Vec<PathBuf>,
    import_paths: Vec<PathBuf>,
    stubs: Vec<PathBuf>,
    /// Profiles that loaded; their paths are already in the lists above.
    profiles: Vec<Profile>,
    /// Profile files named, loaded or not.
    profile_files: usize,
}

impl Inputs {
    fn add_file(&mut self, path: &Path, problems: &mut Problems) {
        if is_proto_input(path) {
            self.protos.push(path.to_path_buf());
        } else if is_profile(path) {
            self.profile_files += 1;
            match load_profile(path) {
                Ok(profile) => {
                    if let Err(found) = server_tls(&profile) {
                        problems.extend(found);
                    }
                    self.protos.extend(profile.server.protos.iter().cloned());
                    self.import_paths.extend(profile.server.import_paths.iter().cloned());
                    self.stubs.extend(profile.server.stubs.iter().cloned());
                    self.profiles.push(profile);
                }
                Err(found) => problems.extend(found),
            }
        } else if is_stub_file(path) || is_script_file(path) {
            self.stubs.push(path.to_path_buf());
        } else if !path.exists() {
            problems.push(Problem::in_file(path, "no such file or directory"));
        } else {
            problems.push(Problem::in_file(
                path,
                "unrecognised input: expected .proto, .pb, .protoset, .yaml, .yml, .json or .jsonl",
            ));
        }
    }

    /// A directory is searched for protos by the proto loader; its stub files, scripts and
    /// profiles are sorted out here, so that a profile is not read as a stub file.
    fn add_directory(&mut self, dir: &Path, problems: &mut Problems) {
        self.protos.push(dir.to_path_buf());
        for file in files_under(dir, &|file| is_stub_file(file) || is_script_file(file), problems) {
            self.add_file(&file, problems);
        }
    }
}

/// Validates `paths` (files or directories); on success, a one-line summary of what was loaded.
pub fn validate(paths: &[PathBuf], import_paths: &[PathBuf]) -> Result<String, Problems> {
    let mut problems = Problems::default();
    let mut inputs = Inputs { import_paths: import_paths.to_vec(), ..Inputs::default() };
    for path in paths {
        if path.is_dir() {
            inputs.add_directory(path, &mut problems);
        } else {
            inputs.add_file(path, &mut problems);
        }
    }
    let profiles = match inputs.profile_files {
        0 => String::new(),
        1 => ", 1 profile".to_owned(),
        count => format!(", {count} profiles"),
    };
    if inputs.protos.is_empty() {
        if inputs.profile_files > 0 && inputs.stubs.is_empty() {
            let summary = format!("no protos named, so rule methods were not checked{profiles}");
            return problems.into_result(summary);
        }
        problems.push(Problem::in_file(
            paths.first().cloned().unwrap_or_default(),
            "no protos given: name the .proto files or directories the stubs are for",
        ));
        return Err(problems);
    }
    let proto_paths = distinct(&inputs.protos);
    let mut pool = load_pool(&proto_paths, &distinct(&inputs.import_paths)).map_err(|mut found| {
        found.extend(problems.clone());
        found
    })?;
    add_builtin_descriptors(&mut pool)
        .map_err(|error| Problem::in_file(&proto_paths[0], error.to_string()))?;
    let catalog = MethodCatalog::new(&pool, BUILTIN_SERVICE_PREFIXES);
    let (stubs, scripts) = match load_stubs(&distinct(&inputs.stubs), &catalog, &pool) {
        Ok(set) => (set.len(), set.script_count()),
        Err(found) => {
            problems.extend(found);
            (0, 0)
        }
    };
    for profile in &inputs.profiles {
        problems.extend(check_methods(profile, &catalog));
    }
    problems.into_result(format!(
        "{} services, {} methods, {stubs} stubs, {scripts} scripts bound by path{profiles}",
        catalog.services().len(),
        catalog.methods().count()
    ))
}

/// `paths` without repeats (several profiles may name the same protos), first mention first.
fn distinct(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = HashSet::new();
    paths
        .iter()
        .filter(|path| {
            let key = std::fs::canonicalize(path)
                .or_else(|_| std::path::absolute(path))
                .unwrap_or_else(|_| path.to_path_buf());
            seen.insert(key)
        })
        .cloned()
        .collect()
}
