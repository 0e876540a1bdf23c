//! The server figures, measured with the driver (`streamstorm-driver`, a static tonic client)
//! so the client is never what limits them: one throughput run against a running server (rate,
//! server and driver CPU per message), and one idle-streams run against a fresh server (server
//! memory per stream once every stream has received its first message).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use streamstorm_driver::harness::process::{ServerProcess, cpu, rss_bytes};
use streamstorm_driver::{Call, LoadPlan, Opening, Stop, Window};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// What one throughput run measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Messages (server streaming) or replies (unary) received per second.
    pub per_second: f64,
    /// The client's CPU seconds per message received.
    pub client_cpu_per_message: f64,
    /// The server's CPU seconds per message sent.
    pub server_cpu_per_message: f64,
}

/// A load's shape: the call, and connections × calls in flight per connection.
#[derive(Debug, Clone)]
pub struct Shape {
    pub call: Call,
    pub connections: usize,
    pub per_connection: usize,
}

/// Drives `server` with `shape` for `seconds`, all of them counted: the CPU read around the
/// run then matches the messages counted.
pub fn throughput(
    runtime: &Runtime,
    server: &ServerProcess,
    shape: &Shape,
    seconds: f64,
    ticks: f64,
) -> Result<Throughput> {
    let plan = LoadPlan {
        target: server.addr,
        connections: shape.connections,
        slots_per_connection: shape.per_connection,
        call: shape.call.clone(),
        opening: Opening::Burst,
        window: Window { warmup: Duration::ZERO, measure: Duration::from_secs_f64(seconds) },
        stop: Stop::EndOfWindow,
        expected_gap: None,
    };
    let cpu_of = |pid: u32| cpu(pid, ticks).map(|sample| sample.seconds);
    let (server_before, driver_before) = (cpu_of(server.pid())?, cpu_of(std::process::id())?);
    let limit = Duration::from_secs_f64(seconds + 30.0);
    let outcome =
        runtime.block_on(async { tokio::time::timeout(limit, streamstorm_driver::run(&plan)).await })??;
    let server_cpu = cpu_of(server.pid())? - server_before;
    let driver_cpu = cpu_of(std::process::id())? - driver_before;
    if outcome.messages == 0 || outcome.failed > 0 {
        bail!("the run did not go cleanly: {outcome:?}");
    }
    let messages = outcome.messages as f64;
    Ok(Throughput {
        per_second: outcome.per_second(),
        client_cpu_per_message: driver_cpu / messages,
        server_cpu_per_message: server_cpu / messages,
    })
}

/// What a run of idle streams measured.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    /// Server RSS growth per stream, from before the driver connected to a second after every
    /// stream received its first message.
    pub bytes_per_stream: f64,
    /// From the first call to the last stream's first message.
    pub open_time: Duration,
    /// Calls that failed (a failed slot calls again, so one stream may fail more than once).
    pub failed_calls: u64,
    /// Connections on which a call failed.
    pub failed_connections: usize,
}

/// `streams` idle `Subscribe` streams, `per_connection` on each connection, opened as `opening`
/// says against a fresh `server` (dropped at the end).
pub fn idle_streams(
    runtime: &Runtime,
    server: ServerProcess,
    streams: usize,
    per_connection: usize,
    opening: Opening,
) -> Result<Idle> {
    std::thread::sleep(Duration::from_millis(500));
    let server_idle = rss_bytes(server.pid())?;
    let connections = streams.div_ceil(per_connection);
    let token = CancellationToken::new();
    let plan = LoadPlan {
        target: server.addr,
        connections,
        slots_per_connection: streams / connections,
        call: Call::subscribe(&[streamstorm_baseline::IDLE_TOPIC]),
        opening,
        window: Window { warmup: Duration::ZERO, measure: Duration::from_secs(3600) },
        stop: Stop::Token(token.clone()),
        expected_gap: None,
    };
    let opened = plan.slots();
    let measured = runtime.block_on(async {
        let running = streamstorm_driver::start(&plan).await?;
        let started = Instant::now();
        let waited = wait_for_first_messages(&running, opened, Duration::from_secs(300)).await;
        let open_time = started.elapsed();
        let server_full = match waited {
            Ok(()) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                rss_bytes(server.pid())
            }
            Err(error) => Err(error),
        };
        token.cancel();
        let outcome = running.finish().await;
        let server_full = server_full?;
        anyhow::Ok(Idle {
            bytes_per_stream: (server_full as f64 - server_idle as f64) / opened as f64,
            open_time,
            failed_calls: outcome.failed,
            failed_connections: outcome.failed_connections,
        })
    });
    drop(server);
    measured
}

/// Returns once `wanted` calls have received a message, or fails after `limit`.
async fn wait_for_first_messages(
    running: &streamstorm_driver::RunningLoad,
    wanted: usize,
    limit: Duration,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let answered = running.progress.calls_with_a_message.load(Ordering::Relaxed);
        if answered >= wanted as u64 {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("only {answered} of {wanted} idle streams had their first message after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
