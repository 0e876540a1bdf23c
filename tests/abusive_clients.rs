//! Abusive clients against a `streamstorm serve` process: malformed gRPC framing, oversized
//! messages, rapid-reset floods, idle and half-open connections, slowloris trickles, clients
//! that never read, unknown compressions and oversized metadata. Each runs beside a
//! well-behaved server stream that must receive every message, and the server must still be
//! alive and answering health checks afterwards.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::ServeProcess;
use common::raw_h2::{self, h2_call};
use common::scrape::{get, parse_samples, sum};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Messages the well-behaved Subscribe receives (one every 25 ms: about a second of traffic).
const CALM_MESSAGES: usize = 40;
const SUBSCRIBE: &str = "/myapp.NotificationService/Subscribe";
const GET_USER: &str = "/myapp.UserService/GetUser";
const UPLOAD: &str = "/myapp.UploadService/UploadFile";
/// The server's default handshake and frame timeouts, which these tests rely on.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `serve` with bare default messages: these tests count bytes and frames, not content.
async fn serve(extra: &[&str]) -> ServeProcess {
    let protos = common::repo_root().join("protos");
    let args = [
        &[
            "--protos",
            common::path_str(&protos),
            "--default-response",
            "empty",
            "--default-stream-messages",
            "40",
        ][..],
        extra,
    ]
    .concat();
    common::spawn_serve_process(&[&args[..], &["--default-stream-interval", "25ms"]].concat(), &[]).await
}

/// A well-behaved Subscribe on its own connection: how many messages it got, and its status.
fn calm_subscriber(addr: SocketAddr) -> tokio::task::JoinHandle<(usize, Code)> {
    tokio::spawn(async move {
        let pool = common::example_pool();
        let request = common::json_message(&pool, "myapp.SubscribeRequest", json!({"topics": ["calm"]}));
        let outcome = common::call(common::connect(addr).await, &pool, &SUBSCRIBE[1..], vec![request]).await;
        (outcome.responses.len(), outcome.status.code())
    })
}

/// The calm subscriber got all `expected` messages, the process is alive, and a new connection
/// gets `SERVING` from health and an answer from a unary call.
async fn assert_still_serving(
    server: &mut ServeProcess,
    calm: tokio::task::JoinHandle<(usize, Code)>,
    expected: usize,
) {
    let (received, code) =
        tokio::time::timeout(Duration::from_secs(60), calm).await.expect("the calm stream ends").unwrap();
    assert_eq!((received, code), (expected, Code::Ok), "the well-behaved stream completes untouched");
    assert!(server.child.try_wait().unwrap().is_none(), "the server process is alive");
    let check = async {
        let mut health = HealthClient::new(common::connect(server.addr).await);
        health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner().status
    };
    let status = tokio::time::timeout(Duration::from_secs(10), check).await.expect("health answers");
    assert_eq!(status, ServingStatus::Serving as i32);
    let pool = common::example_pool();
    let request = common::json_message(&pool, "myapp.GetUserRequest", json!({"user_id": "after"}));
    let outcome =
        common::call(common::connect(server.addr).await, &pool, &GET_USER[1..], vec![request]).await;
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
}

async fn metric(server: &ServeProcess, name: &str, labels: &[(&str, &str)]) -> f64 {
    sum(&parse_samples(&get(server.metrics, "/metrics").await), name, labels)
}

/// User plus system CPU time the process has used.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("procfs is readable");
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn message_with_prefix(flag: u8, length: u32, payload: &[u8]) -> Vec<u8> {
    [&[flag][..], &length.to_be_bytes(), payload].concat()
}

#[tokio::test]
async fn malformed_grpc_framing_gets_a_status_per_call() {
    let mut server = serve(&[]).await;
    let calm = calm_subscriber(server.addr);
    let user = [0x0a, 0x01, b'u'];
    let cases = [
        ("compressed flag without grpc-encoding", message_with_prefix(1, 3, &user), Code::Internal),
        ("a compression flag that does not exist", message_with_prefix(7, 3, &user), Code::Internal),
        ("a length prefix beyond the data", message_with_prefix(0, 100, &user), Code::Internal),
        ("a truncated 5-byte prefix", vec![0, 0, 0], Code::Internal),
        ("bytes that are not protobuf", raw_h2::grpc_message(&[0xff; 8]), Code::InvalidArgument),
    ];
    for path in [GET_USER, SUBSCRIBE] {
        for (case, body, expected) in &cases {
            let reply = h2_call(server.addr, path, &[], body.clone(), true).await;
            assert_eq!(reply.code(), *expected, "{path}, {case}: {}", reply.message());
        }
    }
    // Bidi: the first message is answered, the broken second one ends the call.
    let body = [raw_h2::grpc_message(&[]), message_with_prefix(0, 9, &[0x0a])].concat();
    let reply = h2_call(server.addr, "/myapp.ChatService/Chat", &[], body, true).await;
    assert_eq!(reply.code(), Code::Internal, "{}", reply.message());
    assert_eq!(reply.body, raw_h2::grpc_message(&[]), "the valid first message was answered");
    assert_still_serving(&mut server, calm, CALM_MESSAGES).await;
}

#[tokio::test]
async fn messages_over_the_size_limit_are_refused_without_allocating_them() {
    let mut server = serve(&["--max-message-size", "65536"]).await;
    let calm = calm_subscriber(server.addr);
    let pool = common::example_pool();
    let call_with = |user_id: String| {
        let request = common::json_message(&pool, "myapp.GetUserRequest", json!({ "user_id": user_id }));
        let channel = server.addr;
        let pool = pool.clone();
        async move { common::call(common::connect(channel).await, &pool, &GET_USER[1..], vec![request]).await }
    };
    let over = call_with("x".repeat(100 * 1024)).await;
    assert_eq!(over.status.code(), Code::ResourceExhausted, "{:?}", over.status);
    let under = call_with("x".repeat(60 * 1024)).await;
    assert_eq!(under.status.code(), Code::Ok, "{:?}", under.status);

    // Prefixes claiming 4 GiB, with a little data and the request left open, on 50 streams.
    let pid = server.child.id().unwrap();
    let before = common::resident_bytes(pid);
    let claims: Vec<_> = (0..50)
        .map(|_| {
            let body = message_with_prefix(0, u32::MAX, &[0; 1024]);
            tokio::spawn(h2_call(server.addr, GET_USER, &[], body, false))
        })
        .collect();
    for claim in claims {
        let reply = claim.await.unwrap();
        assert_eq!(reply.code(), Code::ResourceExhausted, "{}", reply.message());
    }
    let grown = common::resident_bytes(pid).saturating_sub(before);
    eprintln!("resident memory after 50 claims of 4 GiB: +{} KiB", grown / 1024);
    assert!(grown < 64 << 20, "the server grew by {grown} bytes");
    assert_still_serving(&mut server, calm, CALM_MESSAGES).await;
}

/// What became of a flood written on a connection of its own.
struct Flooded {
    /// The server closed the connection within 30 s.
    ended: bool,
    /// The code of the GOAWAY it sent, if any.
    goaway: Option<u32>,
    /// Whether all of the flood was written before the server closed the connection.
    wrote_everything: bool,
}

/// Writes `flood` on a new connection to `addr` while reading what the server sends back.
async fn flood_one_connection(addr: SocketAddr, flood: Vec<u8>) -> Flooded {
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    // The server may close the connection before all of it is written.
    let writing = tokio::spawn(async move { writer.write_all(&flood).await.is_ok() });
    let mut goaway = None;
    let read_all = async {
        while let Some(frame) = raw_h2::read_frame(&mut reader).await {
            goaway = goaway.or(frame.goaway_code());
        }
    };
    let ended = tokio::time::timeout(Duration::from_secs(30), read_all).await.is_ok();
    Flooded { ended, goaway, wrote_everything: writing.await.unwrap() }
}

#[tokio::test]
async fn a_rapid_reset_flood_is_cut_off_and_others_are_unaffected() {
    const RESETS: u32 = 20_000;
    let mut server = serve(&[]).await;
    let pid = server.child.id().unwrap();
    let calm = calm_subscriber(server.addr);
    let (cpu_before, memory_before) = (cpu_time(pid), common::resident_bytes(pid));
    let block = raw_h2::request_block(SUBSCRIBE, &[]);
    let mut flood = raw_h2::handshake();
    for stream in (0..RESETS).map(|i| 2 * i + 1) {
        flood.extend(raw_h2::frame(raw_h2::HEADERS, raw_h2::END_HEADERS, stream, &block));
        flood.extend(raw_h2::rst_stream(stream, raw_h2::CANCEL));
    }
    let started = Instant::now();
    let Flooded { ended, goaway, wrote_everything } = flood_one_connection(server.addr, flood).await;
    let took = started.elapsed();
    let handled = metric(&server, "streamstorm_streams_started_total", &[("method", "Subscribe")]).await;
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    let grown = common::resident_bytes(pid).saturating_sub(memory_before);
    eprintln!(
        "rapid reset: GOAWAY {goaway:?} after {took:?}, flood written whole: {wrote_everything}, \
         streams handled {handled}, server CPU {cpu:?}, resident +{} KiB",
        grown / 1024
    );
    assert!(ended, "the server closes the flooding connection");
    assert_eq!(goaway, Some(raw_h2::ENHANCE_YOUR_CALM), "GOAWAY ENHANCE_YOUR_CALM");
    // Bounded work: most reset streams never reach a handler (the calm subscriber is one).
    assert!(handled < f64::from(RESETS) / 10.0, "{handled} streams were handled");
    assert!(cpu < Duration::from_secs(20), "the flood cost {cpu:?} of CPU");
    assert!(grown < 64 << 20, "the server grew by {grown} bytes");
    assert_still_serving(&mut server, calm, CALM_MESSAGES).await;
}

/// A flood of one-byte DATA frames, faster than any handler reads them, is cut off by h2's
/// budget for small unread frames. The connection window that sizes the budget holds one such
/// frame per stream a connection may open (so opening bursts fit, see `Http2Settings::
/// connection_window`); with 100 streams allowed it is the 2 MiB floor, about 4,100 frames.
#[tokio::test]
async fn a_flood_of_tiny_data_frames_is_cut_off_and_others_are_unaffected() {
    const FRAMES: u32 = 200_000;
    let mut server = serve(&["--max-concurrent-streams", "100"]).await;
    let pid = server.child.id().unwrap();
    let calm = calm_subscriber(server.addr);
    let memory_before = common::resident_bytes(pid);
    // One upload stream: a message prefix claiming 1 MB, then its bytes one frame each.
    let mut flood = raw_h2::handshake();
    flood.extend(raw_h2::frame(raw_h2::HEADERS, raw_h2::END_HEADERS, 1, &raw_h2::request_block(UPLOAD, &[])));
    flood.extend(raw_h2::frame(raw_h2::DATA, 0, 1, &[0, 0, 0x0f, 0x42, 0x40]));
    for _ in 0..FRAMES {
        flood.extend(raw_h2::frame(raw_h2::DATA, 0, 1, &[0]));
    }
    let Flooded { ended, goaway, wrote_everything } = flood_one_connection(server.addr, flood).await;
    let grown = common::resident_bytes(pid).saturating_sub(memory_before);
    eprintln!(
        "DATA flood: GOAWAY {goaway:?}, flood written whole: {wrote_everything}, resident +{} KiB",
        grown / 1024
    );
    assert!(ended, "the server closes the flooding connection");
    assert_eq!(goaway, Some(raw_h2::ENHANCE_YOUR_CALM), "GOAWAY ENHANCE_YOUR_CALM");
    assert!(grown < 64 << 20, "the server grew by {grown} bytes");
    assert_still_serving(&mut server, calm, CALM_MESSAGES).await;
}

#[tokio::test]
async fn idle_connections_are_held_or_timed_out_without_starving_others() {
    const SILENT: usize = 2_000;
    const IDLE_HTTP2: usize = 100;
    let mut server = serve(&[]).await;
    let opened = Instant::now();
    let mut silent = Vec::with_capacity(SILENT);
    for _ in 0..SILENT {
        silent.push(TcpStream::connect(server.addr).await.expect("the server accepts"));
    }
    let mut idle = Vec::with_capacity(IDLE_HTTP2);
    for _ in 0..IDLE_HTTP2 {
        idle.push(common::connect(server.addr).await);
    }
    let calm = calm_subscriber(server.addr);
    assert_still_serving(&mut server, calm, CALM_MESSAGES).await;

    // Connections that never send the preface are closed once the handshake timeout passes.
    let closings: Vec<_> = silent
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move { raw_h2::closed_within(&mut socket, HANDSHAKE_TIMEOUT * 3).await })
        })
        .collect();
    let mut still_open = 0;
    for closing in closings {
        still_open += usize::from(closing.await.unwrap().is_none());
    }
    let took = opened.elapsed();
    eprintln!("{SILENT} silent connections: {still_open} still open after {took:?}");
    assert_eq!(still_open, 0, "connections without a handshake are closed");
    assert!(took >= HANDSHAKE_TIMEOUT, "closed after the timeout, not before ({took:?})");
    let timed_out =
        metric(&server, "streamstorm_connections_closed_total", &[("reason", "handshake_timeout")]).await;
    assert_eq!(timed_out, SILENT as f64);

    // Connections that completed the handshake are still there and usable.
    for channel in idle.iter().step_by(10) {
        let mut health = HealthClient::new(channel.clone());
        let status = health.check(HealthCheckRequest { service: String::new() }).await.unwrap();
        assert_eq!(status.into_inner().status, ServingStatus::Serving as i32);
    }
    let calm = calm_subscriber(server.addr);
    assert_still_serving(&mut server, calm, CALM_MESSAGES).await;
}

/// Writes `pieces` one at a time, `gap` apart, until done or the server closes; true when done.
async fn trickle(mut writer: tokio::net::tcp::OwnedWriteHalf, pieces: Vec<Vec<u8>>, gap: Duration) -> bool {
    for piece in pieces {
        if writer.write_all(&piece).await.is_err() {
            return false;
        }
        tokio::time::sleep(gap).await;
    }
    true
}

#[tokio::test]
async fn slowloris_trickles_are_closed_after_the_timeout() {
    let mut server = serve(&[]).await;
    let gap = Duration::from_millis(500);
    let block = raw_h2::request_block(SUBSCRIBE, &[]);
    // Each trickle would take far longer than the timeout to finish; the header block gets a
    // CONTINUATION every 3 s, too few for h2's own limit on them to end it first.
    let headers = raw_h2::frame(raw_h2::HEADERS, raw_h2::END_HEADERS, 1, &block);
    let open_block = raw_h2::frame(raw_h2::HEADERS, 0, 1, &block[..4]);
    let continuations =
        block[4..].iter().map(|byte| raw_h2::frame(raw_h2::CONTINUATION, 0, 1, &[*byte])).collect();
    let bytes = |frames: Vec<u8>| -> Vec<Vec<u8>> { frames.into_iter().map(|byte| vec![byte]).collect() };
    let attacks = [
        ("the preface", Vec::new(), bytes(raw_h2::handshake()), gap),
        ("a HEADERS frame", raw_h2::handshake(), bytes(headers), gap),
        (
            "a header block in CONTINUATION frames",
            [raw_h2::handshake(), open_block].concat(),
            continuations,
            gap * 6,
        ),
    ];
    let mut running = Vec::new();
    for (name, at_once, trickled, gap) in attacks {
        let (mut reader, mut writer) = TcpStream::connect(server.addr).await.unwrap().into_split();
        writer.write_all(&at_once).await.unwrap();
        let trickling = tokio::spawn(trickle(writer, trickled, gap));
        running.push(tokio::spawn(async move {
            let started = Instant::now();
            let drained = async { while raw_h2::read_frame(&mut reader).await.is_some() {} };
            let closed = tokio::time::timeout(HANDSHAKE_TIMEOUT * 3, drained).await.is_ok();
            (name, closed, started.elapsed(), trickling.await.unwrap())
        }));
    }
    let calm = calm_subscriber(server.addr);
    assert_still_serving(&mut server, calm, CALM_MESSAGES).await;
    for attack in running {
        let (name, closed, took, finished) = attack.await.unwrap();
        eprintln!("slowloris on {name}: closed {closed} after {took:?}");
        assert!(closed && !finished, "the server closes a connection trickling {name}");
        assert!(took >= HANDSHAKE_TIMEOUT / 2, "{name}: closed after {took:?}, before any timeout");
    }
    // The guard closed all three (h2's own CONTINUATION limit would need more frames).
    let closed = "streamstorm_connections_closed_total";
    let handshake = metric(&server, closed, &[("reason", "handshake_timeout")]).await;
    let frame = metric(&server, closed, &[("reason", "frame_timeout")]).await;
    assert_eq!((handshake, frame), (1.0, 2.0), "connections closed by handshake and frame timeouts");
    let calm = calm_subscriber(server.addr);
    assert_still_serving(&mut server, calm, CALM_MESSAGES).await;
}

/// Large messages the stub streams to clients that never read them.
const LARGE_MESSAGE: usize = 32 * 1024;
const LARGE_MESSAGES: usize = 24;
/// The server's default per-stream send buffer (what it holds for a peer that does not read).
const SEND_BUFFER: usize = 64 * 1024;

/// A stub answering Subscribe with [`LARGE_MESSAGES`] messages of [`LARGE_MESSAGE`] bytes.
fn large_stream_stub(dir: &std::path::Path) -> std::path::PathBuf {
    let text = "x".repeat(LARGE_MESSAGE);
    let element = format!("      - {{ topic: big, message: \"{text}\" }}\n");
    let stub = format!(
        "- service: myapp.NotificationService\n  method: Subscribe\n  output:\n    stream:\n{}",
        element.repeat(LARGE_MESSAGES)
    );
    let path = dir.join("large.yaml");
    std::fs::write(&path, stub).unwrap();
    path
}

#[tokio::test]
async fn clients_that_never_read_are_held_by_back_pressure() {
    const STREAMS: u32 = 200;
    let dir = tempfile::tempdir().unwrap();
    let stubs = large_stream_stub(dir.path());
    let mut server = serve(&["--stubs", common::path_str(&stubs)]).await;
    let pid = server.child.id().unwrap();
    let before = common::resident_bytes(pid);
    let requests: Vec<u8> =
        (0..STREAMS).flat_map(|i| raw_h2::request(2 * i + 1, SUBSCRIBE, raw_h2::SUBSCRIBE_REQUEST)).collect();

    // One client grants windows of 2 GiB and never reads its socket.
    let mut deaf = TcpStream::connect(server.addr).await.unwrap();
    let huge = 0x7fff_ffff;
    let greedy = [
        raw_h2::PREFACE,
        &raw_h2::settings(&[(raw_h2::SETTINGS_INITIAL_WINDOW_SIZE, huge)]),
        &raw_h2::window_update(0, huge - 65_535),
        &requests,
    ]
    .concat();
    deaf.write_all(&greedy).await.unwrap();

    // Another reads every frame but never grants window beyond the initial 64 KiB.
    let (mut reader, mut writer) = TcpStream::connect(server.addr).await.unwrap().into_split();
    writer.write_all(&[raw_h2::handshake(), requests].concat()).await.unwrap();
    let stingy = tokio::spawn(async move {
        let mut data = 0;
        while let Some(frame) = raw_h2::read_frame(&mut reader).await {
            if frame.kind == raw_h2::DATA {
                data += frame.payload.len();
            }
        }
        data
    });

    // Let the server fill whatever it will buffer: resident memory stops growing.
    let mut peak = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = common::resident_bytes(pid);
        if now <= peak && peak > 0 {
            break;
        }
        peak = peak.max(now);
    }
    let calm = calm_subscriber(server.addr);
    let (received, code) = calm.await.unwrap();
    assert_eq!((received, code), (LARGE_MESSAGES, Code::Ok), "the well-behaved stream completes");
    let grown = peak.saturating_sub(before);
    let sent = metric(&server, "streamstorm_messages_sent_total", &[("method", "Subscribe")]).await;
    let streams = 2 * STREAMS as usize;
    let bound = streams * (SEND_BUFFER + 2 * LARGE_MESSAGE) + (16 << 20);
    eprintln!(
        "never-reading clients, {streams} streams of {} KiB: resident +{} KiB (bound {} KiB, \
         unbounded would be {} KiB); {sent} messages produced of {}",
        LARGE_MESSAGE * LARGE_MESSAGES / 1024,
        grown / 1024,
        bound / 1024,
        streams * LARGE_MESSAGE * LARGE_MESSAGES / 1024,
        streams * LARGE_MESSAGES
    );
    assert!(grown < bound as u64, "the server buffered {grown} bytes for clients that do not read");
    assert!(sent < (streams * LARGE_MESSAGES / 4) as f64, "producers were not held back: {sent} messages");
    drop(writer);
    drop(deaf);
    let data =
        tokio::time::timeout(Duration::from_secs(10), stingy).await.expect("the stingy client ends").unwrap();
    assert!(data <= 65_535, "the server sent {data} bytes of DATA past the connection window");
    let calm = calm_subscriber(server.addr);
    assert_still_serving(&mut server, calm, LARGE_MESSAGES).await;
}

#[tokio::test]
async fn unknown_compressions_are_refused_or_ignored_as_the_spec_says() {
    let mut server = serve(&[]).await;
    let calm = calm_subscriber(server.addr);
    let user = [0x0a, 0x01, b'u'];
    for (flag, what) in [(1, "compressed"), (0, "uncompressed")] {
        let body = message_with_prefix(flag, 3, &user);
        let reply = h2_call(server.addr, GET_USER, &[("grpc-encoding", "snappy")], body, true).await;
        assert_eq!(reply.code(), Code::Unimplemented, "{what} snappy: {}", reply.message());
        let accepted = reply.headers.get("grpc-accept-encoding").map(|v| v.to_str().unwrap().to_owned());
        let accepted = accepted.unwrap_or_else(|| panic!("no grpc-accept-encoding in {reply:?}"));
        let listed: Vec<&str> = accepted.split(',').map(str::trim).collect();
        assert!(listed.contains(&"gzip") && listed.contains(&"zstd"), "grpc-accept-encoding: {accepted}");
    }
    let request = raw_h2::grpc_message(raw_h2::SUBSCRIBE_REQUEST);
    for (offered, expected) in [("snappy, br, x-custom", None), ("snappy, gzip", Some("gzip"))] {
        let headers = [("grpc-accept-encoding", offered)];
        let reply = h2_call(server.addr, SUBSCRIBE, &headers, request.clone(), true).await;
        assert_eq!(reply.code(), Code::Ok, "offered {offered}: {}", reply.message());
        let used = reply.headers.get("grpc-encoding").map(|v| v.to_str().unwrap());
        assert_eq!(used.filter(|used| *used != "identity"), expected, "offered {offered}");
        assert_eq!(grpc_messages(&reply.body), CALM_MESSAGES, "offered {offered}");
    }
    assert_still_serving(&mut server, calm, CALM_MESSAGES).await;
}

/// How many length-prefixed messages `body` holds (it must hold whole ones).
fn grpc_messages(mut body: &[u8]) -> usize {
    let mut count = 0;
    while !body.is_empty() {
        let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        body = &body[5 + length..];
        count += 1;
    }
    count
}

#[tokio::test]
async fn oversized_metadata_is_refused_on_its_stream_only() {
    let mut server = serve(&[]).await;
    let calm = calm_subscriber(server.addr);
    let big = "v".repeat(32 * 1024);
    let block = raw_h2::request_block(SUBSCRIBE, &[("x-big", &big)]);
    // Frames may not exceed 16 KiB: the block goes out as HEADERS and CONTINUATIONs.
    let chunks: Vec<&[u8]> = block.chunks(16 * 1024).collect();
    let mut bytes = raw_h2::handshake();
    for (i, chunk) in chunks.iter().enumerate() {
        let kind = if i == 0 { raw_h2::HEADERS } else { raw_h2::CONTINUATION };
        let flags = if i + 1 == chunks.len() { raw_h2::END_HEADERS } else { 0 };
        bytes.extend(raw_h2::frame(kind, flags, 1, chunk));
    }
    bytes.extend(raw_h2::frame(
        raw_h2::DATA,
        raw_h2::END_STREAM,
        1,
        &raw_h2::grpc_message(raw_h2::SUBSCRIBE_REQUEST),
    ));
    bytes.extend(raw_h2::request(3, SUBSCRIBE, raw_h2::SUBSCRIBE_REQUEST));
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket.write_all(&bytes).await.unwrap();
    let (mut refused, mut answered, mut goaway) = (false, false, None);
    let read = async {
        while let Some(frame) = raw_h2::read_frame(&mut socket).await {
            goaway = goaway.or(frame.goaway_code());
            match (frame.stream, frame.kind) {
                (1, raw_h2::RST_STREAM) => refused = true,
                (1, raw_h2::HEADERS) if frame.flags & raw_h2::END_STREAM != 0 => refused = true,
                (1, raw_h2::DATA) => panic!("the oversized request was served"),
                (3, raw_h2::DATA) => answered = true,
                _ => {}
            }
            if refused && answered {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("the server answers both streams");
    assert!(
        refused && answered && goaway.is_none(),
        "refused {refused}, answered {answered}, GOAWAY {goaway:?}"
    );
    assert_still_serving(&mut server, calm, CALM_MESSAGES).await;
}

#[tokio::test]
async fn the_profile_sets_the_handshake_and_frame_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let limits = "  limits: { handshake_timeout: 1s, frame_timeout: 1s, max_connections: 50 }\n";
    let profile = common::write_profile(dir.path(), limits);
    let args = ["--profile", common::path_str(&profile), "--default-response", "empty"];
    let streams = ["--default-stream-messages", "40", "--default-stream-interval", "25ms"];
    let mut server = common::spawn_serve_process(&[&args[..], &streams[..]].concat(), &[]).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(&[raw_h2::handshake(), vec![0, 0, 8]].concat()).await.unwrap();
    let opened = Instant::now();
    for (name, socket) in [("silent", &mut silent), ("stalled mid-frame", &mut stalled)] {
        let closed = raw_h2::closed_within(socket, Duration::from_secs(8)).await.map(|_| opened.elapsed());
        eprintln!("{name} connection closed {closed:?} after it opened");
        let took = closed.unwrap_or_else(|| panic!("the {name} connection is still open"));
        assert!(took < Duration::from_secs(8), "{name}: {took:?}, the default would be 10 s");
    }
    assert_eq!(
        metric(&server, "streamstorm_connections_closed_total", &[("reason", "handshake_timeout")]).await,
        1.0
    );
    assert_eq!(
        metric(&server, "streamstorm_connections_closed_total", &[("reason", "frame_timeout")]).await,
        1.0
    );
    let calm = calm_subscriber(server.addr);
    let (_, code) = calm.await.unwrap();
    assert_eq!(code, Code::Ok);
    assert!(server.child.try_wait().unwrap().is_none());
}

#[test]
fn defaults_bind_loopback_and_keep_every_limit_on() {
    use streamstorm::cli::ServeArgs;
    use streamstorm::server::ServerSettings;
    let settings = ServeArgs::default().settings(0, None).expect("the defaults are valid");
    assert!(settings.listen.ip().is_loopback(), "gRPC listens on {}", settings.listen);
    assert!(streamstorm::cli::DEFAULT_METRICS_LISTEN.ip().is_loopback());
    let profile =
        streamstorm::config::parse_profile(std::path::Path::new("p.yaml"), "metrics: {}\n").unwrap();
    assert!(!profile.metrics.admin_writable, "the admin endpoint is read-only unless enabled");
    let defaults = ServerSettings::default();
    assert_eq!(settings.max_message_bytes, 4 << 20);
    assert_eq!(settings.http2.max_concurrent_streams, defaults.http2.max_concurrent_streams);
    assert!(defaults.max_connections > 0 && defaults.max_connections <= 65_536);
    let http2 = &defaults.http2;
    assert_eq!(http2.handshake_timeout, HANDSHAKE_TIMEOUT);
    assert_eq!(http2.frame_timeout, HANDSHAKE_TIMEOUT);
    assert_eq!(http2.max_header_list_size, 16 * 1024);
    assert_eq!(http2.max_send_buffer, SEND_BUFFER);
    assert!(http2.max_pending_accept_reset_streams <= 100 && http2.max_local_error_reset_streams <= 1024);
    assert_eq!(streamstorm::template::OUTPUT_LIMIT, 64 * 1024);
    assert_eq!(streamstorm::script::parse::MAX_SCRIPT_BYTES, 8 << 20);
}

#[test]
fn a_script_over_the_entry_limit_is_refused_at_its_line() {
    use streamstorm::script::parse::MAX_SCRIPT_ENTRIES;
    let dir = tempfile::tempdir().unwrap();
    let bound = dir.path().join("myapp.NotificationService");
    std::fs::create_dir_all(&bound).unwrap();
    let script = bound.join("Subscribe.jsonl");
    let entry = "{\"ts\":0,\"dir\":\"out\",\"text\":\"{}\"}\n";
    std::fs::write(&script, format!("// a comment\n{}", entry.repeat(MAX_SCRIPT_ENTRIES + 5))).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args(["validate", common::path_str(&common::repo_root().join("protos/myapp"))])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected =
        format!("{}:{}:1: more than {MAX_SCRIPT_ENTRIES} entries", script.display(), MAX_SCRIPT_ENTRIES + 2);
    assert!(stderr.lines().any(|line| line.starts_with(&expected)), "no {expected:?} in {stderr}");
}
