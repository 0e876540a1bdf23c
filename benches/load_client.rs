//! The load client's CPU per message against the server's, in the same run: the server (one
//! worker thread) streams messages flat out to the client (one worker thread), and each side's
//! thread CPU time is read from /proc. Two workloads: empty messages encoded once (the server's
//! cheapest case), and a realistic `myapp.Notification` built and encoded per message (what a
//! stub with templates costs). Prints messages/s, CPU per message on each side and their ratio;
//! a ratio at or below 1 means one client core keeps up with one server core.
//! Run: `cargo bench --bench load_client` (Linux).

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::RepeatResponder;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use streamstorm::client::{self, ConnectionPool, LoadSettings, channels, compile_scenarios};
use streamstorm::config::load::compile_load;
use streamstorm::config::parse_profile;
use streamstorm::proto::OutboundMessage;
use streamstorm::proto::load_pool;
use streamstorm::server::{BoundServer, ServerSettings};
use tokio_util::sync::CancellationToken;

const SERVER_THREAD: &str = "bench-server";
const CLIENT_THREAD: &str = "bench-client";
const RUN: Duration = Duration::from_secs(5);

/// CPU seconds used so far by this process's threads named `name`.
fn thread_cpu(name: &str) -> f64 {
    let ticks_per_second = 100.0;
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").expect("Linux /proc").flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields.get(11).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        ticks += fields.get(12).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    }
    ticks as f64 / ticks_per_second
}

fn runtime(name: &'static str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pool = load_pool(&[root.join("protos/myapp")], &[]).expect("the example protos load");
    let empty = empty_notification(&pool);
    let realistic = OutboundMessage::Dynamic(common::notification(&pool));
    for (workload, message) in
        [("empty messages, pre-encoded", empty), ("realistic messages, encoded per send", realistic)]
    {
        measure(workload, &pool, message);
    }
}

/// The empty `myapp.Notification`, encoded once.
fn empty_notification(pool: &DescriptorPool) -> OutboundMessage {
    let descriptor = pool.get_message_by_name("myapp.Notification").expect("Notification exists");
    OutboundMessage::Encoded(DynamicMessage::new(descriptor).encode_to_vec().into())
}

/// Streams `message` from the server to the client for [`RUN`] and prints both sides' CPU.
fn measure(workload: &str, pool: &DescriptorPool, message: OutboundMessage) {
    let server_runtime = runtime(SERVER_THREAD);
    let client_runtime = runtime(CLIENT_THREAD);
    let shutdown = CancellationToken::new();
    let settings = ServerSettings { listen: "127.0.0.1:0".parse().unwrap(), ..ServerSettings::default() };
    let responder = Arc::new(RepeatResponder { message, count: u64::MAX });
    let server = server_runtime
        .block_on(BoundServer::bind_with(&mut pool.clone(), settings, responder))
        .expect("the server binds");
    let address = server.local_addr().to_string();
    let catalog = server.handle().catalog;
    let serving = server_runtime.spawn(server.serve(shutdown.clone()));
    let profile_text = "load:\n  connections: 2\n  scenarios:\n    - { method: myapp.NotificationService/Subscribe, streams: 64, request: { topics: [bench] } }\n";
    let profile = parse_profile(Path::new("bench.yaml"), profile_text).expect("the bench profile compiles");
    let plan = compile_load(&profile).expect("the bench load section compiles");
    let scenarios = compile_scenarios(&plan, &profile.file, &catalog).expect("the bench scenario resolves");
    let (server_before, client_before) = (thread_cpu(SERVER_THREAD), thread_cpu(CLIENT_THREAD));
    let received = client_runtime.block_on(async {
        let channels = channels(&address, plan.connections, plan.connect_timeout, None).unwrap();
        let settings = LoadSettings {
            duration: RUN,
            calls: None,
            seed: 1,
            drain: Duration::ZERO,
            first_stream_ids: Vec::new(),
        };
        let pool = std::sync::Arc::new(ConnectionPool::from_channels(&address, channels));
        let run = client::start(&scenarios, &pool, &settings);
        let collector: Arc<client::Collector> = run.collector();
        run.finish(Duration::ZERO, async {}).await;
        collector.counts().messages_received
    });
    let server_cpu = thread_cpu(SERVER_THREAD) - server_before;
    let client_cpu = thread_cpu(CLIENT_THREAD) - client_before;
    shutdown.cancel();
    let _ = server_runtime.block_on(serving);
    let messages = received as f64;
    println!(
        "load_client ({workload}): {received} messages in {}s ({:.0}/s)",
        RUN.as_secs(),
        messages / RUN.as_secs_f64()
    );
    println!("  server CPU {server_cpu:.2}s ({:.2} µs/message)", server_cpu * 1e6 / messages);
    println!("  client CPU {client_cpu:.2}s ({:.2} µs/message)", client_cpu * 1e6 / messages);
    println!("  client/server CPU per message: {:.2}", client_cpu / server_cpu.max(1e-9));
    println!("  one client core sustains about {:.0} messages/s", messages / client_cpu.max(1e-9));
}
