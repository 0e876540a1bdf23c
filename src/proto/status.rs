//! gRPC status codes as users write them: names (`UNAVAILABLE`, `Unavailable`, `unavailable`)
//! or numbers (`14`), and back to their canonical names for reports and metrics labels.

use tonic::Code;

use crate::document::{Node, NodeValue};

/// How many gRPC status codes there are (0..=16); arrays indexed by code have this length.
pub const CODE_COUNT: usize = 17;

const NAMES: [(&str, Code); CODE_COUNT] = [
    ("OK", Code::Ok),
    ("CANCELLED", Code::Cancelled),
    ("UNKNOWN", Code::Unknown),
    ("INVALID_ARGUMENT", Code::InvalidArgument),
    ("DEADLINE_EXCEEDED", Code::DeadlineExceeded),
    ("NOT_FOUND", Code::NotFound),
    ("ALREADY_EXISTS", Code::AlreadyExists),
    ("PERMISSION_DENIED", Code::PermissionDenied),
    ("RESOURCE_EXHAUSTED", Code::ResourceExhausted),
    ("FAILED_PRECONDITION", Code::FailedPrecondition),
    ("ABORTED", Code::Aborted),
    ("OUT_OF_RANGE", Code::OutOfRange),
    ("UNIMPLEMENTED", Code::Unimplemented),
    ("INTERNAL", Code::Internal),
    ("UNAVAILABLE", Code::Unavailable),
    ("DATA_LOSS", Code::DataLoss),
    ("UNAUTHENTICATED", Code::Unauthenticated),
];

/// The trailer every status from `serve` carries: how many messages the server read on the
/// call, so a client can tell which of the messages it sent were never read (sent on a call the
/// server ended first).
pub const MESSAGES_READ_METADATA: &str = "streamstorm-messages-read";

/// The canonical name of a code (`UNAVAILABLE`).
pub fn code_name(code: Code) -> &'static str {
    NAMES[code as usize].0
}

/// A code from its number.
pub fn code_from_number(number: i64) -> Option<Code> {
    usize::try_from(number).ok().and_then(|index| NAMES.get(index)).map(|(_, code)| *code)
}

/// A code from its name in any case, with or without underscores (`Unavailable`,
/// `invalid_argument`, `InvalidArgument`), or from its number written as text.
pub fn code_from_name(name: &str) -> Option<Code> {
    if let Ok(number) = name.trim().parse::<i64>() {
        return code_from_number(number);
    }
    let wanted: String = name.trim().chars().filter(|c| *c != '_').flat_map(char::to_uppercase).collect();
    NAMES.iter().find(|(known, _)| known.replace('_', "") == wanted).map(|(_, code)| *code)
}

/// A code written in a stub, script or profile: a name or a number; the error says what is
/// allowed.
pub fn code_from_node(node: &Node) -> Result<Code, String> {
    let parsed = match &node.value {
        NodeValue::Number(number) => number.as_i64().and_then(code_from_number),
        NodeValue::String(name) => code_from_name(name),
        _ => None,
    };
    parsed.ok_or_else(|| format!("not a gRPC status code: {node} (use 0-16 or {})", all_code_names()))
}

/// Every accepted name, for error messages.
pub fn all_code_names() -> String {
    NAMES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for (index, (name, code)) in NAMES.iter().enumerate() {
            assert_eq!(*code as usize, index);
            assert_eq!(code_name(*code), *name);
            assert_eq!(code_from_name(name), Some(*code));
            assert_eq!(code_from_number(index as i64), Some(*code));
        }
        assert_eq!(code_from_name("Unavailable"), Some(Code::Unavailable));
        assert_eq!(code_from_name("invalidArgument"), Some(Code::InvalidArgument));
        assert_eq!(code_from_name("14"), Some(Code::Unavailable));
        assert_eq!(code_from_name("NOPE"), None);
        assert_eq!(code_from_number(17), None);
    }
}
