//! The client's codec: requests are encoded like the server's outbound messages, replies are
//! kept as bytes and decoded only when a scenario reads a field of them (sequence number,
//! timestamp), so counting and timing a reply costs no allocation of a dynamic message.

use bytes::{Buf, Bytes};
use prost_reflect::MessageDescriptor;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};

use crate::proto::codec::{DynamicEncoder, STREAM_BUFFER_BYTES, YIELD_THRESHOLD_BYTES};
use crate::proto::{DynamicCodec, OutboundMessage};

/// Encodes requests as [`DynamicCodec`] does; decodes replies to their raw bytes.
#[derive(Debug, Clone)]
pub struct ReplyCodec {
    requests: DynamicCodec,
}

impl ReplyCodec {
    pub fn new(response_type: MessageDescriptor) -> Self {
        Self { requests: DynamicCodec::for_client(response_type) }
    }
}

impl Codec for ReplyCodec {
    type Encode = OutboundMessage;
    type Decode = Bytes;
    type Encoder = DynamicEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        self.requests.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

/// Hands each reply over as its encoded bytes.
#[derive(Debug)]
pub struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }

    fn buffer_settings(&self) -> BufferSettings {
        // tonic holds this buffer for the stream's life: small, so idle streams stay cheap.
        BufferSettings::new(STREAM_BUFFER_BYTES, YIELD_THRESHOLD_BYTES)
    }
}
