//! `serve --report` judges the clients under test when the run ends — here by SIGTERM, so the
//! report is marked interrupted — and the printed verdict, the report, `/clients` and the
//! `streamstorm_peer_` metrics all say the same. The client is grpcurl, retrying at once
//! although each abort asks it (with `google.rpc.RetryInfo`) to wait two seconds.

mod common;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use common::interop::grpcurl;
use common::scrape::{get, parse_samples, sum};

const PROFILE: &str = "\
chaos:
  rules:
    - match: { method: myapp.UserService/GetUser }
      abort:
        rate: 100%
        code: UNAVAILABLE
        details: [ { \"@type\": google.rpc.RetryInfo, retry_delay: 2s } ]
clients:
  identify_by: { header: x-client-id }
expect:
  retry_info: \"100%\"
  max_attempts_per_second: 50
";

const ATTEMPTS: usize = 4;

#[tokio::test]
async fn a_client_ignoring_retry_info_fails_and_every_output_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), PROFILE);
    let report_path = dir.path().join("verdict.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--profile"])
        .arg(&profile)
        .arg("--report")
        .arg(&report_path)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut address = async || {
        let mut line = String::new();
        stdout.read_line(&mut line).await.unwrap();
        let address = line.trim().rsplit(' ').next().unwrap().trim_start_matches("http://");
        address.trim_end_matches("/metrics").parse::<std::net::SocketAddr>().unwrap()
    };
    let (grpc, metrics) = (address().await, address().await);

    let protos = common::repo_root().join("protos/myapp");
    let flags =
        ["-import-path", common::path_str(&protos), "-proto", "user.proto", "-H", "x-client-id: impatient"];
    for _ in 0..ATTEMPTS {
        let called = grpcurl(grpc, &flags, &["myapp.UserService/GetUser"], None).await;
        assert!(called.stderr.contains("Unavailable"), "{}", called.stderr);
    }

    let samples = parse_samples(&get(metrics, "/metrics").await);
    assert_eq!(sum(&samples, "streamstorm_peer_attempts_total", &[]), ATTEMPTS as f64);
    let ignored = ATTEMPTS - 1;
    assert_eq!(sum(&samples, "streamstorm_peer_retry_info_total", &[("honoured", "false")]), ignored as f64);
    assert_eq!(sum(&samples, "streamstorm_peer_retry_info_total", &[("honoured", "true")]), 0.0);
    assert_eq!(
        sum(&samples, "streamstorm_peer_reconnect_delay_seconds_count", &[("ending", "abort")]),
        ignored as f64
    );
    let clients: Value = serde_json::from_str(&get(metrics, "/clients").await).unwrap();
    let client = &clients["clients"][0];
    assert_eq!(client["client"], "x-client-id=impatient");
    assert_eq!(client["retry_info"]["sent"], ignored);
    assert!(client["timeline"].as_array().is_some_and(|timeline| !timeline.is_empty()), "{client}");
    assert!(client["user_agent"].as_str().is_some_and(|agent| agent.contains("grpcurl")), "{client}");

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await.unwrap().unwrap();
    let mut printed = String::new();
    stdout.read_to_string(&mut printed).await.unwrap();
    assert_eq!(status.code(), Some(1), "{printed}");
    assert!(printed.contains("FAIL retry_info") && printed.contains("x-client-id=impatient"), "{printed}");
    assert!(printed.contains("ok   max_attempts_per_second"), "{printed}");

    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["expectations"]["passed"], false);
    let failures = report["expectations"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].as_str().unwrap().starts_with("client x-client-id=impatient: retry_info"));
    let judged = &report["clients"][0];
    assert_eq!(judged["attempts"], ATTEMPTS);
    assert_eq!(judged["retry_info"], serde_json::json!({"sent": ignored, "honoured": 0}));
    assert_eq!(judged["endings"]["abort UNAVAILABLE"], ATTEMPTS);
    assert_eq!(judged["backoff"]["streaks"], 1);
    let verdicts = judged["verdicts"].as_array().unwrap();
    let retry_info = verdicts.iter().find(|verdict| verdict["expectation"] == "retry_info").unwrap();
    assert_eq!(retry_info["passed"], false);
    assert!(retry_info["seen"].as_str().unwrap().contains(&format!("0 of {ignored}")), "{retry_info}");
}
