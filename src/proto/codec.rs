//! The tonic [`Codec`] through which dynamic messages travel: protobuf bytes are decoded into a
//! [`DynamicMessage`] of a descriptor chosen per call, and outbound messages are either dynamic
//! or already encoded (a response computed once at load and sent many times). A [`WireMeter`]
//! sees every message's encoded size as it crosses the codec.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// The length prefix before each gRPC message on the wire: compression flag, big-endian length.
pub const PREFIX_LEN: usize = 5;

/// Initial size of each stream's encode and decode buffers. tonic keeps a stream's buffer
/// allocated for the stream's whole life (after a message is split off, the rest of the
/// allocation stays referenced), so this is memory every idle stream holds: tonic's default
/// (8 KiB each way), and even 1 KiB, dominated an idle stream's cost. Each message reserves
/// its own encoded length (see [`DynamicEncoder`]), so a small start costs at most one
/// allocation per message, not a cascade of regrowths.
pub const STREAM_BUFFER_BYTES: usize = 64;
/// Encoded bytes gathered before the body yields a frame to HTTP/2 (tonic's default).
pub const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

/// A message on its way out: built per call, or encoded ahead of time.
#[derive(Debug, Clone)]
pub enum OutboundMessage {
    Dynamic(DynamicMessage),
    Encoded(Bytes),
}

impl OutboundMessage {
    /// Size of the message on the wire, without the gRPC frame header.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Dynamic(message) => message.encoded_len(),
            Self::Encoded(bytes) => bytes.len(),
        }
    }
}

impl From<DynamicMessage> for OutboundMessage {
    fn from(message: DynamicMessage) -> Self {
        Self::Dynamic(message)
    }
}

/// Observes the messages a codec encodes and decodes (their size without the frame header).
pub trait WireMeter: Send + Sync {
    fn sent(&self, bytes: usize);
    fn received(&self, bytes: usize);
}

/// Encodes [`OutboundMessage`]s and decodes inbound bytes as `decode_as`.
#[derive(Clone)]
pub struct DynamicCodec {
    decode_as: MessageDescriptor,
    malformed: tonic::Code,
    buffer_bytes: usize,
    meter: Option<Arc<dyn WireMeter>>,
}

impl std::fmt::Debug for DynamicCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicCodec").field("decode_as", &self.decode_as.full_name()).finish_non_exhaustive()
    }
}

impl DynamicCodec {
    /// The server side: requests that do not parse are the client's fault (`INVALID_ARGUMENT`).
    pub fn for_server(request_type: MessageDescriptor) -> Self {
        Self {
            decode_as: request_type,
            malformed: tonic::Code::InvalidArgument,
            buffer_bytes: STREAM_BUFFER_BYTES,
            meter: None,
        }
    }

    /// The client side: responses that do not parse are a server fault (`INTERNAL`).
    pub fn for_client(response_type: MessageDescriptor) -> Self {
        Self {
            decode_as: response_type,
            malformed: tonic::Code::Internal,
            buffer_bytes: STREAM_BUFFER_BYTES,
            meter: None,
        }
    }

    /// Sets the initial size of the stream's buffers (they still grow to fit larger messages).
    pub fn with_buffer_size(mut self, bytes: Option<usize>) -> Self {
        self.buffer_bytes = bytes.unwrap_or(STREAM_BUFFER_BYTES).max(64);
        self
    }

    /// Reports every message encoded or decoded to `meter`.
    pub fn with_meter(mut self, meter: Arc<dyn WireMeter>) -> Self {
        self.meter = Some(meter);
        self
    }
}

impl Codec for DynamicCodec {
    type Encode = OutboundMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder {
            buffer: BufferSettings::new(self.buffer_bytes, YIELD_THRESHOLD_BYTES),
            meter: self.meter.clone(),
        }
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder {
            decode_as: self.decode_as.clone(),
            malformed: self.malformed,
            buffer: BufferSettings::new(self.buffer_bytes, YIELD_THRESHOLD_BYTES),
            meter: self.meter.clone(),
        }
    }
}

pub struct DynamicEncoder {
    buffer: BufferSettings,
    meter: Option<Arc<dyn WireMeter>>,
}

impl Encoder for DynamicEncoder {
    type Item = OutboundMessage;
    type Error = Status;

    fn encode(&mut self, item: OutboundMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        let room_before = dst.remaining_mut();
        match item {
            OutboundMessage::Dynamic(message) => {
                // One allocation of the right size instead of regrowing from the small initial
                // buffer; `encode_raw` then skips `encode`'s second length computation.
                dst.reserve(message.encoded_len());
                message.encode_raw(dst);
            }
            OutboundMessage::Encoded(bytes) => dst.put_slice(&bytes),
        }
        if let Some(meter) = &self.meter {
            meter.sent(room_before - dst.remaining_mut());
        }
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.buffer
    }
}

pub struct DynamicDecoder {
    decode_as: MessageDescriptor,
    malformed: tonic::Code,
    buffer: BufferSettings,
    meter: Option<Arc<dyn WireMeter>>,
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        if let Some(meter) = &self.meter {
            meter.received(src.remaining());
        }
        let bytes = src.copy_to_bytes(src.remaining());
        DynamicMessage::decode(self.decode_as.clone(), bytes).map(Some).map_err(|error| {
            Status::new(
                self.malformed,
                format!("message is not a valid {}: {error}", self.decode_as.full_name()),
            )
        })
    }
    fn buffer_settings(&self) -> BufferSettings {
        self.buffer
    }
}
