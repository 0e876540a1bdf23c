//! What users see when something is wrong, from the binary: a busy port names the OS error
//! once and exits 3 from `serve` and `simulate` alike (1 is for thresholds); a duration without
//! a unit suggests the README's form; a profile copied away from its protos says which file it
//! looked for and that paths are relative to the profile; the start-up line counts scripts.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use tokio::io::AsyncBufReadExt;

fn streamstorm(args: &[&str], extra: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_streamstorm")).args(args).args(extra).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_busy_port_exits_3_naming_the_os_error_once() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let protos = common::repo_root().join("protos/myapp");
    let serve = streamstorm(
        &["serve", "--listen", &listen, "--metrics-listen", "127.0.0.1:0", "--protos"],
        &[&protos],
    );
    let flaky = common::repo_root().join("profiles/flaky.yaml");
    let simulate = streamstorm(
        &["simulate", "--quiet", "--listen", &listen, "--metrics-listen", "127.0.0.1:0", "--profile"],
        &[&flaky],
    );
    for (command, output) in [("serve", serve), ("simulate", simulate)] {
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(3), "{command}: {text}");
        assert!(text.contains(&format!("cannot listen on {listen}")), "{command}: {text}");
        assert_eq!(text.matches("Address already in use").count(), 1, "{command}: {text}");
        assert!(text.contains("--listen"), "{command} names the flag to change: {text}");
    }
}

#[test]
fn a_duration_without_a_unit_suggests_one() {
    let flaky = common::repo_root().join("profiles/flaky.yaml");
    let output = streamstorm(&["simulate", "--duration", "5", "--profile"], &[&flaky]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("'5' has no unit: write 5s"), "{}", stderr(&output));
}

#[test]
fn a_copied_profile_says_which_file_it_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("flaky.yaml");
    std::fs::copy(common::repo_root().join("profiles/flaky.yaml"), &copy).unwrap();
    let looked_for = dir.path().join("../protos/myapp");
    let serve = streamstorm(
        &["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--profile"],
        &[&copy],
    );
    let simulate =
        streamstorm(&["simulate", "--quiet", "--metrics-listen", "127.0.0.1:0", "--profile"], &[&copy]);
    for (command, output) in [("serve", serve), ("simulate", simulate)] {
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{command}: {text}");
        assert!(text.contains(&format!("{}:14:", copy.display())), "{command}: located: {text}");
        assert!(
            text.contains("server.protos[0]: ../protos/myapp: no such file or directory"),
            "{command}: {text}"
        );
        assert!(text.contains(&format!("looked for {}", looked_for.display())), "{command}: {text}");
        assert!(text.contains("relative to the profile file's directory"), "{command}: {text}");
    }
}

#[tokio::test]
async fn the_start_up_line_counts_scripts() {
    let protos = common::repo_root().join("protos/myapp");
    let scripts = common::repo_root().join("stubs/scripts/chat-auth");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--protos"])
        .arg(&protos)
        .arg("--stubs")
        .arg(&scripts)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::io::BufReader::new(stdout).lines().next_line().await.unwrap().unwrap_or_default();
    assert!(line.contains("methods, 0 stubs, 1 scripts)"), "{line}");
}
