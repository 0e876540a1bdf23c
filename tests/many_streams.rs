//! 10,000 concurrent server streams over several connections, held open at once and all
//! completing correctly; reports the server's resident memory per open stream.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{json_message, message_type, resident_bytes};
use serde_json::json;

const STREAMS: usize = 10_000;
const CONNECTIONS: usize = 8;
/// Each stream's second (last) message comes this long after its first: the window in which
/// all of them must be open together.
const HOLD: Duration = Duration::from_secs(10);
/// Generous for RSS noise: about 3.1–3.8 KiB measured (2.8 KB of it heap, over 1 KB of that
/// h2's per-connection frame buffers, sized by how many frames the burst of opens queued at
/// once). A stream buffer back at tonic's 8 KiB default, or any per-stream kilobytes, fail it.
const MAX_BYTES_PER_STREAM: u64 = 6 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_server_streams() {
    let hold = format!("{}s", HOLD.as_secs());
    let (mut server, addr) = common::spawn_serve(&[
        "--default-stream-messages",
        "2",
        "--default-stream-interval",
        &hold,
        "--log",
        "warn",
    ])
    .await;
    let server_pid = server.id().unwrap();

    let pool = common::example_pool();
    let output = message_type(&pool, "myapp.Notification");
    let request = json_message(&pool, "myapp.SubscribeRequest", json!({"topics": ["load"]}));
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(common::connect(addr).await);
    }
    let baseline = resident_bytes(server_pid);

    let opened = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let calls: Vec<_> = (0..STREAMS)
        .map(|index| {
            let (channel, output, request, opened) =
                (channels[index % CONNECTIONS].clone(), output.clone(), request.clone(), opened.clone());
            tokio::spawn(async move {
                let path = "/myapp.NotificationService/Subscribe";
                let mut stream = common::open_stream(channel, path, output, futures::stream::iter([request]))
                    .await
                    .map_err(|s| s.to_string())?;
                let mut received = 0;
                while let Some(_message) = stream.message().await.map_err(|s| s.to_string())? {
                    received += 1;
                    if received == 1 {
                        opened.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Ok::<_, String>((received, Instant::now()))
            })
        })
        .collect();

    let all_open = common::eventually(HOLD * 2, || opened.load(Ordering::SeqCst) == STREAMS).await;
    let all_open_at = Instant::now();
    let loaded = resident_bytes(server_pid);
    assert!(all_open, "only {} of {STREAMS} streams got their first message", opened.load(Ordering::SeqCst));
    let per_stream = loaded.saturating_sub(baseline) / STREAMS as u64;
    eprintln!(
        "{STREAMS} streams open after {:?}; server RSS {} KiB -> {} KiB: {per_stream} bytes per stream",
        all_open_at - started,
        baseline / 1024,
        loaded / 1024
    );

    for call in calls {
        let (received, finished_at) = call.await.unwrap().expect("every stream completes OK");
        assert_eq!(received, 2);
        assert!(
            finished_at > all_open_at,
            "a stream finished before all were open: they were not concurrent"
        );
    }
    assert!(per_stream <= MAX_BYTES_PER_STREAM, "{per_stream} bytes per idle stream");
    server.kill().await.unwrap();
}
