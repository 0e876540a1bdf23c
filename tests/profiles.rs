//! Profiles: every shipped profile loads and validates, and a broken one reports all its
//! problems at once with `file:line:col: field.path: message` and exit code 2.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use streamstorm::config::{is_profile, load_profile};
use streamstorm::proto::status::all_code_names;

fn validate(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_streamstorm")).arg("validate").args(args).output().unwrap()
}

fn shipped_profiles() -> Vec<PathBuf> {
    let mut profiles: Vec<PathBuf> = std::fs::read_dir(common::repo_root().join("profiles"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    profiles.sort();
    profiles
}

#[test]
fn every_shipped_profile_loads_and_validates() {
    let profiles = shipped_profiles();
    let names: Vec<_> = profiles.iter().map(|path| path.file_name().unwrap().to_string_lossy()).collect();
    assert_eq!(
        names,
        [
            "capped.yaml",
            "client-soak.yaml",
            "flaky.yaml",
            "fleet.yaml",
            "lossy-mobile.yaml",
            "outage.yaml",
            "slow.yaml"
        ]
    );
    for profile in &profiles {
        let loaded = load_profile(profile).unwrap_or_else(|problems| panic!("{problems}"));
        assert!(!loaded.chaos.rules.is_empty(), "{}: no chaos rules", profile.display());
        // The soak profile is for `serve`: it judges the user's own clients, not the load client.
        let for_serve = !loaded.expect.is_empty();
        assert_eq!(
            loaded.load.is_some(),
            !for_serve,
            "{}: a load section or expectations",
            profile.display()
        );
        assert_eq!(loaded.server.protos, [profile.parent().unwrap().join("../protos/myapp")]);
        let output = validate(&[profile]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}: {}{stdout}",
            profile.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(stdout, "ok: 4 services, 4 methods, 0 stubs, 0 scripts bound by path, 1 profile\n");
    }
}

#[test]
fn profiles_are_told_apart_from_stub_files() {
    assert!(shipped_profiles().iter().all(|profile| is_profile(profile)));
    let stubs = common::repo_root().join("stubs/gripmock");
    let stub_files: Vec<PathBuf> = std::fs::read_dir(&stubs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    assert!(!stub_files.is_empty());
    assert!(stub_files.iter().all(|file| !is_profile(file)), "{stub_files:?}");
    let dir = tempfile::tempdir().unwrap();
    for (name, text, profile) in [
        ("typo.yaml", "chaos: {}\nmetrcs: {}\n", true),
        ("stub.yaml", "service: myapp.UserService\nmethod: GetUser\nload: {}\n", false),
        ("list.yaml", "- chaos: {}\n", false),
        ("profile.json", "{\"chaos\": {}}", false),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        assert_eq!(is_profile(&path), profile, "{name}");
    }
}

#[test]
fn a_directory_of_profiles_validates_as_profiles() {
    let output = validate(&[&common::repo_root().join("profiles")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}{stdout}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.ends_with(", 7 profiles\n"), "{stdout}");
}

/// Writes a profile into `dir`, its `PROTOS` pointing at the example protos.
fn write_profile(dir: &Path, name: &str, text: &str) -> PathBuf {
    let protos = common::repo_root().join("protos/myapp");
    let profile = dir.join(name);
    std::fs::write(&profile, text.replace("PROTOS", &protos.display().to_string())).unwrap();
    profile
}

/// `validate` failed with exactly these problems, in this order.
fn assert_problems(output: &Output, expected: &[String]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let mut lines = expected.to_vec();
    lines.push(format!("{} problems found", expected.len()));
    assert_eq!(stderr.lines().collect::<Vec<_>>(), lines);
}

const BROKEN: &str = r#"server:
  protos: [PROTOS]
  stubs: [stubs.yaml]
  limits: { stream_timeout: forever }
chaos:
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      abort: { rate: 150%, code: UNAVAILABLE }
      fail: { rate: 1%, after_messages: 3..20, code: NOT_A_CODE }
    - match: { method: "myapp.ChatService/*" }
      disconnect: { rate: 1%, after_messages: 5, mode: unplug }
      latency: { per_message: 10ms..fast }
  phases:
    - { name: outage, duraton: 10s }
metrics: { listen: "localhost:9464" }
"#;

#[test]
fn a_broken_profile_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(dir.path(), "broken.yaml", BROKEN);
    let (file, dir) = (profile.display(), dir.path().display());
    let latency_forms =
        "10ms, 10ms..100ms, {normal: {mean, stddev}}, {lognormal: {median, sigma}} or {p50, p99}";
    let phase_fields = "name, duration, on_enter, latency, abort, fail, disconnect, upstream, message_cap, inbound_cap, stream_timeout, rate_limit";
    assert_problems(
        &validate(&[&profile]),
        &[
            // The profile is followed past its mistakes: the stubs it names must exist too.
            format!(
                "{file}:3:11: server.stubs[0]: stubs.yaml: no such file or directory: looked for {dir}/stubs.yaml (paths in a profile are relative to the profile file's directory, {dir})"
            ),
            format!(
                "{file}:4:29: server.limits.stream_timeout: not a duration: \"forever\" (write e.g. 500ms, 30s, 2m, 1.5s)"
            ),
            format!(
                "{file}:8:22: chaos.rules[0].abort.rate: not a rate: \"150%\" (write a percentage like 5% or a fraction from 0 to 1 like 0.05)"
            ),
            format!(
                "{file}:9:54: chaos.rules[0].fail.code: not a gRPC status code: \"NOT_A_CODE\" (use 0-16 or {})",
                all_code_names()
            ),
            format!(
                "{file}:11:56: chaos.rules[1].disconnect.mode: not a disconnect mode: \"unplug\" (expected one of: reset_stream, goaway, tcp_reset, stall, blackhole)"
            ),
            format!(
                "{file}:12:31: chaos.rules[1].latency.per_message: not a latency: \"10ms..fast\" (write {latency_forms})"
            ),
            format!("{file}:14:7: chaos.phases[0]: missing field 'duration' (e.g. duration: 10s)"),
            format!(
                "{file}:14:23: chaos.phases[0].duraton: unknown field 'duraton', did you mean 'duration'? (expected one of: {phase_fields})"
            ),
            format!(
                "{file}:15:20: metrics.listen: not a socket address: \"localhost:9464\" (write ip:port, e.g. 127.0.0.1:50051 or [::]:50051)"
            ),
        ],
    );
}

const WRONG_METHODS: &str = "server:
  protos: [PROTOS]
  stubs: [stubs.yaml]
chaos:
  rules:
    - match: { method: myapp.NotificationService/Subscrib }
      abort: { rate: 1% }
    - match: { method: NotificationService/* }
      abort: { rate: 1% }
    - match: { method: myapp.ChatService/Chat }
      abort: { rate: 1% }
";

#[test]
fn rule_methods_and_profile_stubs_are_checked_against_the_protos() {
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(dir.path(), "methods.yaml", WRONG_METHODS);
    let stubs = dir.path().join("stubs.yaml");
    let stub = "- service: myapp.UserService\n  method: GetUser\n  output: { data: { nme: x } }\n";
    std::fs::write(&stubs, stub).unwrap();
    let (file, stubs) = (profile.display(), stubs.display());
    assert_problems(
        &validate(&[&profile]),
        // File by file (methods.yaml before stubs.yaml), each in the order of its lines.
        &[
            format!(
                "{file}:6:24: chaos.rules[0].match.method: myapp.NotificationService has no method 'Subscrib' (methods: Subscribe)"
            ),
            format!(
                "{file}:8:24: chaos.rules[1].match.method: unknown service 'NotificationService': write its full name, myapp.NotificationService"
            ),
            format!("{stubs}:3:21: [0].output.data.nme: myapp.User has no field 'nme', did you mean 'name'?"),
        ],
    );
}
