//! Pieces the benches share: a responder that streams one message over and over, and the
//! realistic `myapp.Notification` it streams.

use futures::FutureExt;
use futures::future::BoxFuture;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::json;
use streamstorm::proto::OutboundMessage;
use streamstorm::proto::json::message_from_json;
use streamstorm::server::{Call, OutboundStream, Responder};

/// Answers every call with `count` copies of one message.
pub struct RepeatResponder {
    pub message: OutboundMessage,
    pub count: u64,
}

impl Responder for RepeatResponder {
    fn respond(
        &self,
        _call: Call,
    ) -> BoxFuture<'static, Result<tonic::Response<OutboundStream>, tonic::Status>> {
        let message = self.message.clone();
        let stream = futures::stream::iter((0..self.count).map(move |_| Ok(message.clone())));
        futures::future::ready(Ok(tonic::Response::new(Box::pin(stream) as OutboundStream))).boxed()
    }
}

/// A notification as a real service would send it: topic, text, timestamp, severity, sequence.
pub fn notification(pool: &DescriptorPool) -> DynamicMessage {
    let descriptor = pool.get_message_by_name("myapp.Notification").expect("Notification exists");
    message_from_json(
        &descriptor,
        &json!({"topic": "payment", "message": "Payment processed for order 1234 in 23 ms",
                "timestamp": "2024-01-01T12:00:00.250Z", "severity": "WARNING", "sequence": "42"}),
    )
    .expect("valid JSON")
}
