//! Graceful shutdown: GOAWAY, in-flight streams drained within the grace period, the rest
//! closed; SIGTERM does the same for the binary, under load of every call kind, with health
//! NOT_SERVING and metrics answering through the drain and the final counts logged. SIGTERM
//! stops `simulate` early with its report complete up to then; a second signal exits at once.

mod common;

use std::time::{Duration, Instant};

use common::{CallOutcome, TestServer, call, json_message};
use prost_reflect::DescriptorPool;
use serde_json::json;
use streamstorm::server::{DefaultResponse, ServerSettings};
use tonic::Code;
use tonic::transport::Channel;

fn subscribe(channel: Channel, pool: &DescriptorPool) -> impl Future<Output = CallOutcome> + Send + 'static {
    let request = json_message(pool, "myapp.SubscribeRequest", json!({}));
    call(channel, pool, "myapp.NotificationService/Subscribe", vec![request])
}

/// Starts a subscription and waits until the server counts it as open.
async fn open_subscription(server: &TestServer) -> tokio::task::JoinHandle<CallOutcome> {
    let in_flight = tokio::spawn(subscribe(server.channel().await, &server.pool));
    assert!(common::eventually(Duration::from_secs(2), || server.handle.streams_active() == 1).await);
    in_flight
}

fn settings(messages: u32, interval: Duration, grace: Duration) -> ServerSettings {
    ServerSettings {
        default_response: DefaultResponse::Empty { stream_messages: messages, stream_interval: interval },
        shutdown_grace: grace,
        ..ServerSettings::default()
    }
}

#[tokio::test]
async fn in_flight_streams_finish_within_the_grace_period() {
    let server = TestServer::start(settings(4, Duration::from_millis(250), Duration::from_secs(5))).await;
    let in_flight = open_subscription(&server).await;

    let addr = server.addr;
    let started = Instant::now();
    server.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener closes at once");

    let outcome = in_flight.await.unwrap();
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    assert_eq!(outcome.responses.len(), 4, "the stream was drained, not cut");
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3), "stopped once drained, not at the end of the grace");
}

#[tokio::test]
async fn streams_still_open_after_the_grace_period_are_closed() {
    let grace = Duration::from_millis(300);
    let server = TestServer::start(settings(100, Duration::from_secs(1), grace)).await;
    let in_flight = open_subscription(&server).await;

    let started = Instant::now();
    server.stop().await;
    let stopped_after = started.elapsed();
    assert!(stopped_after >= grace && stopped_after < grace + Duration::from_secs(1), "{stopped_after:?}");
    let outcome = in_flight.await.unwrap();
    assert_ne!(outcome.status.code(), Code::Ok, "a cut stream must not look complete");
}

#[tokio::test]
async fn sigterm_drains_then_exits_zero() {
    let (mut child, addr) = common::spawn_serve(&[
        "--default-stream-messages",
        "3",
        "--default-stream-interval",
        "300ms",
        "--shutdown-grace",
        "5s",
    ])
    .await;
    let pool = common::example_pool();
    let in_flight = tokio::spawn(subscribe(common::connect(addr).await, &pool));
    tokio::time::sleep(Duration::from_millis(150)).await;

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let outcome = in_flight.await.unwrap();
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    assert_eq!(outcome.responses.len(), 3);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await.expect("exits").unwrap();
    assert!(status.success(), "{status}");
}

/// The server side of a drain under load: unary calls held by injected latency, client
/// streaming and bidi streams that finish during the drain, and streams of each streaming kind
/// that would run forever.
const DRAIN_PROFILE: &str = r#"
chaos:
  rules:
    - match: { method: myapp.UserService/GetUser }
      latency: { first_message: 2500ms }
"#;
/// Calls of each kind and fate.
const EACH: usize = 6;
const GRACE: Duration = Duration::from_secs(5);
/// When the finishing streams half-close, after SIGTERM.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// Requests every 200 ms until `release` (then the client half-closes), or forever without one.
fn paced_requests(
    message: streamstorm::proto::OutboundMessage,
    release: Option<tokio_util::sync::CancellationToken>,
) -> impl futures::Stream<Item = streamstorm::proto::OutboundMessage> + Send + 'static {
    futures::stream::unfold((message, release, true), |(message, release, first)| async move {
        if !first {
            let pause = tokio::time::sleep(Duration::from_millis(200));
            match &release {
                Some(release) => tokio::select! {
                    _ = pause => {}
                    _ = release.cancelled() => return None,
                },
                None => pause.await,
            }
        }
        Some((message.clone(), (message, release, false)))
    })
}

/// Opens a call on `channel` and reads it to its end: the replies counted, the final status.
fn drained_call(
    channel: Channel,
    pool: &DescriptorPool,
    method: &'static str,
    requests: impl futures::Stream<Item = streamstorm::proto::OutboundMessage> + Send + 'static,
) -> tokio::task::JoinHandle<(usize, tonic::Status, Instant)> {
    let (service, name) = method.split_once('/').unwrap();
    let output =
        pool.get_service_by_name(service).unwrap().methods().find(|m| m.name() == name).unwrap().output();
    tokio::spawn(async move {
        let mut stream = match common::open_stream(channel, &format!("/{method}"), output, requests).await {
            Ok(stream) => stream,
            Err(status) => return (0, status, Instant::now()),
        };
        let (replies, status) = common::arrivals(&mut stream, Instant::now()).await;
        (replies.len(), status, Instant::now())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_every_kind_then_cuts_the_rest() {
    use common::scrape::{get, parse_samples, sum};
    use tokio::io::AsyncBufReadExt;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), DRAIN_PROFILE);
    let grace = format!("{}ms", GRACE.as_millis());
    let mut served = common::spawn_serve_process_with_stderr(
        &[
            "--profile",
            common::path_str(&profile),
            "--default-stream-messages",
            "100000",
            "--default-stream-interval",
            "100ms",
            "--shutdown-grace",
            &grace,
        ],
        &[],
        std::process::Stdio::piped(),
    )
    .await;
    let mut log = tokio::io::BufReader::new(served.child.stderr.take().unwrap()).lines();
    let log_lines = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Ok(Some(line)) = log.next_line().await {
            lines.push(line);
        }
        lines
    });
    let pool = common::example_pool();
    let release = tokio_util::sync::CancellationToken::new();
    let chunk = json_message(&pool, "myapp.FileChunk", json!({"data": "AAAA", "sequence": 1}));
    let chat = json_message(&pool, "myapp.ChatMessage", json!({"user_id": "u", "content": "hi"}));
    let (mut finishing, mut endless) = (Vec::new(), Vec::new());
    for _ in 0..EACH {
        let channel = common::connect(served.addr).await;
        for (method, message) in
            [("myapp.UploadService/UploadFile", &chunk), ("myapp.ChatService/Chat", &chat)]
        {
            let requests = paced_requests(message.clone(), Some(release.clone()));
            finishing.push((method, drained_call(channel.clone(), &pool, method, requests)));
            endless.push((
                method,
                drained_call(channel.clone(), &pool, method, paced_requests(message.clone(), None)),
            ));
        }
        let subscribe = json_message(&pool, "myapp.SubscribeRequest", json!({}));
        let requests = futures::stream::iter([subscribe]);
        endless.push((
            "myapp.NotificationService/Subscribe",
            drained_call(channel, &pool, "myapp.NotificationService/Subscribe", requests),
        ));
    }
    let mut health = HealthClient::new(common::connect(served.addr).await);
    let mut updates = health.watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(updates.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let user = json_message(&pool, "myapp.GetUserRequest", json!({"user_id": "u"}));
    let unary_channel = common::connect(served.addr).await;
    for _ in 0..EACH {
        let requests = futures::stream::iter([user.clone()]);
        finishing.push((
            "myapp.UserService/GetUser",
            drained_call(unary_channel.clone(), &pool, "myapp.UserService/GetUser", requests),
        ));
    }
    let total = finishing.len() + endless.len();
    let active = async || {
        sum(&parse_samples(&get(served.metrics, "/metrics").await), "streamstorm_streams_active", &[])
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while active().await < total as f64 {
        assert!(Instant::now() < deadline, "{} of {total} streams opened", active().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let pid = served.child.id().unwrap().to_string();
    let signalled = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let update =
        tokio::time::timeout(Duration::from_secs(2), updates.message()).await.expect("health changes");
    assert_eq!(update.unwrap().unwrap().status(), ServingStatus::NotServing, "health during the drain");
    tokio::time::sleep(RELEASE_AFTER.saturating_sub(signalled.elapsed())).await;
    release.cancel();

    // The metrics listener answers through the drain: the finishing streams end OK while the
    // endless ones are still open.
    let mut drained_scrape = None;
    while signalled.elapsed() < GRACE - Duration::from_millis(500) {
        let samples = parse_samples(&get(served.metrics, "/metrics").await);
        let started = sum(&samples, "streamstorm_streams_started_total", &[]);
        let ended = sum(&samples, "streamstorm_streams_ended_total", &[]);
        let ok = sum(&samples, "streamstorm_streams_ended_total", &[("code", "OK")]);
        let open = sum(&samples, "streamstorm_streams_active", &[]);
        if ok == finishing.len() as f64 {
            drained_scrape = Some((signalled.elapsed(), started, ended, open));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (at, started, ended, open) =
        drained_scrape.expect("a scrape during the drain saw the finishing streams end OK");
    println!("drain at {at:?}: {started} streams started, {ended} ended, {open} still open");
    assert_eq!(open, endless.len() as f64);

    for (method, call) in finishing {
        let (replies, status, _) = call.await.unwrap();
        assert_eq!(status.code(), Code::Ok, "{method}: {status:?}");
        assert!(replies >= 1, "{method}");
    }
    for (method, call) in endless {
        let (replies, status, ended_at) = call.await.unwrap();
        assert_ne!(status.code(), Code::Ok, "{method} was cut, not completed");
        let after = ended_at.duration_since(signalled);
        assert!(after >= GRACE - Duration::from_millis(100), "{method} cut at {after:?}, before the grace");
        // Client streaming replies only once the client half-closes, which these never do.
        if method != "myapp.UploadService/UploadFile" {
            assert!(replies >= 1, "{method} kept streaming during the drain");
        }
    }
    let status = tokio::time::timeout(GRACE + Duration::from_secs(3), served.child.wait())
        .await
        .expect("exits soon after the grace")
        .unwrap();
    let exited_after = signalled.elapsed();
    assert!(status.success(), "{status}");
    assert!(exited_after < GRACE + Duration::from_secs(3), "{exited_after:?}");
    let lines = log_lines.await.unwrap();
    let summary =
        lines.iter().find(|line| line.contains("Final counts.")).unwrap_or_else(|| panic!("{lines:#?}"));
    println!("exited {exited_after:?} after SIGTERM; {summary}");
    let streams = total.to_string();
    assert!(summary.contains(&format!("streams_started={streams}")), "{summary}");
    assert!(summary.contains(&format!("streams_ended={streams}")), "{summary}");
}

/// An embedded server with faults the report reconciles, driven for far longer than the test
/// lets it run.
const SIMULATE_PROFILE: &str = r#"
chaos:
  seed: 3
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      abort: { rate: 10%, code: UNAVAILABLE }
      fail: { rate: 10%, after_messages: 1..5, code: INTERNAL }
load:
  duration: 5m
  embedded: { stream_messages: 10, stream_interval: 20ms }
  scenarios:
    - method: myapp.NotificationService/Subscribe
      streams: 40
      request: { topics: [t] }
      reconnect: { initial_backoff: 10ms, max_backoff: 100ms }
    - method: myapp.UserService/GetUser
      streams: 4
      request: { user_id: u }
      think_time: 10ms
  thresholds: { error_rate: "< 60%" }
"#;

/// A `simulate` process on `profile` with stdout and stderr piped; returns once its client has
/// started `calls` calls.
async fn simulating(
    profile: &std::path::Path,
    report: &std::path::Path,
    calls: f64,
) -> common::SimulateProcess {
    use common::scrape::{get, parse_samples, sum};
    let process = common::spawn_simulate_process_with_output(
        &["--profile", common::path_str(profile), "--report", common::path_str(report)],
        std::process::Stdio::piped(),
        std::process::Stdio::piped(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let samples = parse_samples(&get(process.metrics, "/metrics").await);
        if sum(&samples, "streamstorm_client_streams_started_total", &[]) >= calls {
            return process;
        }
        assert!(Instant::now() < deadline, "the load client never started {calls} calls");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn terminate(child: &tokio::process::Child) {
    let pid = child.id().expect("the process runs").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
}

#[tokio::test]
async fn sigterm_stops_simulate_early_with_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), SIMULATE_PROFILE);
    let report = dir.path().join("report.json");
    let simulate = simulating(&profile, &report, 300.0).await;
    terminate(&simulate.child);
    let output = tokio::time::timeout(Duration::from_secs(15), simulate.child.wait_with_output())
        .await
        .expect("simulate ends soon after SIGTERM")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("stopped early by a signal after"), "{stdout}");
    assert!(stdout.contains("report written to"), "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["interrupted"], true);
    assert!(json["duration_s"].as_f64().unwrap() < 60.0, "{}", json["duration_s"]);
    assert!(json["streams"]["opened"].as_u64().unwrap() >= 300, "{}", json["streams"]);
    assert!(json["errors"]["INTERNAL"].as_u64().unwrap() > 0, "{}", json["errors"]);
    assert_eq!(
        json["server_faults"]["reconciled"], true,
        "what the client counted until the signal matches what the server injected: {}",
        json["server_faults"]
    );
    let passed = json["thresholds"]["passed"].as_bool().unwrap();
    assert!(passed, "{}", json["thresholds"]);
    assert_eq!(output.status.code(), Some(0), "exit code per the thresholds\n{stderr}");
}

#[tokio::test]
async fn a_second_signal_exits_simulate_at_once() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    // Server streams that never end by themselves keep the drain busy for its whole half second.
    let profile = common::write_profile(
        dir.path(),
        &SIMULATE_PROFILE.replace(
            "stream_messages: 10, stream_interval: 20ms",
            "stream_messages: 1000000, stream_interval: 50ms",
        ),
    );
    let report = dir.path().join("report.json");
    let mut simulate = simulating(&profile, &report, 40.0).await;
    let mut log = tokio::io::BufReader::new(simulate.child.stderr.take().unwrap()).lines();
    terminate(&simulate.child);
    let requested = async {
        while let Some(line) = log.next_line().await.unwrap() {
            if line.contains("Shutdown requested") {
                return;
            }
        }
        panic!("simulate never logged the shutdown request");
    };
    tokio::time::timeout(Duration::from_secs(5), requested).await.expect("the first signal is seen");
    let second = Instant::now();
    terminate(&simulate.child);
    let status = tokio::time::timeout(Duration::from_secs(5), simulate.child.wait())
        .await
        .expect("simulate exits after the second signal")
        .unwrap();
    println!("exited {:?} after the second signal", second.elapsed());
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(!report.exists(), "no report after an insisted exit");
}
