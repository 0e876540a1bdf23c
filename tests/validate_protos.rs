//! `validate` and the proto loader: every broken file reported with file:line:col, exit code 2,
//! descriptor sets accepted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use streamstorm::proto::load_pool;

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    path
}

fn validate(args: &[&Path]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_streamstorm")).arg("validate").args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_broken_file_is_reported_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let syntax = write(
        dir.path(),
        "a/syntax.proto",
        "syntax = \"proto3\";\npackage a;\nmessage M {\n  string name = 1\n}\n",
    );
    let unknown_type = write(
        dir.path(),
        "b/types.proto",
        "syntax = \"proto3\";\npackage b;\n\nmessage N {\n  Missing field = 1;\n}\n",
    );
    let problems = load_pool(&[syntax.clone(), unknown_type.clone()], &[]).unwrap_err();
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 2, "{lines:#?}");
    assert!(lines[0].starts_with(&format!("{}:5:1: ", syntax.display())), "{lines:#?}");
    assert!(lines[1].starts_with(&format!("{}:5:3: ", unknown_type.display())), "{lines:#?}");
    assert!(lines[1].contains("Missing"), "{lines:#?}");
}

#[test]
fn missing_import_names_the_import_line() {
    let dir = tempfile::tempdir().unwrap();
    let file =
        write(dir.path(), "c.proto", "syntax = \"proto3\";\nimport \"nowhere/x.proto\";\nmessage C {}\n");
    let problems = load_pool(std::slice::from_ref(&file), &[]).unwrap_err();
    let line = problems.to_string();
    assert!(line.starts_with(&format!("{}:2:1: ", file.display())), "{line}");
    assert!(line.contains("nowhere/x.proto"), "{line}");
}

#[test]
fn imports_resolve_through_import_paths_and_well_known_types() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "shared/common/money.proto",
        "syntax = \"proto3\";\npackage common;\nmessage Money { int64 cents = 1; }\n",
    );
    let service = write(
        dir.path(),
        "svc/shop.proto",
        "syntax = \"proto3\";\npackage shop;\nimport \"common/money.proto\";\nimport \"google/protobuf/empty.proto\";\n\
         service Shop { rpc Total(google.protobuf.Empty) returns (common.Money); }\n",
    );
    let pool = load_pool(&[service], &[dir.path().join("shared")]).unwrap();
    assert!(pool.get_service_by_name("shop.Shop").is_some());
}

#[test]
fn descriptor_sets_load_like_sources() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::example_pool();
    let set = dir.path().join("myapp.protoset");
    std::fs::write(&set, pool.encode_to_vec()).unwrap();
    let loaded = load_pool(&[set], &[]).unwrap();
    assert!(loaded.get_service_by_name("myapp.ChatService").is_some());

    let garbage = write(dir.path(), "bad.pb", "not a descriptor set");
    let problems = load_pool(std::slice::from_ref(&garbage), &[]).unwrap_err();
    assert!(problems.to_string().starts_with(&garbage.display().to_string()), "{problems}");
}

#[test]
fn cli_exit_codes_and_output() {
    let (code, stdout, stderr) = validate(&[&common::repo_root().join("protos")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("ok: "), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.proto", "syntax = \"proto3\";\nmessage X {\n  int32 = 1;\n}\n");
    let (code, _, stderr) = validate(&[&broken]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("{}:3:9: ", broken.display())), "{stderr}");
    assert!(stderr.contains("1 problem found"), "{stderr}");

    let (code, _, stderr) = validate(&[&dir.path().join("absent.proto")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no such file or directory"), "{stderr}");
}
