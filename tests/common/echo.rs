//! A responder for interop tests whose answers depend on the requests, so that a real client's
//! view of them proves both directions of the codec: every field kind of the proto3 JSON
//! mapping appears in some answer.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde_json::{Value, json};
use streamstorm::proto::json::{DefaultFields, FieldNames, message_from_json, message_to_json};
use streamstorm::proto::{CallKind, OutboundMessage};
use streamstorm::server::{BoundServer, Call, OutboundStream, Responder, ServerSettings};
use tonic::Status;

use super::TestServer;

/// The answer to `GetUser` for `user_id` — the expectation interop tests compare against.
pub fn expected_user(user_id: &str) -> Value {
    json!({
        "user_id": user_id,
        "name": format!("User {user_id}"),
        "roles": ["admin", "dev"],
        "labels": {"team": "core"},
        "created_at": "2024-01-01T12:00:00Z",
        "session_ttl": "90s",
        "login_count": "9007199254740993",
        "avatar": "AAEC/w==",
        "email": format!("{user_id}@example.com"),
        "address": {"city": "Oslo"},
        "state": "USER_STATE_ACTIVE"
    })
}

pub struct EchoResponder;

fn to_json(message: &DynamicMessage) -> Value {
    message_to_json(message, FieldNames::Proto, DefaultFields::Include).expect("requests have a JSON form")
}

fn reply(output: &MessageDescriptor, value: Value) -> Result<OutboundMessage, Status> {
    message_from_json(output, &value)
        .map(OutboundMessage::Dynamic)
        .map_err(|e| Status::internal(e.to_string()))
}

impl Responder for EchoResponder {
    fn respond(&self, mut call: Call) -> BoxFuture<'static, Result<tonic::Response<OutboundStream>, Status>> {
        async move {
            let output = call.method.output();
            let stream: OutboundStream = match call.method.kind {
                CallKind::Unary => {
                    let request = to_json(&call.inbound.single().await?);
                    let user_id = request["user_id"].as_str().unwrap_or_default();
                    Box::pin(futures::stream::iter([reply(&output, expected_user(user_id))]))
                }
                CallKind::ServerStreaming => {
                    let request = to_json(&call.inbound.single().await?);
                    let topics: Vec<Value> = request["topics"].as_array().cloned().unwrap_or_default();
                    let replies: Vec<_> = (0..3)
                        .map(|i| {
                            let topic = topics.get(i % topics.len().max(1)).cloned().unwrap_or(json!("none"));
                            reply(&output, json!({"topic": topic, "message": format!("n{i}"), "sequence": i,
                                "severity": "WARNING", "timestamp": "2024-01-01T12:00:00Z"}))
                        })
                        .collect();
                    Box::pin(futures::stream::iter(replies))
                }
                CallKind::ClientStreaming => {
                    let (mut count, mut total, mut finished) = (0, 0, false);
                    while let Some(chunk) = call.inbound.next().await? {
                        let chunk = to_json(&chunk);
                        count += 1;
                        total += base64_len(chunk["data"].as_str().unwrap_or_default());
                        finished |= chunk["is_last"] == json!(true);
                    }
                    let status = if finished { "SUCCESS" } else { "PARTIAL" };
                    let response = json!({"file_id": format!("f-{count}"), "total_size": total.to_string(), "status": status});
                    Box::pin(futures::stream::iter([reply(&output, response)]))
                }
                CallKind::BidiStreaming => {
                    Box::pin(futures::stream::try_unfold(call.inbound, move |mut inbound| {
                        let output = output.clone();
                        async move {
                            let Some(message) = inbound.next().await? else { return Ok(None) };
                            let message = to_json(&message);
                            let content = format!("echo: {}", message["content"].as_str().unwrap_or_default());
                            let answer = reply(&output, json!({"user_id": "echo", "content": content, "type": "SYSTEM"}))?;
                            Ok(Some((answer, inbound)))
                        }
                    }))
                }
            };
            Ok(tonic::Response::new(stream))
        }
        .boxed()
    }
}

fn base64_len(encoded: &str) -> usize {
    let padding = encoded.bytes().rev().take_while(|&b| b == b'=').count();
    encoded.len() / 4 * 3 - padding
}

impl TestServer {
    /// The example protos served by [`EchoResponder`].
    pub async fn start_echo() -> Self {
        let pool: DescriptorPool = super::example_pool();
        let settings = ServerSettings { listen: "127.0.0.1:0".parse().unwrap(), ..ServerSettings::default() };
        let server = BoundServer::bind_with(&mut pool.clone(), settings, Arc::new(EchoResponder))
            .await
            .expect("the server binds");
        Self::from_bound(server, pool)
    }
}
