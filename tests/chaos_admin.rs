//! Run-time control of the chaos engine through `serve`'s telemetry listener: phases switched
//! and released by hand, chaos disabled and enabled, the plan read back, writes refused unless
//! the profile allows them; phases following the clock; the profile reloaded when edited (a
//! broken edit keeps the old plan); connections drained at their maximum age.

mod common;

use std::time::{Duration, Instant};

use common::scrape::{get, parse_samples, request, sum};
use tonic::Code;
use tonic::transport::Channel;

async fn get_user(channel: &Channel) -> Code {
    let pool = common::example_pool();
    let request = common::json_message(&pool, "myapp.GetUserRequest", serde_json::json!({"user_id": "u"}));
    common::call(channel.clone(), &pool, "myapp.UserService/GetUser", vec![request]).await.status.code()
}

const PHASES: &str = "chaos:
  phases:
    - { name: steady, duration: 1h }
    - name: outage
      duration: 1h
      abort: { rate: 100%, code: UNAVAILABLE }
";

#[tokio::test]
async fn phases_and_the_switch_obey_the_admin_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), &format!("{PHASES}metrics:\n  admin: read_write\n"));
    let server = common::spawn_serve_process(&["--profile", common::path_str(&profile)], &[]).await;
    let channel = common::connect(server.addr).await;
    assert_eq!(get_user(&channel).await, Code::Ok, "the first phase, steady, injects nothing");

    let (status, body) = request(server.metrics, "POST", "/admin/phase/outage").await;
    assert_eq!(status, 200, "{body}");
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((state["phase"].as_str(), state["phase_pinned"].as_bool()), (Some("outage"), Some(true)));
    assert_eq!(get_user(&channel).await, Code::Unavailable);
    let samples = parse_samples(&get(server.metrics, "/metrics").await);
    assert_eq!(sum(&samples, "streamstorm_chaos_phase", &[("phase", "outage")]), 1.0);
    assert_eq!(sum(&samples, "streamstorm_chaos_phase", &[("phase", "steady")]), 0.0);

    assert_eq!(request(server.metrics, "POST", "/admin/chaos/disable").await.0, 200);
    assert_eq!(get_user(&channel).await, Code::Ok, "disabled chaos injects nothing, whatever the phase");
    assert_eq!(request(server.metrics, "POST", "/admin/chaos/enable").await.0, 200);
    assert_eq!(get_user(&channel).await, Code::Unavailable);

    assert_eq!(request(server.metrics, "DELETE", "/admin/phase").await.0, 200);
    assert_eq!(get_user(&channel).await, Code::Ok, "released, the clock says steady again");

    let (status, body) = request(server.metrics, "POST", "/admin/phase/lunch").await;
    assert_eq!(status, 404);
    assert!(body.contains("phases: steady, outage"), "{body}");
    let plan: serde_json::Value = serde_json::from_str(&get(server.metrics, "/admin/chaos").await).unwrap();
    assert_eq!(plan["phases"][1]["faults"][0], "abort", "{plan}");
    assert_eq!(plan["faults_injected"][0]["count"], 2, "{plan}");
}

#[tokio::test]
async fn the_admin_endpoint_is_read_only_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), PHASES);
    let server = common::spawn_serve_process(&["--profile", common::path_str(&profile)], &[]).await;
    let (status, body) = request(server.metrics, "POST", "/admin/phase/outage").await;
    assert_eq!(status, 403);
    assert!(body.contains("metrics.admin: read_write"), "{body}");
    assert_eq!(request(server.metrics, "GET", "/admin/chaos").await.0, 200);
    assert_eq!(get_user(&common::connect(server.addr).await).await, Code::Ok);
}

#[tokio::test]
async fn phases_follow_the_clock_while_calls_run() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(
        dir.path(),
        "chaos:
  phases:
    - { name: steady, duration: 400ms }
    - name: outage
      duration: 400ms
      abort: { rate: 100%, code: UNAVAILABLE }
",
    );
    let server = common::spawn_serve_process(&["--profile", common::path_str(&profile)], &[]).await;
    let channel = common::connect(server.addr).await;
    let started = Instant::now();
    let mut outcomes = Vec::new();
    while started.elapsed() < Duration::from_millis(2400) {
        outcomes.push(get_user(&channel).await == Code::Ok);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The timeline repeats: steady, outage, steady, … so outcomes switch several times.
    let switches = outcomes.windows(2).filter(|pair| pair[0] != pair[1]).count();
    let refused = outcomes.iter().filter(|ok| !**ok).count() as f64 / outcomes.len() as f64;
    assert!(switches >= 3, "{switches} switches in {outcomes:?}");
    assert!((0.25..=0.75).contains(&refused), "{refused} of calls refused; half the time is outage");
}

#[tokio::test]
async fn an_edited_profile_swaps_the_plan_and_a_broken_edit_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), "chaos:\n  seed: 1\n");
    let server = common::spawn_serve_process(&["--profile", common::path_str(&profile)], &[]).await;
    let channel = common::connect(server.addr).await;
    assert_eq!(get_user(&channel).await, Code::Ok);

    common::write_profile(
        dir.path(),
        "chaos:\n  rules:\n    - abort: { rate: 100%, code: PERMISSION_DENIED }\n",
    );
    let mut code = Code::Ok;
    for _ in 0..100 {
        code = get_user(&channel).await;
        if code == Code::PermissionDenied {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code, Code::PermissionDenied, "the edited plan applies to new calls");

    common::write_profile(dir.path(), "chaos:\n  rules:\n    - abort: { rate: 250%, code: OK }\n");
    let mut reloads = (0.0, 0.0);
    for _ in 0..100 {
        let samples = parse_samples(&get(server.metrics, "/metrics").await);
        reloads = (
            sum(&samples, "streamstorm_profile_reloads_total", &[("result", "ok")]),
            sum(&samples, "streamstorm_profile_reloads_total", &[("result", "error")]),
        );
        if reloads.1 >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloads.0 >= 1.0 && reloads.1 >= 1.0, "{reloads:?}");
    assert_eq!(get_user(&channel).await, Code::PermissionDenied, "a broken edit keeps the previous plan");
}

#[tokio::test]
async fn connections_are_drained_at_their_maximum_age() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(
        dir.path(),
        "chaos:\n  connections:\n    max_age: 300ms\n    max_age_grace: 100ms\n",
    );
    let server = common::spawn_serve_process(&["--profile", common::path_str(&profile)], &[]).await;
    let channel = common::connect(server.addr).await;
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut calls = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        let code = get_user(&channel).await;
        calls += 1;
        if code != Code::Ok {
            failed.push(code);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A drain is counted as a fault when its GOAWAY goes out and as a closed connection when
    // its grace ends, 100 ms later: scrape until no drain is half-way, as at most one can be.
    let counts = || async {
        let samples = parse_samples(&get(server.metrics, "/metrics").await);
        let closed = sum(&samples, "streamstorm_connections_closed_total", &[("reason", "max_age")]);
        (closed, sum(&samples, "streamstorm_faults_injected_total", &[("kind", "max_age")]))
    };
    let (mut aged, mut injected) = counts().await;
    let waiting = Instant::now();
    while injected != aged && waiting.elapsed() < Duration::from_secs(2) {
        assert!(injected - aged <= 1.0, "{injected} drains started, {aged} ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
        (aged, injected) = counts().await;
    }
    // 1.5 s of 300 ms ±10% connections: four or five drained, with a margin for scheduling.
    assert!((3.0..=7.0).contains(&aged), "{aged} connections closed for age");
    assert_eq!(injected, aged, "every drain started has ended");
    // The client moves to a new connection after each GOAWAY. tonic has no transparent retry,
    // so a call racing a drain may fail, as it would behind a load balancer: at most one per
    // drained connection, and only with the codes such a race gives.
    assert!(calls >= 30, "{calls} calls");
    assert!(failed.len() as f64 <= aged, "{failed:?} failed of {calls} calls across {aged} drains");
    assert!(failed.iter().all(|code| matches!(code, Code::Unavailable | Code::Cancelled)), "{failed:?}");
}
