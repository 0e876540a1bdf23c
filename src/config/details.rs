//! `abort.details`: rich error details (`google.rpc.ErrorInfo`, `RetryInfo`, …) encoded once,
//! at load, into the `google.rpc.Status` sent as `grpc-status-details-bin`. A profile is read
//! before any proto is loaded, so the detail types are those of the `google.rpc` error model.

use std::sync::OnceLock;

use bytes::Bytes;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value as Json, json};
use tonic::Code;

use super::values::Parsed;
use crate::document::Node;
use crate::proto::json::message_from_json;

const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// `google.rpc.Status` and the standard error details, decoded once.
fn error_model() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(tonic_types::pb::FILE_DESCRIPTOR_SET).ok()).as_ref()
}

/// A detail's type written as `@type` (or `type`), short (`google.rpc.RetryInfo`) or as a URL.
fn with_type_url(detail: &Node) -> Json {
    let mut detail = detail.to_json();
    if let Some(object) = detail.as_object_mut() {
        let type_name = object.remove("@type").or_else(|| object.remove("type"));
        if let Some(Json::String(name)) = type_name {
            let url = if name.contains('/') { name } else { format!("{TYPE_URL_PREFIX}{name}") };
            object.insert("@type".into(), Json::String(url));
        }
    }
    detail
}

/// The encoded `google.rpc.Status` for `code`, `message` and the list of details in `node`.
pub(super) fn encode_details(code: Code, message: &str, node: &Node) -> Parsed<Bytes> {
    let mut status = status_with_details(code, node, None)?;
    status.set_message(message);
    Ok(status.encode())
}

/// A `google.rpc.Status` with its code and details fixed at load and its message given when it
/// is sent (a stream script's error text is a template).
#[derive(Debug, Clone)]
pub struct StatusDetails(DynamicMessage);

impl StatusDetails {
    pub fn set_message(&mut self, message: &str) {
        self.0.set_field_by_name("message", prost_reflect::Value::String(message.to_owned()));
    }

    /// The encoded status carrying `message`, for `grpc-status-details-bin`.
    pub fn encode_with(&self, message: &str) -> Bytes {
        let mut status = self.clone();
        status.set_message(message);
        status.encode()
    }

    fn encode(&self) -> Bytes {
        Bytes::from(self.0.encode_to_vec())
    }
}

/// `code` and the list of details in `node` as a `google.rpc.Status` (message empty). Detail
/// types come from `pool` when it has them (a stub's or script's protos), else from the
/// `google.rpc` error model.
pub fn status_with_details(code: Code, node: &Node, pool: Option<&DescriptorPool>) -> Parsed<StatusDetails> {
    let Some(items) = node.as_seq() else {
        return Err(format!("expected a list of details, found {}", node.kind()));
    };
    let status_type = pool
        .and_then(|pool| pool.get_message_by_name("google.rpc.Status"))
        .or_else(|| error_model().and_then(|pool| pool.get_message_by_name("google.rpc.Status")))
        .ok_or("google.rpc.Status is not available in this build")?;
    let details: Vec<Json> = items.iter().map(with_type_url).collect();
    let status = json!({"code": code as i32, "message": "", "details": details});
    message_from_json(&status_type, &status).map(StatusDetails).map_err(|error| {
        format!(
            "{} (each detail needs '@type' naming a google.rpc error detail, e.g. google.rpc.RetryInfo)",
            error.reason
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::document::read_documents;

    fn details(yaml: &str) -> Node {
        read_documents(Path::new("t.yaml"), yaml).unwrap().remove(0)
    }

    #[test]
    fn encodes_a_status_with_standard_details() {
        let node = details(
            "- {'@type': google.rpc.RetryInfo, retry_delay: 1.5s}\n- {type: google.rpc.ErrorInfo, reason: QUOTA}\n",
        );
        let encoded = encode_details(Code::Unavailable, "try later", &node).unwrap();
        let status = tonic_types::pb::Status::decode(encoded).unwrap();
        assert_eq!((status.code, status.message.as_str()), (Code::Unavailable as i32, "try later"));
        let urls: Vec<_> = status.details.iter().map(|detail| detail.type_url.as_str()).collect();
        assert_eq!(
            urls,
            ["type.googleapis.com/google.rpc.RetryInfo", "type.googleapis.com/google.rpc.ErrorInfo"]
        );
    }

    #[test]
    fn unknown_detail_types_are_named() {
        let error = encode_details(Code::Internal, "", &details("- {'@type': myapp.Nope}\n")).unwrap_err();
        assert!(error.contains("myapp.Nope"), "{error}");
        assert!(error.ends_with("e.g. google.rpc.RetryInfo)"), "{error}");
        assert_eq!(
            encode_details(Code::Internal, "", &details("x: 1\n")),
            Err("expected a list of details, found a mapping".into())
        );
    }
}
