//! Scenarios resolved against the protos: the method's path and call pattern, the request
//! template compiled once (or the request encoded once when it holds no template), the
//! response fields that carry a sequence number or a timestamp, and the metric handles.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value as Json};

use super::metrics::ScenarioMetrics;
use crate::config::load::{LoadPlan, ScenarioSpec};
use crate::diagnostic::{Problem, Problems};
use crate::proto::json::message_from_json;
use crate::proto::{CallKind, MethodCatalog, OutboundMessage};
use crate::template::{JsonTemplate, Scope};

/// One scenario, ready to drive.
pub struct Scenario {
    /// Position in the plan; indexes the collector's per-scenario stats.
    pub index: usize,
    pub spec: ScenarioSpec,
    pub path: PathAndQuery,
    pub kind: CallKind,
    pub request_type: MessageDescriptor,
    pub response_type: MessageDescriptor,
    request: RequestSource,
    pub sequence_field: Option<FieldDescriptor>,
    pub timestamp_field: Option<FieldDescriptor>,
    pub metrics: ScenarioMetrics,
}

enum RequestSource {
    /// Encoded once at load, sent many times.
    Encoded(Bytes),
    /// Rendered per message (`{{stream.id}}`, `{{randSentence}}`, …).
    Template(JsonTemplate),
}

/// Why a request could not be rendered into a message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RequestError(String);

impl Scenario {
    /// The next request or client message for `stream_id`.
    pub fn request(&self, stream_id: u64, rng: &mut StdRng) -> Result<OutboundMessage, RequestError> {
        match &self.request {
            RequestSource::Encoded(bytes) => Ok(OutboundMessage::Encoded(bytes.clone())),
            RequestSource::Template(template) => {
                let json = render(template, stream_id, rng).map_err(RequestError)?;
                let message = message_from_json(&self.request_type, &json)
                    .map_err(|error| RequestError(error.to_string()))?;
                Ok(OutboundMessage::Dynamic(message))
            }
        }
    }

    /// The method as the report and metrics name it.
    pub fn method(&self) -> &str {
        &self.spec.method
    }
}

fn render(template: &JsonTemplate, stream_id: u64, rng: &mut StdRng) -> Result<Json, String> {
    let state = Map::new();
    let mut scope = Scope {
        request: &Json::Null,
        message: None,
        state: &state,
        connection_id: "",
        stream_id,
        rng,
        now: SystemTime::now(),
    };
    template.render(&mut scope).map_err(|error| error.to_string())
}

/// Resolves every scenario of `plan` against `catalog`; problems point into `file`.
pub fn compile_scenarios(
    plan: &LoadPlan,
    file: &Path,
    catalog: &MethodCatalog,
) -> Result<Vec<Arc<Scenario>>, Problems> {
    let mut problems = Problems::default();
    let mut scenarios = Vec::new();
    for (index, spec) in plan.scenarios.iter().enumerate() {
        match compile_one(index, spec, catalog) {
            Ok(scenario) => scenarios.push(Arc::new(scenario)),
            Err((at, field, message)) => {
                problems.push(Problem::at(file, at.line, at.column, message).with_field(field));
            }
        }
    }
    if plan.scenarios.is_empty() {
        problems.push(Problem::in_file(file, "the profile's load section names no scenarios"));
    }
    problems.into_result(scenarios)
}

type Located = (crate::document::Position, String, String);

fn compile_one(index: usize, spec: &ScenarioSpec, catalog: &MethodCatalog) -> Result<Scenario, Located> {
    let method_field = format!("{}.method", spec.field);
    let entry = catalog.by_path(&format!("/{}", spec.method)).ok_or_else(|| {
        let mut known: Vec<&str> =
            catalog.methods().map(|entry| entry.path.trim_start_matches('/')).collect();
        known.sort_unstable();
        (
            spec.method_at,
            method_field.clone(),
            format!("unknown method '{}' (methods: {})", spec.method, known.join(", ")),
        )
    })?;
    let request_type = entry.input();
    let request_field = format!("{}.request", spec.field);
    let at_request = |message: String| (spec.request_at, request_field.clone(), message);
    let template = JsonTemplate::compile(&spec.request)
        .map_err(|error| at_request(format!("template at {}: {}", error.pointer, error.error.message)))?;
    // Render once now, so a request that cannot fit its message is an input error.
    let sample = render(&template, 0, &mut StdRng::seed_from_u64(0)).map_err(at_request)?;
    let message = message_from_json(&request_type, &sample).map_err(|error| at_request(error.to_string()))?;
    let request = if template.is_literal() {
        RequestSource::Encoded(Bytes::from(message.encode_to_vec()))
    } else {
        RequestSource::Template(template)
    };
    let response_type = entry.output();
    let field = |name: &Option<String>, key: &str| -> Result<Option<FieldDescriptor>, Located> {
        let Some(name) = name else { return Ok(None) };
        response_type.get_field_by_name(name).map(Some).ok_or_else(|| {
            let fields: Vec<String> = response_type.fields().map(|field| field.name().to_owned()).collect();
            let message = format!(
                "{} has no field '{name}' (fields: {})",
                response_type.full_name(),
                fields.join(", ")
            );
            (spec.method_at, format!("{}.{key}", spec.field), message)
        })
    };
    let sequence_field = field(&spec.sequence_field, "sequence_field")?;
    let timestamp_field = field(&spec.timestamp_field, "timestamp_field")?;
    let path = PathAndQuery::try_from(entry.path.as_str())
        .map_err(|error| (spec.method_at, method_field.clone(), error.to_string()))?;
    Ok(Scenario {
        index,
        spec: spec.clone(),
        path,
        kind: entry.kind,
        request_type,
        response_type,
        request,
        sequence_field,
        timestamp_field,
        metrics: ScenarioMetrics::register(&spec.method),
    })
}

/// The sequence number a message carries in `field`, if it is a number.
pub fn sequence(message: &DynamicMessage, field: &FieldDescriptor) -> Option<u64> {
    use prost_reflect::Value;
    match message.get_field(field).as_ref() {
        Value::U64(value) => Some(*value),
        Value::U32(value) => Some(u64::from(*value)),
        Value::I64(value) => u64::try_from(*value).ok(),
        Value::I32(value) => u64::try_from(*value).ok(),
        _ => None,
    }
}

/// The time a message carries in `field`: a `google.protobuf.Timestamp`, RFC 3339 text, or
/// milliseconds since the epoch.
pub fn timestamp(message: &DynamicMessage, field: &FieldDescriptor) -> Option<SystemTime> {
    use prost_reflect::Value;
    use std::time::Duration;
    match message.get_field(field).as_ref() {
        Value::Message(inner) => {
            let seconds = inner.get_field_by_name("seconds")?.as_i64()?;
            let nanos = inner.get_field_by_name("nanos")?.as_i32()?;
            let since_epoch = Duration::new(u64::try_from(seconds).ok()?, u32::try_from(nanos).ok()?);
            (since_epoch > Duration::ZERO).then(|| SystemTime::UNIX_EPOCH + since_epoch)
        }
        Value::String(text) => humantime::parse_rfc3339_weak(text).ok(),
        Value::I64(millis) => {
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(*millis).ok()?))
        }
        Value::U64(millis) => Some(SystemTime::UNIX_EPOCH + Duration::from_millis(*millis)),
        _ => None,
    }
}
