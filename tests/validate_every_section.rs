//! `validate` compiles every section of a profile — server, chaos, metrics, load — and the
//! stubs and protos it names, and reports every problem of every file in one run, even when
//! the profile itself has mistakes.

mod common;

use std::path::PathBuf;
use std::process::Command;

use streamstorm::diagnostic::Problem;

fn fixture() -> PathBuf {
    common::repo_root().join("tests/fixtures/every-section-wrong/profile.yaml")
}

/// `(file name, field)` of each problem.
fn located(problems: &[Problem]) -> Vec<(String, String)> {
    problems
        .iter()
        .map(|problem| {
            let file = problem.file.file_name().unwrap_or_default().to_string_lossy().into_owned();
            (file, problem.field.clone().unwrap_or_default())
        })
        .collect()
}

#[test]
fn every_problem_of_every_section_and_stub_in_one_run() {
    let problems = streamstorm::validate::validate(&[fixture()], &[]).unwrap_err().0;
    let found = located(&problems);
    let expected = [
        ("profile.yaml", "server.stubs[1]"),
        ("profile.yaml", "server.limits.stream_timeout"),
        ("profile.yaml", "chaos.rules[0].match.method"),
        ("profile.yaml", "chaos.rules[0].abort.rate"),
        ("profile.yaml", "metrics.listen"),
        ("profile.yaml", "load.duration"),
        ("profile.yaml", "load.scenarios[0].reconnect.initial_backof"),
        ("profile.yaml", "load.scenarios[1].method"),
        ("get-user.yaml", "output.code"),
    ];
    for (file, field) in expected {
        assert!(
            found.iter().any(|(f, p)| f == file && p == field),
            "no problem for {file} {field}; found:\n{}",
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        );
    }
    assert_eq!(problems.len(), expected.len(), "one problem each: {problems:#?}");
    for problem in &problems {
        assert!(problem.line > 0 && problem.column > 0, "not located: {problem}");
    }
    let order: Vec<_> =
        problems.iter().map(|problem| (&problem.file, problem.line, problem.column)).collect();
    assert!(order.is_sorted(), "file by file, line by line: {problems:#?}");
    let text =
        |field: &str| problems.iter().find(|p| p.field.as_deref() == Some(field)).unwrap().message.clone();
    assert!(text("load.scenarios[0].reconnect.initial_backof").contains("did you mean 'initial_backoff'?"));
    assert!(
        text("chaos.rules[0].match.method").contains("Subscribe"),
        "{}",
        text("chaos.rules[0].match.method")
    );
    let missing = text("server.stubs[1]");
    assert!(
        missing.contains("relative to the profile file") && missing.contains("missing-stubs"),
        "{missing}"
    );
}

#[test]
fn the_command_prints_them_all_and_exits_2() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_streamstorm")).arg("validate").arg(fixture()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("9 problems found"), "{stderr}");
    assert!(stderr.contains("profile.yaml:21:13: load.duration: "), "{stderr}");
}

/// A profile whose only mistake is in `load` is no longer `ok`.
#[test]
fn a_load_section_alone_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(
        dir.path(),
        "load:\n  duration: 20x\n  scenarios: [{ method: myapp.UserService/GetUser, streams: 1 }]\n",
    );
    let problems = streamstorm::validate::validate(&[profile], &[]).unwrap_err();
    assert_eq!(located(&problems.0), [("profile.yaml".to_owned(), "load.duration".to_owned())]);
}

/// A phase's `on_enter`: each mistake located with its field path, and a method it names
/// checked against the protos.
#[test]
fn a_bad_on_enter_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(
        dir.path(),
        r#"chaos:
  phases:
    - { name: a, duration: 1s, on_enter: { disconnect: stall } }
    - { name: b, duration: 1s, on_enter: { disconnect: goaway, fraction: 150%, when: now } }
    - { name: c, duration: 1s, on_enter: { fail: { code: NOPE, details: [{ "@type": google.rpc.Nothing }] } } }
    - { name: d, duration: 1s, on_enter: { disconnect: tcp_reset, fail: { code: UNAVAILABLE } } }
    - { name: e, duration: 1s, on_enter: { fraction: 10% } }
    - { name: f, duration: 1s, on_enter: { disconnect: goaway, method: myapp.UserService/Nope } }
"#,
    );
    let problems = streamstorm::validate::validate(&[profile], &[]).unwrap_err().0;
    let fields: Vec<String> = located(&problems).into_iter().map(|(_, field)| field).collect();
    assert_eq!(
        fields,
        [
            "chaos.phases[0].on_enter.disconnect",
            "chaos.phases[1].on_enter.fraction",
            "chaos.phases[1].on_enter.when",
            "chaos.phases[2].on_enter.fail.code",
            "chaos.phases[2].on_enter.fail.details",
            "chaos.phases[3].on_enter.fail",
            "chaos.phases[4].on_enter",
            "chaos.phases[5].on_enter.method",
        ],
        "{problems:#?}"
    );
    assert!(problems.iter().all(|problem| problem.line > 0 && problem.column > 0), "{problems:#?}");
    let text = |index: usize| problems[index].message.clone();
    assert!(text(0).contains("not a live cut mode") && text(0).contains("tcp_reset"), "{}", text(0));
    assert!(text(1).contains("not a rate"), "{}", text(1));
    assert!(text(2).contains("unknown field 'when'"), "{}", text(2));
    assert!(text(4).contains("google.rpc.Nothing"), "{}", text(4));
    assert!(text(5).contains("either 'disconnect' or 'fail'"), "{}", text(5));
    assert!(text(7).contains("Nope"), "{}", text(7));
}
