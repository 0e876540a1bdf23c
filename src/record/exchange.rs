//! A recorded call decoded: its messages as JSON (proto field names, defaults left out, as a
//! person writes them) with their times, and its status with its details. Two exchanges are
//! the same when everything but the times is ([`Exchange::identity`]).

use std::sync::Arc;

use bytes::Bytes;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde_json::{Value as Json, json};
use tonic::{Code, Status};

use super::{CallEvent, CallLog};
use crate::proto::MethodEntry;
use crate::proto::codec::PREFIX_LEN;
use crate::proto::json::{DefaultFields, FieldNames, message_to_json};

/// A message and when it passed, in milliseconds since the call opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    pub at: u64,
    pub message: Json,
}

/// How the upstream ended the call.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedStatus {
    pub at: u64,
    pub code: Code,
    pub message: String,
    /// `grpc-status-details-bin`'s details, each JSON with its `@type`.
    pub details: Vec<Json>,
}

/// One recorded call, decoded.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: Arc<MethodEntry>,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub trailers: Vec<(String, String)>,
    pub requests: Vec<Timed>,
    pub responses: Vec<Timed>,
    /// Which side each message came from, in the order the proxy saw them (`true`: the
    /// client's): what a bidi script replays when two messages share a millisecond.
    pub sequence: Vec<bool>,
    pub status: RecordedStatus,
}

impl Exchange {
    /// Decodes `log` with its method's descriptors. Fails, saying why, for a compressed or
    /// undecodable message and for a call that did not end with a status.
    pub fn decode(log: CallLog) -> Result<Self, String> {
        let CallLog { method, request_headers, response_headers, events, .. } = log;
        let mut requests = Vec::new();
        let mut responses = Vec::new();
        let mut sequence = Vec::new();
        let mut end = None;
        for event in events {
            match event {
                CallEvent::Request { at, message } => {
                    requests.push(Timed { at, message: decode(&method.input(), &message)? });
                    sequence.push(true);
                }
                CallEvent::Response { at, message } => {
                    responses.push(Timed { at, message: decode(&method.output(), &message)? });
                    sequence.push(false);
                }
                CallEvent::End { at, trailers, kept } => end = Some((at, trailers, kept)),
            }
        }
        let (at, trailers, kept) = end.ok_or("the call did not end with a status")?;
        let status =
            Status::from_header_map(&trailers).ok_or("the upstream ended the call without a status")?;
        let details = match status.details() {
            [] => Vec::new(),
            encoded => details_json(&method, encoded)?,
        };
        Ok(Self {
            request_headers,
            response_headers,
            trailers: kept,
            requests,
            responses,
            sequence,
            status: RecordedStatus { at, code: status.code(), message: status.message().to_owned(), details },
            method,
        })
    }

    /// Everything but the times: equal for exchanges recorded once.
    pub fn identity(&self) -> String {
        let untimed =
            |messages: &[Timed]| messages.iter().map(|timed| timed.message.clone()).collect::<Vec<_>>();
        json!({
            "method": self.method.path,
            "request_headers": self.request_headers,
            "response_headers": self.response_headers,
            "trailers": self.trailers,
            "requests": untimed(&self.requests),
            "responses": untimed(&self.responses),
            "status": [self.status.code as i32, self.status.message, self.status.details],
        })
        .to_string()
    }
}

/// A framed message (prefix and payload) as JSON.
fn decode(descriptor: &MessageDescriptor, framed: &Bytes) -> Result<Json, String> {
    let name = descriptor.full_name();
    if framed.first().is_some_and(|flag| *flag != 0) {
        return Err(format!("a {name} came compressed; compressed calls are not recorded"));
    }
    let payload = framed.get(PREFIX_LEN..).unwrap_or_default();
    let message = DynamicMessage::decode(descriptor.clone(), payload)
        .map_err(|error| format!("a {name} does not decode: {error}"))?;
    message_to_json(&message, FieldNames::Proto, DefaultFields::Skip).map_err(|error| error.to_string())
}

/// The details of an encoded `google.rpc.Status`, each as JSON with its `@type`, decoded with
/// the method's protos and the `google.rpc` error model.
fn details_json(method: &MethodEntry, encoded: &[u8]) -> Result<Vec<Json>, String> {
    let mut pool = method.descriptor.parent_pool().clone();
    if pool.get_message_by_name("google.rpc.Status").is_none() {
        pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .or_else(|_| {
                DescriptorPool::decode(tonic_types::pb::FILE_DESCRIPTOR_SET).map(|model| pool = model)
            })
            .map_err(|error| format!("the google.rpc error model does not load: {error}"))?;
    }
    let status_type = pool.get_message_by_name("google.rpc.Status").ok_or("no google.rpc.Status")?;
    let status = DynamicMessage::decode(status_type, encoded)
        .map_err(|error| format!("grpc-status-details-bin is not a google.rpc.Status: {error}"))?;
    let json = message_to_json(&status, FieldNames::Proto, DefaultFields::Skip)
        .map_err(|error| format!("grpc-status-details-bin: {error}"))?;
    Ok(json.get("details").and_then(Json::as_array).cloned().unwrap_or_default())
}
