//! Stub files (GripMock's YAML/JSON format, loaded unchanged) compiled against the protos:
//! every stub checked — service and method exist, matcher fields exist on the request type,
//! output values fit the response type, regexes and globs compile, codes are real — with every
//! problem reported at once by file, line, column and field path.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use prost_reflect::DescriptorPool;

use super::headers::HeaderMatcher;
use super::matcher::{MatcherError, MessageMatcher};
use super::model::{InputPattern, Stub, StubOutput};
use crate::diagnostic::{Problem, Problems};
use crate::document::{Node, Position, read_documents};
use crate::proto::{MethodCatalog, MethodEntry};

const STUB_FIELDS: &[&str] =
    &["id", "service", "method", "priority", "headers", "input", "inputs", "options", "output"];
pub(super) const OUTPUT_FIELDS: &[&str] =
    &["data", "stream", "error", "code", "details", "headers", "trailers", "delay", "script"];
/// The per-element directive GripMock accepts on `output.stream` entries.
pub(super) const ELEMENT_DIRECTIVE: &str = "_gripmock";

/// Compiles the stubs in one file. `first_order` numbers them after those already loaded.
pub fn compile_file(
    path: &Path,
    text: &str,
    catalog: &MethodCatalog,
    pool: &DescriptorPool,
    first_order: usize,
) -> Result<Vec<Stub>, Problems> {
    let documents = read_documents(path, text)?;
    let mut compiler = FileCompiler {
        path,
        catalog,
        pool,
        problems: Problems::default(),
        stubs: Vec::new(),
        next_order: first_order,
    };
    for document in &documents {
        match document.as_seq() {
            Some(stubs) => {
                for (index, stub) in stubs.iter().enumerate() {
                    compiler.stub(stub, &format!("[{index}]"));
                }
            }
            None => compiler.stub(document, ""),
        }
    }
    let FileCompiler { problems, stubs, .. } = compiler;
    problems.into_result(stubs)
}

pub(super) struct FileCompiler<'a> {
    pub(super) path: &'a Path,
    pub(super) catalog: &'a MethodCatalog,
    pub(super) pool: &'a DescriptorPool,
    pub(super) problems: Problems,
    pub(super) stubs: Vec<Stub>,
    pub(super) next_order: usize,
}

impl FileCompiler<'_> {
    pub(super) fn problem(&mut self, at: Position, path: &str, message: impl Into<String>) {
        let problem = Problem::at(self.path, at.line, at.column, message);
        self.problems.push(if path.is_empty() {
            problem
        } else {
            problem.with_field(path.trim_start_matches('.'))
        });
    }

    pub(super) fn matcher_errors(&mut self, errors: Vec<MatcherError>) {
        for error in errors {
            self.problem(error.at, &error.path, error.message);
        }
    }

    /// Reports keys of `node` not in `allowed`.
    pub(super) fn known_keys(&mut self, node: &Node, path: &str, allowed: &[&str]) {
        for (key, _) in node.as_map().unwrap_or_default() {
            if !allowed.contains(&key.name.as_str()) {
                self.problem(
                    key.at,
                    &format!("{path}.{}", key.name),
                    format!("unknown field (expected one of: {})", allowed.join(", ")),
                );
            }
        }
    }

    fn stub(&mut self, node: &Node, path: &str) {
        if node.as_map().is_none() {
            self.problem(node.at, path, format!("expected a stub (a mapping), found {}", node.kind()));
            return;
        }
        let before = self.problems.len();
        self.known_keys(node, path, STUB_FIELDS);
        let Some(method) = self.method(node, path) else { return };
        let input = self.input(node, path, &method);
        let headers = node.get("headers").map(|headers| {
            let mut errors = Vec::new();
            let matcher = HeaderMatcher::compile(headers, &format!("{path}.headers"), &mut errors);
            self.matcher_errors(errors);
            matcher
        });
        let priority = self.integer(node.get("priority"), &format!("{path}.priority")).unwrap_or(0);
        let times = self.times(node, path);
        let output = match node.get("output") {
            Some(output) => self.output(output, &format!("{path}.output"), &method),
            None => {
                self.problem(node.at, path, "a stub needs an `output`");
                StubOutput::default()
            }
        };
        let (Some(input), true) = (input, self.problems.len() == before) else { return };
        let id = node.get("id").and_then(Node::as_str).map(str::to_owned);
        self.stubs.push(Stub {
            id: id.unwrap_or_else(|| format!("{}:{}", self.path.display(), node.at.line)),
            file: self.path.to_path_buf(),
            line: node.at.line,
            method,
            priority,
            headers,
            input,
            times,
            used: AtomicU32::new(0),
            output,
            order: self.next_order,
        });
        self.next_order += 1;
    }

    fn method(&mut self, node: &Node, path: &str) -> Option<Arc<MethodEntry>> {
        let service_node = node.get("service");
        let method_node = node.get("method");
        let (Some(service), Some(method)) =
            (service_node.and_then(Node::as_str), method_node.and_then(Node::as_str))
        else {
            self.problem(node.at, path, "a stub needs `service` and `method` strings");
            return None;
        };
        let service_at = service_node.map(|n| n.at).unwrap_or_default();
        match resolve_service(self.catalog, service) {
            Ok(full_name) => {
                let found = self.catalog.by_path(&format!("/{full_name}/{method}")).cloned();
                if found.is_none() {
                    let methods: Vec<_> = self
                        .catalog
                        .methods()
                        .filter(|m| m.service == full_name)
                        .map(|m| m.method.clone())
                        .collect();
                    let at = method_node.map(|n| n.at).unwrap_or_default();
                    self.problem(
                        at,
                        &format!("{path}.method"),
                        format!("{full_name} has no method '{method}' (methods: {})", methods.join(", ")),
                    );
                }
                found
            }
            Err(message) => {
                self.problem(service_at, &format!("{path}.service"), message);
                None
            }
        }
    }

    fn input(&mut self, node: &Node, path: &str, method: &MethodEntry) -> Option<InputPattern> {
        let request_type = method.input();
        let mut errors = Vec::new();
        let pattern = match (node.get("input"), node.get("inputs")) {
            (Some(_), Some(inputs)) => {
                self.problem(
                    inputs.at,
                    &format!("{path}.inputs"),
                    "a stub cannot have both `input` and `inputs`",
                );
                return None;
            }
            (Some(input), None) => InputPattern::Single(MessageMatcher::compile(
                input,
                &request_type,
                &format!("{path}.input"),
                &mut errors,
            )),
            (None, Some(inputs)) => match inputs.as_seq() {
                Some(items) if !items.is_empty() => InputPattern::PerMessage(
                    items
                        .iter()
                        .enumerate()
                        .map(|(index, item)| {
                            MessageMatcher::compile(
                                item,
                                &request_type,
                                &format!("{path}.inputs[{index}]"),
                                &mut errors,
                            )
                        })
                        .collect(),
                ),
                _ => {
                    self.problem(
                        inputs.at,
                        &format!("{path}.inputs"),
                        "expected a non-empty list of matchers",
                    );
                    return None;
                }
            },
            // No matcher at all: a catch-all.
            (None, None) => InputPattern::Single(MessageMatcher::default()),
        };
        self.matcher_errors(errors);
        Some(pattern)
    }

    fn times(&mut self, node: &Node, path: &str) -> u32 {
        let Some(options) = node.get("options") else { return 0 };
        self.known_keys(options, &format!("{path}.options"), &["times"]);
        let times = self.integer(options.get("times"), &format!("{path}.options.times")).unwrap_or(0);
        u32::try_from(times).unwrap_or_else(|_| {
            self.problem(
                options.at,
                &format!("{path}.options.times"),
                "expected a count from 0 (unlimited) up",
            );
            0
        })
    }

    fn integer(&mut self, node: Option<&Node>, path: &str) -> Option<i64> {
        let node = node?;
        let value = node.to_json().as_i64();
        if value.is_none() {
            self.problem(node.at, path, format!("expected a whole number, found {node}"));
        }
        value
    }
}

/// Finds a service by full name (`myapp.ChatService`) or, when unambiguous, by its short name.
pub fn resolve_service(catalog: &MethodCatalog, name: &str) -> Result<String, String> {
    let services = catalog.services();
    if services.iter().any(|service| service == name) {
        return Ok(name.to_owned());
    }
    let suffix = format!(".{name}");
    let candidates: Vec<&String> = services.iter().filter(|service| service.ends_with(&suffix)).collect();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("unknown service '{name}' (services: {})", services.join(", "))),
        many => Err(format!(
            "service name '{name}' is ambiguous: {} (write the full name)",
            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}
