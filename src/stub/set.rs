//! The loaded stubs, grouped by method and indexed for lookup that stays flat as stubs grow:
//! each stub whose first matcher has a top-level `equals` on a scalar field is filed under
//! that (field, value), so a request only evaluates the stubs filed under its own values plus
//! those that could not be indexed.
//!
//! Ranking when several stubs match: higher specificity (matched constraints whose expected
//! value is not a default), then higher `priority`, then v2 `inputs` stubs before v1 `input`,
//! then more matcher fields, then the order stubs were loaded in.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use prost_reflect::{DynamicMessage, FieldDescriptor};
use tonic::metadata::MetadataMap;

use super::matcher::{IndexValue, Score};
use super::model::Stub;
use crate::script::Script;

/// A stub that matched, with how well.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub stub: Arc<Stub>,
    pub score: Score,
}

impl Ranked {
    /// Best first.
    pub fn compare(&self, other: &Ranked) -> Ordering {
        let (a, b) = (&self.stub, &other.stub);
        other
            .score
            .specificity
            .cmp(&self.score.specificity)
            .then(b.priority.cmp(&a.priority))
            .then(b.input.is_v2().cmp(&a.input.is_v2()))
            .then(field_count(b).cmp(&field_count(a)))
            .then(a.order.cmp(&b.order))
    }
}

/// Keeps the candidates whose matcher for message `index` accepts `message`, adding its score.
pub fn narrow(candidates: &mut Vec<Ranked>, index: usize, message: &DynamicMessage) {
    candidates.retain_mut(|candidate| match candidate.stub.evaluate(index, message) {
        Some(score) => {
            candidate.score.add(score);
            true
        }
        None => false,
    });
}

fn field_count(stub: &Stub) -> usize {
    stub.input.field_count() + stub.headers.as_ref().map_or(0, |headers| headers.field_count())
}

/// Every stub, by method path, and the scripts bound to methods by their path.
#[derive(Debug, Default)]
pub struct StubSet {
    methods: HashMap<String, MethodStubs>,
    scripts: HashMap<String, Arc<Script>>,
    len: usize,
}

impl StubSet {
    pub fn new(stubs: Vec<Stub>) -> Self {
        Self::with_scripts(stubs, HashMap::new())
    }

    /// Stubs, plus scripts keyed by the method path they answer.
    pub fn with_scripts(stubs: Vec<Stub>, scripts: HashMap<String, Arc<Script>>) -> Self {
        let len = stubs.len();
        let mut methods: HashMap<String, MethodStubs> = HashMap::new();
        for stub in stubs {
            methods.entry(stub.method.path.clone()).or_default().add(Arc::new(stub));
        }
        Self { methods, scripts, len }
    }

    /// The script bound to a method by its path, which answers every call of the method.
    pub fn script_for(&self, path: &str) -> Option<&Arc<Script>> {
        self.scripts.get(path)
    }

    /// Scripts bound by path.
    pub fn script_count(&self) -> usize {
        self.scripts.len()
    }

    /// The stubs of one method, if it has any.
    pub fn for_method(&self, path: &str) -> Option<&MethodStubs> {
        self.methods.get(path)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The stubs of one method and their index.
#[derive(Debug, Default)]
pub struct MethodStubs {
    stubs: Vec<Arc<Stub>>,
    index: HashMap<(u32, IndexValue), Vec<usize>>,
    /// The fields the index is keyed on, each once.
    indexed_fields: Vec<FieldDescriptor>,
    unindexed: Vec<usize>,
}

impl MethodStubs {
    fn add(&mut self, stub: Arc<Stub>) {
        let position = self.stubs.len();
        let key = stub.input.first().and_then(|matcher| matcher.index_key());
        match key {
            Some((field, value)) => {
                if !self.indexed_fields.iter().any(|known| known.number() == field) {
                    let descriptor =
                        stub.method.input().get_field(field).expect("index keys are fields of the input");
                    self.indexed_fields.push(descriptor);
                }
                self.index.entry((field, value)).or_default().push(position);
            }
            None => self.unindexed.push(position),
        }
        self.stubs.push(stub);
    }

    pub fn stubs(&self) -> &[Arc<Stub>] {
        &self.stubs
    }

    /// The stubs that may match `first` as a first message: those filed under its values plus
    /// the unindexed ones.
    fn first_message_candidates(&self, first: &DynamicMessage) -> Vec<usize> {
        let mut candidates = self.unindexed.clone();
        for field in &self.indexed_fields {
            let Some(value) = IndexValue::of(&first.get_field(field)) else { continue };
            if let Some(positions) = self.index.get(&(field.number(), value)) {
                candidates.extend_from_slice(positions);
            }
        }
        candidates
    }

    /// Every available stub whose headers match and whose matcher for inbound message `index`
    /// accepts `message`, best first.
    pub fn rank(&self, metadata: &MetadataMap, index: usize, message: &DynamicMessage) -> Vec<Ranked> {
        let positions =
            if index == 0 { self.first_message_candidates(message) } else { (0..self.stubs.len()).collect() };
        let mut ranked: Vec<Ranked> = positions
            .into_iter()
            .map(|position| &self.stubs[position])
            .filter(|stub| stub.available() && headers_match(stub, metadata))
            .filter_map(|stub| {
                stub.evaluate(index, message).map(|score| Ranked { stub: stub.clone(), score })
            })
            .collect();
        ranked.sort_by(Ranked::compare);
        ranked
    }

    /// Every available stub whose headers match, unscored (the start of a client stream).
    pub fn available(&self, metadata: &MetadataMap) -> Vec<Ranked> {
        self.stubs
            .iter()
            .filter(|stub| stub.available() && headers_match(stub, metadata))
            .map(|stub| Ranked { stub: stub.clone(), score: Score::default() })
            .collect()
    }

    /// Why no stub matched inbound message `index` (0-based; the text counts from 1, as
    /// people do): the closest stub and the fields that differed, for the `NOT_FOUND` message.
    pub fn explain_miss(&self, metadata: &MetadataMap, index: usize, message: &DynamicMessage) -> String {
        let request = crate::proto::json::message_to_json(
            message,
            crate::proto::json::FieldNames::Proto,
            crate::proto::json::DefaultFields::Skip,
        )
        .map(|json| json.to_string())
        .unwrap_or_default();
        let method = &self.stubs[0].method;
        let mut text =
            format!("no stub matched {}/{} message {}: {request}", method.service, method.method, index + 1);
        let closest = self
            .stubs
            .iter()
            .map(|stub| (stub, differences(stub, metadata, index, message)))
            .min_by(|(a, a_diff), (b, b_diff)| {
                a_diff.len().cmp(&b_diff.len()).then(b.priority.cmp(&a.priority)).then(a.order.cmp(&b.order))
            });
        if let Some((stub, differing)) = closest {
            let location = format!("{}:{}", stub.file.display(), stub.line);
            let name = if stub.id == location { location } else { format!("'{}' ({location})", stub.id) };
            text.push_str(&format!("; closest stub {name} differs in: {}", differing.join(", ")));
        }
        text
    }
}

fn headers_match(stub: &Stub, metadata: &MetadataMap) -> bool {
    stub.headers.as_ref().is_none_or(|headers| headers.matches(metadata))
}

/// What kept `stub` from matching message `index`.
fn differences(stub: &Stub, metadata: &MetadataMap, index: usize, message: &DynamicMessage) -> Vec<String> {
    let mut differing = Vec::new();
    if !headers_match(stub, metadata) {
        differing.push("headers".to_owned());
    }
    if !stub.available() {
        differing.push(format!("options.times (used {} of {})", stub.times, stub.times));
    }
    match stub.input.at(index) {
        Some(matcher) => differing.extend(matcher.mismatches(message)),
        None => differing
            .push(format!("inputs (it describes {} messages)", stub.input.sequence_len().unwrap_or(1))),
    }
    if differing.is_empty() {
        differing.push("the number of messages".to_owned());
    }
    differing
}
