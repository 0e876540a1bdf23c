//! The client judge seen as its users see it: `streamstorm serve --profile P --duration D
//! --report R` as a child process, the reconnecting subscriber programs of
//! `tests/interop/{python,node}/` run against it as the clients under test, and what `serve`
//! printed, its exit code and its report, beside each subscriber's own account of what it did.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use super::interop::{Client, script_command};
use super::{ServeProcess, path_str, spawn_serve_process_keeping_stdout, write_profile};

/// The method every subscriber calls.
pub const SUBSCRIBE: &str = "myapp.NotificationService/Subscribe";

/// How long `serve` may take past its `--duration` to judge, write its report and exit.
const SERVE_EXIT_GRACE: Duration = Duration::from_secs(15);

/// How long a subscriber may run past the `serve` run it was started for. It is stopped with
/// SIGTERM once `serve` has exited; this only bounds a run that goes wrong.
const SUBSCRIBER_OVERRUN: Duration = Duration::from_secs(30);

/// How long a subscriber may take to print its report after SIGTERM.
const SUBSCRIBER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A client under test: one of the subscriber programs with its options.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub client: Client,
    /// Sent as `x-client-id`.
    pub id: String,
    args: Vec<String>,
}

impl Subscriber {
    /// A subscriber of `client`'s library, retrying with its program's defaults until told more.
    pub fn new(client: Client, id: &str) -> Self {
        Self { client, id: id.into(), args: Vec::new() }
    }

    fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|arg| arg.to_string()));
        self
    }

    /// Exponential backoff: `initial_ms`, ×`multiplier` per failed attempt, ±`jitter`, capped
    /// at `max_ms`.
    pub fn exponential(self, initial_ms: u64, multiplier: f64, jitter: f64, max_ms: u64) -> Self {
        let (initial, multiplier, jitter, max) =
            (initial_ms.to_string(), multiplier.to_string(), jitter.to_string(), max_ms.to_string());
        self.args(&[
            "--retry",
            "exponential",
            "--initial-ms",
            &initial,
            "--multiplier",
            &multiplier,
            "--jitter",
            &jitter,
            "--max-ms",
            &max,
        ])
    }

    /// The same delay before every attempt: a hot loop when it is short.
    pub fn fixed(self, interval_ms: u64) -> Self {
        self.args(&["--retry", "fixed", "--interval-ms", &interval_ms.to_string()])
    }

    /// Waits at least the `google.rpc.RetryInfo` delay a failed call carries.
    pub fn honor_retry_info(self) -> Self {
        self.args(&["--honor-retry-info"])
    }

    /// Asks to resume after the last sequence received (`resume_after`), not from zero.
    pub fn resume(self) -> Self {
        self.args(&["--resume"])
    }

    /// HTTP/2 keepalive: a ping after `time_ms`, the connection abandoned when its ack takes
    /// longer than `timeout_ms`.
    pub fn keepalive(self, time_ms: u64, timeout_ms: u64) -> Self {
        self.args(&[
            "--keepalive-time-ms",
            &time_ms.to_string(),
            "--keepalive-timeout-ms",
            &timeout_ms.to_string(),
        ])
    }

    /// The identity the judge gives it under `clients.identify_by: { header: x-client-id }`.
    pub fn identity(&self) -> String {
        format!("x-client-id={}", self.id)
    }

    /// Starts it against `target` for at most `duration`.
    pub fn spawn(&self, target: SocketAddr, duration: Duration) -> RunningSubscriber {
        let child = script_command(self.client, "subscriber")
            .args(["--target", &target.to_string(), "--method", SUBSCRIBE, "--client-id", &self.id])
            .args(["--duration-s", &duration.as_secs_f64().to_string()])
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the subscriber starts");
        RunningSubscriber { subscriber: self.clone(), child }
    }
}

/// A subscriber process (killed when dropped).
pub struct RunningSubscriber {
    subscriber: Subscriber,
    child: tokio::process::Child,
}

impl RunningSubscriber {
    /// Stops it with SIGTERM, as a deployment would, and reads the report it prints at exit.
    pub async fn stop(self) -> SubscriberReport {
        let Self { subscriber, child } = self;
        if let Some(pid) = child.id() {
            // It may have ended by itself already; then there is nobody to signal.
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let output = tokio::time::timeout(SUBSCRIBER_STOP_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| {
                panic!("{subscriber:?} did not exit within {SUBSCRIBER_STOP_TIMEOUT:?} of SIGTERM")
            })
            .expect("the subscriber runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{subscriber:?} failed ({}):\n{stdout}\n{stderr}", output.status);
        let mut report: SubscriberReport = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|error| panic!("{subscriber:?} printed no report ({error}): {stdout}\n{stderr}"));
        report.stderr = stderr.into_owned();
        report
    }
}

/// What a subscriber says it did.
#[derive(Debug, Deserialize)]
pub struct SubscriberReport {
    pub client_id: String,
    /// The library and its version.
    pub library: String,
    /// Calls started, each ended OK or with a status.
    pub attempts: u64,
    pub messages: u64,
    /// Calls by how they ended: a gRPC code name, or `STOPPED` for the call its own end
    /// cancelled.
    pub endings: BTreeMap<String, u64>,
    /// Per attempt, the sequence it asked to resume after (0: from the start).
    pub resumed_from: Vec<u64>,
    /// The delays it chose before each next attempt (the last may be cut short by its end).
    pub delays_ms: Vec<f64>,
    /// Beside each delay, the `RetryInfo` delay the call before it carried, if any.
    pub retry_info_ms: Vec<Option<f64>>,
    /// When each attempt started, in Unix milliseconds.
    pub attempt_times_unix_ms: Vec<f64>,
    pub duration_s: f64,
    #[serde(skip)]
    pub stderr: String,
}

impl SubscriberReport {
    /// How many attempts it started before `time`.
    pub fn attempts_before(&self, time: SystemTime) -> usize {
        let limit = time.duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64() * 1000.0;
        self.attempt_times_unix_ms.iter().filter(|&&at| at < limit).count()
    }

    /// Each delay it chose after a call carrying a `RetryInfo`, with that `RetryInfo` delay.
    pub fn delays_after_retry_info(&self) -> Vec<(f64, f64)> {
        assert_eq!(self.delays_ms.len(), self.retry_info_ms.len(), "{self:?}");
        self.delays_ms
            .iter()
            .zip(&self.retry_info_ms)
            .filter_map(|(&delay, hint)| Some((delay, (*hint)?)))
            .collect()
    }

    /// The median delay it chose.
    pub fn median_delay_ms(&self) -> f64 {
        let mut delays = self.delays_ms.clone();
        assert!(!delays.is_empty(), "{} slept no delay: {self:?}", self.client_id);
        delays.sort_by(f64::total_cmp);
        delays[delays.len() / 2]
    }
}

/// A `serve --duration --report` run with its subscribers.
pub struct JudgedRun {
    pub served: ServeProcess,
    printed: tokio::task::JoinHandle<String>,
    running: Vec<RunningSubscriber>,
    report: PathBuf,
    duration: Duration,
    /// Just before `serve` was started.
    started: SystemTime,
    _dir: tempfile::TempDir,
}

impl JudgedRun {
    /// Starts `serve` for `duration` under a profile of `body` (the `server` section serving
    /// the `myapp` protos is added) with `serve_args`, then every subscriber against it.
    pub async fn start(
        body: &str,
        duration: Duration,
        serve_args: &[&str],
        subscribers: &[Subscriber],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let profile = write_profile(dir.path(), body);
        let report = dir.path().join("report.json");
        let duration_arg = format!("{}ms", duration.as_millis());
        let mut args = vec!["--profile", path_str(&profile), "--duration", &duration_arg];
        args.extend(["--report", path_str(&report)]);
        args.extend_from_slice(serve_args);
        let started = SystemTime::now();
        let (served, mut stdout) = spawn_serve_process_keeping_stdout(&args, &[], Stdio::inherit()).await;
        let printed = tokio::spawn(async move {
            let mut text = String::new();
            while let Ok(Some(line)) = stdout.next_line().await {
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let running = subscribers
            .iter()
            .map(|subscriber| subscriber.spawn(served.addr, duration + SUBSCRIBER_OVERRUN))
            .collect();
        Self { served, printed, running, report, duration, started, _dir: dir }
    }

    /// Waits for `serve` to end by itself, stops the subscribers, and gathers every report.
    pub async fn finish(mut self) -> Judged {
        let status = tokio::time::timeout(self.duration + SERVE_EXIT_GRACE, self.served.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "serve did not exit within {SERVE_EXIT_GRACE:?} after its --duration {:?}",
                    self.duration
                )
            })
            .expect("serve runs");
        let exited = SystemTime::now();
        let subscribers =
            futures::future::join_all(self.running.into_iter().map(RunningSubscriber::stop)).await;
        let stdout = self.printed.await.expect("serve's stdout is read");
        let text = std::fs::read_to_string(&self.report).unwrap_or_else(|error| {
            panic!("serve ({status}) wrote no report ({error}); it printed:\n{stdout}")
        });
        let report = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("the report is not JSON ({error}):\n{text}"));
        Judged {
            exit_code: status.code(),
            stdout,
            report,
            subscribers,
            judged_until: self.started + self.duration,
            exited,
        }
    }
}

/// What a judged run ended with.
#[derive(Debug)]
pub struct Judged {
    pub exit_code: Option<i32>,
    /// What `serve` printed after announcing its addresses: its verdicts.
    pub stdout: String,
    pub report: Value,
    /// Each subscriber's own report, in the order they were given.
    pub subscribers: Vec<SubscriberReport>,
    /// A time by which `serve` was surely still judging: its start plus its `--duration`
    /// (it started after this was taken).
    pub judged_until: SystemTime,
    /// Just after `serve` exited: it judged nothing later.
    pub exited: SystemTime,
}

impl Judged {
    /// The report's section on `subscriber`.
    pub fn client(&self, subscriber: &Subscriber) -> &Value {
        let identity = subscriber.identity();
        let clients =
            self.report["clients"].as_array().unwrap_or_else(|| panic!("no clients in {}", self.report));
        clients.iter().find(|client| client["client"] == identity.as_str()).unwrap_or_else(|| {
            let seen: Vec<&Value> = clients.iter().map(|client| &client["client"]).collect();
            panic!("the report has no client {identity}; it has {seen:?}\n{}", self.stdout)
        })
    }

    /// `subscriber`'s own report.
    pub fn own(&self, subscriber: &Subscriber) -> &SubscriberReport {
        self.subscribers
            .iter()
            .find(|report| report.client_id == subscriber.id)
            .unwrap_or_else(|| panic!("no subscriber report for {}", subscriber.id))
    }

    /// A number in `subscriber`'s section, by JSON pointer (`/backoff/initial_ms`).
    pub fn number(&self, subscriber: &Subscriber, pointer: &str) -> f64 {
        let client = self.client(subscriber);
        client
            .pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{}: no number at {pointer} in {client:#}", subscriber.identity()))
    }

    /// Asserts that `subscriber` passed (or failed) `expectation`.
    pub fn assert_verdict(&self, subscriber: &Subscriber, expectation: &str, passed: bool) {
        let client = self.client(subscriber);
        let verdict = client["verdicts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|verdict| verdict["expectation"] == expectation)
            .unwrap_or_else(|| {
                panic!("{}: no verdict on {expectation} in {client:#}", subscriber.identity())
            });
        assert_eq!(
            verdict["passed"].as_bool(),
            Some(passed),
            "{} on {expectation}: {verdict}\nits own report: {:?}",
            subscriber.identity(),
            self.own(subscriber)
        );
    }

    /// Asserts the run's outcome: exit 1, every `failing` subscriber named in the printed
    /// text and in the report's failures with the expectation it failed, and the `passing`
    /// ones passed and named in no failure.
    pub fn assert_outcome(&self, failing: &[(&Subscriber, &str)], passing: &[&Subscriber]) {
        let failures: Vec<&str> = self.report["expectations"]["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(self.exit_code, Some(1), "serve's exit code; it printed:\n{}", self.stdout);
        assert_eq!(self.report["expectations"]["passed"], false, "{failures:?}");
        assert_eq!(self.report["interrupted"], false, "the run ended by its --duration");
        for (subscriber, expectation) in failing {
            let identity = subscriber.identity();
            assert!(
                failures.iter().any(|failure| failure.contains(&identity) && failure.contains(expectation)),
                "the report's failures do not say that {identity} failed {expectation}: {failures:?}"
            );
            assert!(
                self.stdout.contains(&identity) && self.stdout.contains(expectation),
                "the printed text does not name {identity} and {expectation}:\n{}",
                self.stdout
            );
            assert_eq!(self.client(subscriber)["passed"], false, "{identity}");
        }
        for subscriber in passing {
            let identity = subscriber.identity();
            assert!(
                !failures.iter().any(|failure| failure.contains(&identity)),
                "{identity} is among the failures: {failures:?}"
            );
            assert_eq!(self.client(subscriber)["passed"], true, "{identity}: {:#}", self.client(subscriber));
        }
    }

    /// Asserts that the judge counted the attempts `subscriber` says it made: at least those it
    /// started while `serve` was surely judging, at most those it started before `serve` exited.
    pub fn assert_attempts_agree(&self, subscriber: &Subscriber) {
        let seen = self.number(subscriber, "/attempts");
        let own = self.own(subscriber);
        let (surely, at_most) = (own.attempts_before(self.judged_until), own.attempts_before(self.exited));
        assert!(
            (surely as f64..=at_most as f64).contains(&seen),
            "{}: the judge counted {seen} attempts; the client started {surely} while serve surely judged, \
             {at_most} before it exited",
            subscriber.identity()
        );
    }
}

/// A profile under which reconnecting subscribers make every `streamstorm_peer_` metric move:
/// half the subscriptions go silent (blackhole) after three messages, the others end after
/// five; every few seconds an outage refuses calls with a RetryInfo; resumes are classed.
const PEER_TRAFFIC: &str = r#"
chaos:
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      disconnect: { rate: 50%, after_messages: 3, mode: blackhole }
  phases:
    - { name: steady, duration: 3s }
    - name: outage
      duration: 1s
      abort:
        rate: 100%
        code: UNAVAILABLE
        details: [{ "@type": google.rpc.RetryInfo, retry_delay: 0.3s }]
clients:
  identify_by: { header: x-client-id }
  resume: { request_field: resume_after, response_field: sequence }
"#;

/// `serve` under [`PEER_TRAFFIC`] for two minutes at most, with two subscribers reconnecting
/// through it: a Python one backing off, honouring RetryInfo and resuming, and a Node one
/// retrying every 20 ms (a hot loop in each outage) and restarting; both with keepalive, so
/// they abandon the blackholed connections. Everything is killed when it is dropped.
pub async fn peer_traffic() -> JudgedRun {
    let steady = Subscriber::new(Client::Python, "steady")
        .exponential(100, 2.0, 0.2, 1000)
        .honor_retry_info()
        .resume()
        .keepalive(1000, 1000);
    let hot = Subscriber::new(Client::Node, "hot").fixed(20).keepalive(1000, 1000);
    let serve_args = ["--default-stream-messages", "5", "--default-stream-interval", "100ms"];
    JudgedRun::start(PEER_TRAFFIC, Duration::from_secs(120), &serve_args, &[steady, hot]).await
}
