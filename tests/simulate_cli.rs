//! The `simulate` command as users run it: exit codes (1 when thresholds fail, 2 for invalid
//! input with `file:line:col`), progress lines off a terminal, the JSON report and the plot,
//! and `--target` against a separately started `serve` described by reflection.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamstorm"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn write_profile(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("p.yaml");
    std::fs::write(&path, body).unwrap();
    path
}

/// `simulate --quiet` on `profile`, metrics on a free port; its exit code and stderr.
fn simulate_quietly(profile: &Path) -> (Option<i32>, String) {
    let output = binary()
        .args(["simulate", "--metrics-listen", "127.0.0.1:0", "--quiet", "--profile"])
        .arg(profile)
        .output()
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn failed_thresholds_exit_1_and_say_by_how_much() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "server:\n  protos: [{}]\nload:\n  scenarios:\n    - {{ method: myapp.UserService/GetUser, streams: 2, request: {{ user_id: a }} }}\n  thresholds: {{ messages_per_second: '> 100000000', error_rate: '< 1%' }}\n",
        repo("protos/myapp").display()
    );
    let profile = write_profile(dir.path(), &body);
    let report = dir.path().join("r.json");
    let output = binary()
        .args(["simulate", "--metrics-listen", "127.0.0.1:0", "--duration", "2s", "--profile"])
        .arg(&profile)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("thresholds FAILED"), "{stdout}");
    assert!(stdout.contains("FAIL  messages_per_second > 100000000:"), "{stdout}");
    assert!(stdout.contains("ok    error_rate < 1%: 0.00%"), "{stdout}");
    // Off a terminal, progress is one line per second on stderr.
    let lines = stderr.lines().filter(|line| line.starts_with("[") && line.contains("msg/s")).count();
    assert!((1..=3).contains(&lines), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["thresholds"]["passed"], false);
    let rate = &json["thresholds"]["results"][0];
    assert_eq!(rate["name"], "messages_per_second");
    assert!(rate["excess"].as_f64().unwrap() > 99_000_000.0, "{rate}");
}

#[test]
fn invalid_load_sections_exit_2_with_every_problem_located() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "server:\n  protos: [{}]\nload:\n  duration: 5\n  scenarios:\n    - {{ method: myapp.UserService/GetUsr, streams: 1 }}\n",
        repo("protos/myapp").display()
    );
    let (code, stderr) = simulate_quietly(&write_profile(dir.path(), &body));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("p.yaml:4:13: load.duration: not a duration: 5"), "{stderr}");
    // The method is checked against the protos only once the syntax is right.
    let body = body.replace("duration: 5", "duration: 5s");
    let (code, stderr) = simulate_quietly(&write_profile(dir.path(), &body));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("p.yaml:6:17: load.scenarios[0].method: unknown method 'myapp.UserService/GetUsr'"),
        "{stderr}"
    );
}

/// A `streamstorm serve` process on a free port, killed on drop.
struct Served {
    child: Child,
    address: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(profile: &Path) -> Served {
    let mut child = binary()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--default-stream-messages",
            "1000000",
            "--default-stream-interval",
            "20ms",
            "--profile",
        ])
        .arg(profile)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(address.starts_with("127.0.0.1:"), "{line}");
    Served { child, address }
}

#[test]
fn target_drives_a_separately_started_server_described_by_reflection() {
    let dir = tempfile::tempdir().unwrap();
    let server_profile = dir.path().join("server.yaml");
    std::fs::write(
        &server_profile,
        format!(
            "server:\n  protos: [{}]\nchaos:\n  rules:\n    - match: {{ method: myapp.NotificationService/Subscribe }}\n      abort: {{ rate: 50%, code: UNAVAILABLE }}\n",
            repo("protos/myapp").display()
        ),
    )
    .unwrap();
    let served = serve(&server_profile);
    // No protos anywhere: the client asks the target over reflection.
    let load = write_profile(
        dir.path(),
        "load:\n  scenarios:\n    - method: myapp.NotificationService/Subscribe\n      streams: 20\n      request: { topics: ['t{{stream.id}}'] }\n      reconnect: { initial_backoff: 50ms, max_backoff: 200ms }\n",
    );
    let report = dir.path().join("r.json");
    let plot = dir.path().join("p.svg");
    let output = binary()
        .args([
            "simulate",
            "--metrics-listen",
            "127.0.0.1:0",
            "--quiet",
            "--duration",
            "2s",
            "--target",
            &served.address,
            "--profile",
        ])
        .arg(&load)
        .arg("--report")
        .arg(&report)
        .arg("--plot")
        .arg(&plot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["target"], served.address.as_str());
    assert!(json["server_faults"].is_null());
    assert!(json["messages"]["received"].as_u64().unwrap() > 200, "{json}");
    assert!(json["errors"]["UNAVAILABLE"].as_u64().unwrap() > 0, "{json}");
    assert!(json["reconnects"].as_u64().unwrap() > 0, "{json}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{svg}");
}
