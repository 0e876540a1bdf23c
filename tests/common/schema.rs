//! A small validator for the JSON Schema keywords `schemas/report.schema.json` uses, so the
//! report and its schema cannot drift apart.

use serde_json::Value;

/// Problems of `value` against `schema` (JSON pointer, message); `root` resolves `$ref`.
pub fn validate(root: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/$defs/").expect("local references only");
        return validate(root, &root["$defs"][name], value, at, problems);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|option| {
                let mut inner = Vec::new();
                validate(root, option, value, at, &mut inner);
                inner.is_empty()
            })
            .count();
        if matching != 1 {
            problems.push(format!("{at}: matches {matching} of the oneOf options"));
        }
        return;
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type keyword at {at}"),
        };
        let fits = |kind: &str| match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_u64() || value.is_i64(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            other => panic!("unknown type {other}"),
        };
        if !types.iter().any(|kind| fits(kind)) {
            problems.push(format!("{at}: expected {types:?}, found {value}"));
            return;
        }
    }
    if let (Some(pattern), Some(text)) = (schema.get("pattern").and_then(Value::as_str), value.as_str()) {
        if !regex::Regex::new(pattern).unwrap().is_match(text) {
            problems.push(format!("{at}: {text:?} does not match {pattern}"));
        }
    }
    if let (Some(minimum), Some(number)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64()) {
        if number < minimum {
            problems.push(format!("{at}: {number} is below {minimum}"));
        }
    }
    if let (Some(maximum), Some(number)) = (schema.get("maximum").and_then(Value::as_f64), value.as_f64()) {
        if number > maximum {
            problems.push(format!("{at}: {number} is above {maximum}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            problems.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !object.contains_key(required.as_str().unwrap()) {
                problems.push(format!("{at}: missing {required}"));
            }
        }
        for (key, item) in object {
            let path = format!("{at}/{key}");
            match (properties.and_then(|properties| properties.get(key)), schema.get("additionalProperties"))
            {
                (Some(property), _) => validate(root, property, item, &path, problems),
                (None, Some(Value::Bool(false))) => problems.push(format!("{path}: not in the schema")),
                (None, Some(extra)) if extra.is_object() => validate(root, extra, item, &path, problems),
                _ => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            validate(root, items, item, &format!("{at}/{index}"), problems);
        }
    }
}

pub fn problems(schema: &Value, report: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    validate(schema, schema, report, "", &mut problems);
    problems
}

/// The committed report schema.
pub fn report_schema() -> Value {
    let path = super::repo_root().join("schemas/report.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
