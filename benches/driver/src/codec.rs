//! A codec for loads that measure a server's rate rather than its content: requests are
//! encoded with prost as usual, but each response message is only counted — its bytes are
//! skipped, not decoded — so the client spends as little as gRPC framing allows per message
//! and the server, not the instrument, sets the rate. The benchmarks check beforehand that
//! both servers send the same messages.

use std::marker::PhantomData;

use bytes::Buf;
use streamstorm_baseline::myapp::SubscribeRequest;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status, Streaming};
use tonic_prost::ProstEncoder;

/// Encodes `Request` with prost; decodes each response message to its length in bytes.
#[derive(Debug)]
pub struct FrameCounting<Request> {
    request: PhantomData<Request>,
}

impl<Request> Default for FrameCounting<Request> {
    fn default() -> Self {
        Self { request: PhantomData }
    }
}

impl<Request: prost::Message + Send + 'static> Codec for FrameCounting<Request> {
    type Encode = Request;
    type Decode = usize;
    type Encoder = ProstEncoder<Request>;
    type Decoder = FrameLength;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        FrameLength
    }
}

/// Skips a message's bytes and yields their count.
#[derive(Debug, Clone, Copy)]
pub struct FrameLength;

impl Decoder for FrameLength {
    type Item = usize;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<usize>, Status> {
        let length = buffer.remaining();
        buffer.advance(length);
        Ok(Some(length))
    }
}

/// `NotificationService/Subscribe`, with the notifications counted, not decoded.
pub async fn subscribe_counting(
    channel: Channel,
    request: SubscribeRequest,
) -> Result<Streaming<usize>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| Status::unavailable(format!("connection not ready: {error}")))?;
    let path = PathAndQuery::from_static("/myapp.NotificationService/Subscribe");
    let codec = FrameCounting::<SubscribeRequest>::default();
    Ok(grpc.server_streaming(Request::new(request), path, codec).await?.into_inner())
}
