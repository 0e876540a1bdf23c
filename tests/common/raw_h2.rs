//! HTTP/2 written by hand, for clients that misbehave below what any gRPC library allows:
//! frames built byte by byte (rapid resets, trickled prefaces, huge windows), a frame reader,
//! and gRPC calls through the `h2` client whose bodies are arbitrary bytes (broken length
//! prefixes, compression flags, unknown encodings).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
/// RST_STREAM CANCEL.
pub const CANCEL: u32 = 0x8;
/// GOAWAY's code for a peer generating excessive load.
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame: header and payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&length.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn settings(values: &[(u16, u32)]) -> Vec<u8> {
    let payload: Vec<u8> = values
        .iter()
        .flat_map(|(id, value)| [&id.to_be_bytes()[..], &value.to_be_bytes()[..]].concat())
        .collect();
    frame(SETTINGS, 0, 0, &payload)
}

pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// The preface and an empty SETTINGS frame: the client's half of the handshake.
pub fn handshake() -> Vec<u8> {
    [PREFACE, &settings(&[])].concat()
}

/// An HPACK integer with an `prefix_bits`-bit prefix, the first byte's other bits set to `flags`.
fn hpack_int(out: &mut Vec<u8>, flags: u8, prefix_bits: u8, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

fn hpack_string(out: &mut Vec<u8>, text: &[u8]) {
    hpack_int(out, 0, 7, text.len());
    out.extend_from_slice(text);
}

/// The header block of a gRPC request to `path`, plus `extra` headers, without Huffman coding
/// or indexing (so every block stands alone, whatever the server's table holds).
pub fn request_block(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http (static table 3 and 6)
    hpack_int(&mut block, 0, 4, 4); // :path, literal value
    hpack_string(&mut block, path.as_bytes());
    hpack_int(&mut block, 0, 4, 1); // :authority
    hpack_string(&mut block, b"localhost");
    hpack_int(&mut block, 0, 4, 31); // content-type
    hpack_string(&mut block, b"application/grpc");
    for (name, value) in [("te", "trailers")].iter().chain(extra) {
        block.push(0);
        hpack_string(&mut block, name.as_bytes());
        hpack_string(&mut block, value.as_bytes());
    }
    block
}

/// A gRPC message: the 5-byte prefix (uncompressed) and `payload`.
pub fn grpc_message(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `SubscribeRequest { topics: ["a"] }` in protobuf.
pub const SUBSCRIBE_REQUEST: &[u8] = &[0x0a, 0x01, b'a'];

/// HEADERS and a DATA frame with one request message, half-closing the stream.
pub fn request(stream: u32, path: &str, message: &[u8]) -> Vec<u8> {
    [
        frame(HEADERS, END_HEADERS, stream, &request_block(path, &[])),
        frame(DATA, END_STREAM, stream, &grpc_message(message)),
    ]
    .concat()
}

/// A frame the server sent.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A GOAWAY's error code.
    pub fn goaway_code(&self) -> Option<u32> {
        (self.kind == GOAWAY && self.payload.len() >= 8)
            .then(|| u32::from_be_bytes(self.payload[4..8].try_into().unwrap()))
    }
}

/// The next frame, or `None` when the connection ends (EOF, reset).
pub async fn read_frame(reader: &mut (impl AsyncRead + Unpin)) -> Option<Frame> {
    let mut header = [0u8; 9];
    reader.read_exact(&mut header).await.ok()?;
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let mut payload = vec![0; length];
    reader.read_exact(&mut payload).await.ok()?;
    let stream = u32::from_be_bytes(header[5..9].try_into().unwrap()) & 0x7fff_ffff;
    Some(Frame { kind: header[3], flags: header[4], stream, payload })
}

/// Waits up to `limit` for the server to close `socket` (EOF or reset), discarding whatever it
/// sends; returns how long it took, `None` when it is still open.
pub async fn closed_within(socket: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = tokio::time::Instant::now();
    let mut sink = [0u8; 4096];
    let drain = async {
        loop {
            match socket.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, drain).await.ok().map(|()| started.elapsed())
}

/// What the server answered to a call made with [`h2_call`].
#[derive(Debug)]
pub struct RawReply {
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    pub trailers: Option<http::HeaderMap>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.trailers
            .as_ref()
            .and_then(|t| t.get(name))
            .or(self.headers.get(name))
            .and_then(|v| v.to_str().ok())
    }

    /// `grpc-status`, from the trailers or a trailers-only response.
    pub fn code(&self) -> tonic::Code {
        let status = self.header("grpc-status").unwrap_or_else(|| panic!("no grpc-status in {self:?}"));
        tonic::Code::from_i32(status.parse().expect("a numeric grpc-status"))
    }

    pub fn message(&self) -> String {
        self.header("grpc-message").unwrap_or_default().to_owned()
    }
}

/// A gRPC call over a fresh `h2` connection whose request body is exactly `body`. With
/// `end_stream` false the request stays open while the answer is read.
pub async fn h2_call(
    addr: SocketAddr,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: Vec<u8>,
    end_stream: bool,
) -> RawReply {
    let socket = TcpStream::connect(addr).await.expect("the server accepts");
    let (client, connection) = h2::client::handshake(socket).await.expect("the HTTP/2 handshake succeeds");
    let connection = tokio::spawn(connection);
    let mut request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in extra_headers {
        request = request.header(*name, *value);
    }
    let mut client = client.ready().await.expect("the connection takes a stream");
    let (response, mut send) =
        client.send_request(request.body(()).unwrap(), false).expect("the request is sent");
    send.send_data(Bytes::from(body), end_stream).expect("the body is sent");
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("the server answers within 10 s")
        .expect("the server answers the request");
    let (parts, mut received) = response.into_parts();
    let mut body = Vec::new();
    while let Some(chunk) = received.data().await {
        let chunk = chunk.expect("the response body arrives");
        let _ = received.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    let trailers = received.trailers().await.expect("the trailers arrive");
    drop(send);
    connection.abort();
    RawReply { headers: parts.headers, body, trailers }
}
