//! JSON whose string values may hold templates: the shape of a message written in a stub or a
//! script, compiled once. A string that is exactly one `{{ expr }}` renders to the expression's
//! typed value (so `"total_size": "{{state.chunks * 1024}}"` gives a number, and
//! `"{{request.ws.message}}"` a whole object); other strings render to text. Values are placed
//! into the JSON tree, never spliced into JSON text, so quotes in them cannot break it.

use serde_json::Value as Json;

use super::{EvalError, Scope, Template, TemplateError};

#[derive(Debug, Clone)]
pub enum JsonTemplate {
    Literal(Json),
    Template(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

/// A template problem inside JSON: where (`/stream/0/content`) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonTemplateError {
    pub pointer: String,
    pub error: TemplateError,
}

impl JsonTemplate {
    /// Compiles every string in `json`; arrays and objects without templates stay literal.
    pub fn compile(json: &Json) -> Result<Self, JsonTemplateError> {
        Self::compile_at(json, String::new())
    }

    fn compile_at(json: &Json, pointer: String) -> Result<Self, JsonTemplateError> {
        let compiled = match json {
            Json::String(text) => {
                let template =
                    Template::compile(text).map_err(|error| JsonTemplateError { pointer, error })?;
                if template.is_literal() { Self::Literal(json.clone()) } else { Self::Template(template) }
            }
            Json::Array(items) => Self::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| Self::compile_at(item, format!("{pointer}/{index}")))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(entries) => Self::Object(
                entries
                    .iter()
                    .map(|(key, value)| {
                        Ok((key.clone(), Self::compile_at(value, format!("{pointer}/{key}"))?))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            literal => return Ok(Self::Literal(literal.clone())),
        };
        Ok(compiled.collapse(json))
    }

    /// A tree without templates is one literal.
    fn collapse(self, json: &Json) -> Self {
        if self.is_literal() { Self::Literal(json.clone()) } else { self }
    }

    /// True when nothing in it is a template.
    pub fn is_literal(&self) -> bool {
        match self {
            Self::Literal(_) => true,
            Self::Template(_) => false,
            Self::Array(items) => items.iter().all(Self::is_literal),
            Self::Object(entries) => entries.iter().all(|(_, value)| value.is_literal()),
        }
    }

    pub fn render(&self, scope: &mut Scope<'_>) -> Result<Json, EvalError> {
        Ok(match self {
            Self::Literal(value) => value.clone(),
            Self::Template(template) => template.render(scope)?,
            Self::Array(items) => {
                Json::Array(items.iter().map(|item| item.render(scope)).collect::<Result<_, _>>()?)
            }
            Self::Object(entries) => Json::Object(
                entries.iter().map(|(key, value)| Ok((key.clone(), value.render(scope)?))).collect::<Result<
                    _,
                    EvalError,
                >>(
                )?,
            ),
        })
    }

    /// Every variable path the templates read (see [`Template::paths`]).
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        self.collect_paths(&mut paths);
        paths
    }

    fn collect_paths(&self, paths: &mut Vec<Vec<String>>) {
        match self {
            Self::Literal(_) => {}
            Self::Template(template) => paths.extend(template.paths()),
            Self::Array(items) => items.iter().for_each(|item| item.collect_paths(paths)),
            Self::Object(entries) => entries.iter().for_each(|(_, value)| value.collect_paths(paths)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use rand::SeedableRng;
    use serde_json::json;

    use super::*;

    #[test]
    fn sole_expressions_keep_their_type_and_quotes_stay_safe() {
        let template = JsonTemplate::compile(&json!({
            "file_id": "f-{{request.name}}", "total_size": "{{request.size * 2}}", "fixed": [1, "two"]
        }))
        .unwrap();
        let request = json!({"name": "say \"hi\"", "size": 512});
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let state = serde_json::Map::new();
        let mut scope = Scope {
            request: &request,
            message: None,
            state: &state,
            connection_id: "conn-1",
            stream_id: 1,
            rng: &mut rng,
            now: SystemTime::UNIX_EPOCH,
        };
        let rendered = template.render(&mut scope).unwrap();
        assert_eq!(rendered, json!({"file_id": "f-say \"hi\"", "total_size": 1024, "fixed": [1, "two"]}));
        assert_eq!(
            template.paths(),
            [vec!["request".to_owned(), "name".to_owned()], vec!["request".into(), "size".into()]]
        );
        assert!(JsonTemplate::compile(&json!({"a": ["b"]})).unwrap().is_literal());
        let error = JsonTemplate::compile(&json!({"a": [1, "{{ + }}"]})).unwrap_err();
        assert_eq!(error.pointer, "/a/1");
    }
}
