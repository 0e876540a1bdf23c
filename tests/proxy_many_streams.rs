//! 1,000 concurrent streams through `streamstorm proxy` under a quiet plan (rules that draw for
//! every stream and inject nothing): every message of every stream arrives unchanged and in
//! order, sequence numbers checked by grpcio (server streaming and bidi ping-pong) and grpc-js
//! (server streaming), all at once (3,000 streams), and every call reached the upstream exactly
//! once.

mod common;

use common::interop::Client;
use common::proxy::{Proxy, RelayLoad, Upstream, relay_check};

const STREAMS: usize = 1000;
const MESSAGES: usize = 10;

/// Present on every stream, injecting nothing.
const QUIET: &str = "  seed: 3
  rules:
    - abort: { rate: 0%, code: UNAVAILABLE }
      fail: { rate: 0%, after_messages: 1..10, code: INTERNAL }
      disconnect: { rate: 0%, after_messages: 1..10, mode: reset_stream }
";

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_concurrent_streams_keep_every_message_in_order() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&upstream.addr.to_string(), QUIET, &[]).await;
    let python = RelayLoad { calls: STREAMS, messages: MESSAGES, patterns: "server,bidi", channels: 2 };
    let node = RelayLoad { calls: STREAMS, messages: MESSAGES, patterns: "server", channels: 2 };
    let (python, node) = futures::future::join(
        relay_check(Client::Python, proxy.addr(), &python, &[]),
        relay_check(Client::Node, proxy.addr(), &node, &[]),
    )
    .await;
    python.assert_all_ok("1,000 streams");
    node.assert_all_ok("1,000 streams");
    for summary in python.patterns.values().chain(node.patterns.values()) {
        assert_eq!(summary.messages, STREAMS * MESSAGES, "{summary:?}");
    }
    assert_eq!(upstream.calls().len(), 3 * STREAMS, "calls the upstream saw");
    assert_eq!(proxy.metric("streamstorm_faults_injected_total", &[]).await, 0.0, "a quiet plan injected");
}
