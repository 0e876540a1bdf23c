//! Loads service definitions at run time into one [`DescriptorPool`]: `.proto` sources compiled
//! with protox (imports and the well-known types resolved, no `protoc` needed) and compiled
//! descriptor sets (`.pb`, `.protoset`, `.desc`, `.binpb`).
//!
//! Every file is tried even after one fails, so a single run reports every broken file with its
//! line and column.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use prost_reflect::DescriptorPool;

use crate::diagnostic::{Problem, Problems, files_under};

const DESCRIPTOR_SET_EXTENSIONS: &[&str] = &["pb", "protoset", "desc", "binpb"];

/// The inputs found under the paths a user named, sorted by kind.
#[derive(Debug, Default)]
struct ProtoInputs {
    /// `.proto` sources, each as the user would recognise it.
    sources: Vec<PathBuf>,
    /// Compiled `FileDescriptorSet` files.
    descriptor_sets: Vec<PathBuf>,
    /// Directories protox resolves file names and imports against, in priority order.
    includes: Vec<PathBuf>,
}

/// True when `path` names something [`load_pool`] reads (a `.proto` or a descriptor set).
pub fn is_proto_input(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some(ext) if ext == "proto" || DESCRIPTOR_SET_EXTENSIONS.contains(&ext))
}

/// Compiles every `.proto` and descriptor set under `paths` (files or directories, recursively).
///
/// `import_paths` are searched first for imports; then each directory named in `paths`, then the
/// directory of each file named directly.
pub fn load_pool(paths: &[PathBuf], import_paths: &[PathBuf]) -> Result<DescriptorPool, Problems> {
    let mut problems = Problems::default();
    let inputs = collect_inputs(paths, import_paths, &mut problems);

    let mut compiler = match protox::Compiler::new(inputs.includes.iter().map(|dir| absolute(dir))) {
        Ok(compiler) => compiler,
        Err(error) => return Err(compile_problems(&error, &inputs.includes, Path::new("."))),
    };
    compiler.include_imports(true);
    for source in &inputs.sources {
        if let Err(error) = compiler.open_file(absolute(source)) {
            problems.extend(compile_problems(&error, &inputs.includes, source));
        }
    }

    let mut pool = compiler.descriptor_pool();
    for set in &inputs.descriptor_sets {
        match std::fs::read(set) {
            Ok(bytes) => {
                if let Err(error) = pool.decode_file_descriptor_set(bytes.as_slice()) {
                    problems.push(Problem::in_file(set, format!("not a usable descriptor set: {error}")));
                }
            }
            Err(error) => problems.push(Problem::in_file(set, format!("cannot read: {error}"))),
        }
    }
    if problems.is_empty()
        && inputs.sources.is_empty()
        && inputs.descriptor_sets.is_empty()
        && !paths.is_empty()
    {
        for path in paths {
            problems.push(Problem::in_file(path, "no .proto or descriptor set files found here"));
        }
    }
    problems.into_result(pool)
}

fn collect_inputs(paths: &[PathBuf], import_paths: &[PathBuf], problems: &mut Problems) -> ProtoInputs {
    let mut inputs = ProtoInputs::default();
    let mut includes: Vec<PathBuf> = import_paths.to_vec();
    for path in paths {
        if path.is_dir() {
            includes.push(path.clone());
            for file in files_under(path, &is_proto_input, problems) {
                classify(file, &mut inputs);
            }
        } else if path.is_file() {
            if !is_proto_input(path) {
                problems.push(Problem::in_file(
                    path,
                    "expected a .proto file or a descriptor set (.pb, .protoset)",
                ));
                continue;
            }
            classify(path.clone(), &mut inputs);
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let absolute_path = absolute(path);
            if !includes.iter().any(|dir| absolute_path.starts_with(absolute(dir))) {
                includes.push(parent.to_path_buf());
            }
        } else {
            problems.push(Problem::in_file(path, "no such file or directory"));
        }
    }
    let mut seen = BTreeSet::new();
    includes.retain(|dir| seen.insert(absolute(dir)));
    inputs.includes = includes;
    inputs
}

fn classify(path: PathBuf, inputs: &mut ProtoInputs) {
    if path.extension().is_some_and(|ext| ext == "proto") {
        inputs.sources.push(path);
    } else {
        inputs.descriptor_sets.push(path);
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Turns one protox error (which may carry several related diagnostics) into located problems.
fn compile_problems(error: &protox::Error, includes: &[PathBuf], fallback: &Path) -> Problems {
    let file = error.file().map_or_else(|| fallback.to_path_buf(), |name| display_path(name, includes));
    let parent_source = error.source_code();
    let mut problems = Problems::default();
    let diagnostics = std::iter::once(error as &dyn Diagnostic).chain(error.related().into_iter().flatten());
    for diagnostic in diagnostics {
        let source = diagnostic.source_code().or(parent_source);
        let span = diagnostic.labels().and_then(|mut labels| labels.next());
        let (line, column) = match (source, span) {
            (Some(source), Some(span)) => source
                .read_span(span.inner(), 0, 0)
                .map(|contents| (contents.line() + 1, contents.column() + 1))
                .unwrap_or((0, 0)),
            _ => (0, 0),
        };
        let mut message = diagnostic.to_string();
        if let Some(help) = diagnostic.help() {
            message.push_str(&format!(" ({help})"));
        }
        problems.push(Problem::at(&file, line, column, message));
    }
    problems
}

/// Maps a protobuf file name (`myapp/chat.proto`) back to the path the user knows it by.
fn display_path(name: &str, includes: &[PathBuf]) -> PathBuf {
    includes
        .iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}
