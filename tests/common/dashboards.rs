//! Reading the Grafana dashboards in `dashboards/`: their panels (rows flattened), each panel
//! target's PromQL, and the template variables, with Grafana's variables replaced so Prometheus
//! can run the queries as Grafana would with every value selected.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// What Grafana's built-in interval variables become in a test scraping every second:
/// `$__rate_interval` spans several scrapes, `$__range` the whole test.
pub const BUILTIN_VARIABLES: &[(&str, &str)] =
    &[("$__rate_interval", "5s"), ("$__interval", "1s"), ("$__range", "5m")];

/// A dashboard file, parsed.
pub fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: not JSON: {error}", path.display()))
}

/// Every file under `dashboards/`, sorted.
pub fn files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&super::repo_root().join("dashboards"), &mut files);
    files.sort();
    files
}

/// The dashboard's panels, with the panels of rows (collapsed or not) in place of the rows.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn flatten<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            if panel["type"] == "row" {
                flatten(&panel["panels"], out);
            } else {
                out.push(panel);
            }
        }
    }
    let mut out = Vec::new();
    flatten(&dashboard["panels"], &mut out);
    out
}

/// One query of one panel.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub panel: String,
    pub ref_id: String,
    /// As written in the dashboard.
    pub expr: String,
}

/// Every target's query, panel by panel.
pub fn panel_queries(dashboard: &Value) -> Vec<PanelQuery> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or_default().to_owned();
            panel["targets"].as_array().into_iter().flatten().map(move |target| PanelQuery {
                panel: title.clone(),
                ref_id: target["refId"].as_str().unwrap_or_default().to_owned(),
                expr: target["expr"].as_str().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// The template variables of type `query`: name and query.
pub fn query_variables(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|variable| variable["type"] == "query")
        .map(|variable| {
            let query = match &variable["query"] {
                Value::String(query) => query.clone(),
                query => query["query"].as_str().unwrap_or_default().to_owned(),
            };
            (variable["name"].as_str().unwrap_or_default().to_owned(), query)
        })
        .collect()
}

/// The names of every template variable.
pub fn variable_names(dashboard: &Value) -> Vec<String> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|variable| variable["name"].as_str().map(str::to_owned))
        .collect()
}

/// The dashboard variables `expr` uses (`$name` or `${name}`, Grafana's `$__…` excluded), each
/// with the text just before it.
pub fn variables_used(expr: &str) -> Vec<(String, String)> {
    expr.match_indices('$')
        .filter_map(|(at, _)| {
            let name: String = expr[at + 1..]
                .trim_start_matches('{')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty() && !name.starts_with("__")).then(|| (name, expr[..at].to_owned()))
        })
        .collect()
}

/// `expr` as Prometheus runs it when every value of every variable is selected: the interval
/// variables become durations and `$name` (always matched with `=~`) becomes `.*`.
pub fn substitute(expr: &str) -> String {
    let mut expr = expr.to_owned();
    for (variable, value) in BUILTIN_VARIABLES {
        expr = expr.replace(variable, value);
    }
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (braced, after) = match after.strip_prefix('{') {
            Some(inner) => (true, inner),
            None => (false, after),
        };
        let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        out.push_str(".*");
        rest = &after[name_len..];
        if braced {
            rest = rest.strip_prefix('}').unwrap_or(rest);
        }
    }
    out.push_str(rest);
    out
}

/// `label_values(SELECTOR, LABEL)` split into its selector (variables substituted) and label.
pub fn label_values(query: &str) -> Option<(String, String)> {
    let inner = query.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((substitute(selector.trim()), label.trim().to_owned()))
}
