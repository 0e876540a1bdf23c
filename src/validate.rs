//! `streamstorm validate`: loads every input named — protos, descriptor sets, stub files,
//! scripts, profiles, and directories of them — and reports every problem of every file at
//! once, starting nothing. Stubs are checked against the protos named in the same run or by a
//! profile. Every section of a profile is compiled — `server` (its paths must exist), `chaos`,
//! `metrics`, `load` — and a profile with mistakes is still followed: its protos, import paths
//! and stubs are loaded, the methods its rules and scenarios name are checked against them,
//! scenario requests against the method's input type, and the files its `server.tls` and
//! `load.tls` name are read and checked, so that fixing one mistake never uncovers another.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::cli::{ClientTlsFlags, client_tls};
use crate::client::compile_scenarios;
use crate::config::load::{LoadPlan, LoadTarget, compile_load_leniently};
use crate::config::{
    PATH_KEYS, Profile, check_methods, check_paths, is_profile, load_profile_leniently, server_tls,
};
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
    /// Profiles that could be read, with what compiled of their `load` sections; their
    /// paths are already in the lists above.
    profiles: Vec<(Profile, Option<LoadPlan>)>,
    /// Profile files named, loaded or not.
    profile_files: usize,
}

impl Inputs {
    fn add_file(&mut self, path: &Path, problems: &mut Problems) {
        if is_proto_input(path) {
            self.protos.push(path.to_path_buf());
        } else if is_profile(path) {
            self.add_profile(path, problems);
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

    /// Every section of the profile at `path`, and what can be checked before the protos load.
    fn add_profile(&mut self, path: &Path, problems: &mut Problems) {
        self.profile_files += 1;
        let (profile, found) = load_profile_leniently(path);
        problems.extend(found);
        let Some(profile) = profile else { return };
        problems.extend(check_paths(&profile, PATH_KEYS));
        let server_tls_checked = server_tls(&profile).map_err(|found| problems.extend(found)).is_ok();
        let plan =
            profile.load.is_some().then(|| compile_load_leniently(&profile)).and_then(|(plan, found)| {
                problems.extend(found);
                plan
            });
        // The client's TLS may lean on the server's files: checked once those are good.
        if let Some(plan) = plan.as_ref().filter(|_| server_tls_checked) {
            let embedded = plan.target == LoadTarget::Embedded;
            if let Err(found) = client_tls(&ClientTlsFlags::default(), &profile, plan, embedded) {
                problems.extend(found);
            }
        }
        // A target without protos named is asked for its methods by reflection at run time.
        let plan =
            plan.filter(|plan| plan.target == LoadTarget::Embedded || !profile.server.protos.is_empty());
        // Missing paths are reported above, with the file looked for; loading them would
        // only report them again.
        let existing =
            |paths: &[PathBuf]| paths.iter().filter(|path| path.exists()).cloned().collect::<Vec<_>>();
        self.protos.extend(existing(&profile.server.protos));
        self.import_paths.extend(existing(&profile.server.import_paths));
        self.stubs.extend(existing(&profile.server.stubs));
        self.profiles.push((profile, plan));
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
/// Problems come file by file, each file's in the order of its lines.
pub fn validate(paths: &[PathBuf], import_paths: &[PathBuf]) -> Result<String, Problems> {
    check(paths, import_paths).map_err(|mut problems| {
        problems.0.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        problems
    })
}

fn check(paths: &[PathBuf], import_paths: &[PathBuf]) -> Result<String, Problems> {
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
    for (profile, plan) in &inputs.profiles {
        problems.extend(check_methods(profile, &catalog));
        problems.extend(crate::judge::resume::check(profile, &catalog));
        if let Some(Err(found)) = plan.as_ref().map(|plan| compile_scenarios(plan, &profile.file, &catalog)) {
            problems.extend(found);
        }
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
