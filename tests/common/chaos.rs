//! Servers whose chaos comes from profile YAML, compiled and assembled the way
//! `serve --profile` does it, and a record of which connections carried which streams, for
//! tests of faults that act on a whole connection.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamstorm::cli::{ServeArgs, assemble};
use streamstorm::config::parse_profile;

use super::{TestServer, example_pool, repo_root};

/// Serves the example protos on a free port under the profile `yaml`; methods answer from the
/// default responder, server streams with `messages` messages `interval` apart.
pub async fn start_with_profile(yaml: &str, messages: u32, interval: Duration) -> TestServer {
    // The name only labels problems; the profile names no paths.
    let profile = parse_profile(Path::new("inline-profile.yaml"), yaml)
        .unwrap_or_else(|problems| panic!("the profile compiles:\n{problems}\n{yaml}"));
    let args = ServeArgs {
        protos: vec![repo_root().join("protos")],
        listen: Some("127.0.0.1:0".parse().unwrap()),
        // Not the default port: servers of tests running side by side would share it.
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        default_stream_messages: messages,
        default_stream_interval: interval,
        ..ServeArgs::default()
    };
    let assembled =
        assemble(&args, Some(&profile)).await.unwrap_or_else(|error| panic!("the server assembles: {error}"));
    TestServer::from_bound(assembled.server, example_pool())
}

/// The streams each connection of a server carried, watched every few milliseconds while this
/// lives (the registry forgets a connection once it closes).
pub struct ConnectionLog {
    streams: Arc<Mutex<BTreeMap<u64, u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectionLog {
    pub fn watch(server: &TestServer) -> Self {
        let streams = Arc::new(Mutex::new(BTreeMap::<u64, u64>::new()));
        let registry = server.handle.connections.clone();
        let record = streams.clone();
        let task = tokio::spawn(async move {
            loop {
                for summary in registry.summaries() {
                    let mut streams = record.lock().unwrap();
                    let count = streams.entry(summary.id.0).or_default();
                    *count = (*count).max(summary.streams_opened);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self { streams, task }
    }

    /// Streams opened on each connection seen so far, oldest connection first.
    pub fn streams_per_connection(&self) -> Vec<u64> {
        self.streams.lock().unwrap().values().copied().collect()
    }
}

impl Drop for ConnectionLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}
