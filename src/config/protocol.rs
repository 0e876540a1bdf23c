//! Values that name network and protocol things: socket addresses, byte sizes, HTTP/2 error
//! codes and gRPC method patterns.

use std::net::SocketAddr;

use super::values::{Parsed, positive_usize};
use crate::chaos::plan::MethodMatch;
use crate::document::{Node, NodeValue};

/// An IP address and port (`127.0.0.1:50051`, `[::]:50051`).
pub fn socket_address(node: &Node) -> Parsed<SocketAddr> {
    node.as_str().and_then(|text| text.trim().parse().ok()).ok_or_else(|| {
        format!("not a socket address: {node} (write ip:port, e.g. 127.0.0.1:50051 or [::]:50051)")
    })
}

/// Bytes: a number, or text with a unit (`64KiB`, `4MiB`, `1MB`).
pub fn byte_size(node: &Node) -> Parsed<usize> {
    let error = || format!("not a size: {node} (write bytes like 4194304, or 64KiB, 4MiB, 1MB)");
    let text = match &node.value {
        NodeValue::Number(_) => return positive_usize(node),
        NodeValue::String(text) => text.trim(),
        _ => return Err(error()),
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let number: u64 = text[..split].parse().map_err(|_| error())?;
    let unit: u64 = match text[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(error()),
    };
    number
        .checked_mul(unit)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .filter(|bytes| *bytes > 0)
        .ok_or_else(error)
}

/// HTTP/2 error codes by name, for `RST_STREAM`.
const H2_CODES: [&str; 14] = [
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
];

/// An HTTP/2 error code: a number (`8`) or a name (`CANCEL`, `refused_stream`).
pub fn h2_code(node: &Node) -> Parsed<u32> {
    let parsed = match &node.value {
        NodeValue::Number(number) => number.as_u64().and_then(|code| u32::try_from(code).ok()),
        NodeValue::String(name) => {
            H2_CODES.iter().position(|known| known.eq_ignore_ascii_case(name.trim())).map(|code| code as u32)
        }
        _ => None,
    };
    parsed
        .ok_or_else(|| format!("not an HTTP/2 error code: {node} (use a number or {})", H2_CODES.join(", ")))
}

/// `package.Service/Method`, `package.Service/*`, or `*` for every method.
pub fn method_match(node: &Node) -> Parsed<MethodMatch> {
    let error = || format!("not a method: {node} (write package.Service/Method or package.Service/*)");
    let text = node.as_str().ok_or_else(error)?.trim();
    let text = text.strip_prefix('/').unwrap_or(text);
    if text == "*" {
        return Ok(MethodMatch::All);
    }
    let (service, method) = text.split_once('/').ok_or_else(error)?;
    let well_formed = |part: &str| !part.is_empty() && !part.contains(['/', ' ', '\t']);
    match (well_formed(service), method) {
        (true, "*") => Ok(MethodMatch::Service(service.to_owned())),
        (true, method) if well_formed(method) => {
            Ok(MethodMatch::Method { service: service.to_owned(), method: method.to_owned() })
        }
        _ => Err(error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::node;

    #[test]
    fn sizes_and_addresses() {
        assert_eq!(byte_size(&node("4MiB")), Ok(4 << 20));
        assert_eq!(byte_size(&node("64 KiB")), Ok(64 << 10));
        assert_eq!(byte_size(&node("1MB")), Ok(1_000_000));
        assert_eq!(byte_size(&node("1024")), Ok(1024));
        assert_eq!(
            byte_size(&node("4XB")),
            Err("not a size: \"4XB\" (write bytes like 4194304, or 64KiB, 4MiB, 1MB)".into())
        );
        assert_eq!(socket_address(&node("127.0.0.1:50051")), Ok("127.0.0.1:50051".parse().unwrap()));
        assert_eq!(socket_address(&node("\"[::]:9464\"")), Ok("[::]:9464".parse().unwrap()));
        assert_eq!(
            socket_address(&node("localhost")),
            Err("not a socket address: \"localhost\" (write ip:port, e.g. 127.0.0.1:50051 or [::]:50051)"
                .into())
        );
    }
    #[test]
    fn h2_codes_by_name_or_number() {
        assert_eq!(h2_code(&node("8")), Ok(8));
        assert_eq!(h2_code(&node("cancel")), Ok(8));
        assert_eq!(h2_code(&node("REFUSED_STREAM")), Ok(7));
        assert!(
            h2_code(&node("NOPE"))
                .unwrap_err()
                .starts_with("not an HTTP/2 error code: \"NOPE\" (use a number or NO_ERROR,")
        );
    }

    #[test]
    fn method_patterns() {
        let method = |service: &str, method: &str| MethodMatch::Method {
            service: service.into(),
            method: method.into(),
        };
        assert_eq!(method_match(&node("myapp.ChatService/Chat")), Ok(method("myapp.ChatService", "Chat")));
        assert_eq!(method_match(&node("/myapp.ChatService/Chat")), Ok(method("myapp.ChatService", "Chat")));
        assert_eq!(
            method_match(&node("myapp.ChatService/*")),
            Ok(MethodMatch::Service("myapp.ChatService".into()))
        );
        assert_eq!(method_match(&node("\"*\"")), Ok(MethodMatch::All));
        for bad in ["myapp.ChatService", "/Chat", "a/b/c", "5"] {
            assert_eq!(
                method_match(&node(bad)),
                Err(format!(
                    "not a method: {} (write package.Service/Method or package.Service/*)",
                    node(bad)
                )),
                "{bad}"
            );
        }
    }
}
