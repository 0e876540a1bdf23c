//! Templates in stub outputs (`data`, `stream` elements, header and trailer values), rendered
//! for one call with `request` bound to the matched request, `request.ws.message` to the
//! message being answered, and randomness from the stream's seeded RNG. Outputs without
//! templates are sent as encoded at load, with no work per call.

use std::time::SystemTime;

use prost_reflect::DynamicMessage;
use rand::rngs::StdRng;
use serde_json::{Map, Value as Json};
use tonic::Status;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use super::model::{OutputMessage, Stub};
use crate::chaos::stream_rng;
use crate::proto::OutboundMessage;
use crate::proto::json::{DefaultFields, FieldNames, message_from_json, message_to_json};
use crate::server::Call;
use crate::template::{Scope, Template};

/// Distinguishes stub templates' random draws from other per-stream draws.
const STUB_RNG: u64 = 3;

/// What a stub's templates see during one call.
pub struct Rendering {
    request: DynamicMessage,
    /// The request as JSON, made on first use.
    request_json: Option<Json>,
    message: Option<Json>,
    state: Map<String, Json>,
    connection_id: String,
    stream_id: u64,
    rng: StdRng,
}

impl Rendering {
    pub fn new(call: &Call, request: &DynamicMessage, seed: u64) -> Self {
        Self {
            request: request.clone(),
            request_json: None,
            message: None,
            state: Map::new(),
            connection_id: call.connection.id.to_string(),
            stream_id: call.stream_id,
            rng: stream_rng(seed, call.stream_id, STUB_RNG),
        }
    }

    /// The inbound message now being answered (bidi).
    pub fn answering(&mut self, message: &DynamicMessage) {
        self.message = Some(to_json(message));
    }

    /// The message to send: rendered when it holds templates, as encoded otherwise.
    pub fn message(&mut self, stub: &Stub, output: &OutputMessage) -> Result<OutboundMessage, Status> {
        let Some(template) = &output.template else { return Ok(output.message.clone()) };
        let mut scope = self.scope();
        let json = template.render(&mut scope).map_err(|error| failure(stub, &error.message))?;
        message_from_json(&stub.method.output(), &json)
            .map(OutboundMessage::Dynamic)
            .map_err(|error| failure(stub, &error.to_string()))
    }

    /// `literal` plus the rendered `templates`.
    pub fn metadata(
        &mut self,
        stub: &Stub,
        literal: &MetadataMap,
        templates: &[(String, Template)],
    ) -> Result<MetadataMap, Status> {
        let mut metadata = literal.clone();
        for (name, template) in templates {
            let mut scope = self.scope();
            let value = match template.render(&mut scope).map_err(|error| failure(stub, &error.message))? {
                Json::String(text) => text,
                other => other.to_string(),
            };
            let key: MetadataKey<tonic::metadata::Ascii> = name.parse().expect("names are checked at load");
            let value = MetadataValue::try_from(value.as_str()).map_err(|_| {
                failure(stub, &format!("header {name} rendered to an invalid value {value:?}"))
            })?;
            metadata.append(key, value);
        }
        Ok(metadata)
    }

    fn scope(&mut self) -> Scope<'_> {
        let request = self.request_json.get_or_insert_with(|| to_json(&self.request));
        Scope {
            request,
            message: self.message.as_ref(),
            state: &self.state,
            connection_id: &self.connection_id,
            stream_id: self.stream_id,
            rng: &mut self.rng,
            now: SystemTime::now(),
        }
    }
}

fn to_json(message: &DynamicMessage) -> Json {
    message_to_json(message, FieldNames::Proto, DefaultFields::Include).unwrap_or(Json::Null)
}

/// A template that fails at run time ends only its call, naming the stub.
fn failure(stub: &Stub, message: &str) -> Status {
    Status::internal(format!("stub '{}' ({}:{}): {message}", stub.id, stub.file.display(), stub.line))
}
