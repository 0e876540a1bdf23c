//! Every file under `dashboards/` loads and is complete: the dashboards are importable Grafana
//! JSON with a Prometheus data source variable, every panel has a data source, a title, a unit
//! and queries with legends, and uses only variables it defines (matched with `=~`, so "All"
//! works); every query adds up over many pods (aggregated, buckets summed by `le` under
//! `histogram_quantile`, filtered by `instance`); the server dashboard covers every server metric; the provisioning examples are the
//! YAML Grafana expects; the README describes every panel.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::dashboards;
use serde_json::Value;
use streamstorm::telemetry::names;

const SERVER: &str = "streamstorm-server.json";
const CLIENT: &str = "streamstorm-client.json";

fn name(path: &Path) -> String {
    path.strip_prefix(common::repo_root().join("dashboards")).unwrap().display().to_string()
}

fn dashboard_files() -> Vec<std::path::PathBuf> {
    dashboards::files().into_iter().filter(|path| path.extension().is_some_and(|ext| ext == "json")).collect()
}

#[test]
fn every_file_under_dashboards_is_a_dashboard_a_provisioning_example_or_the_readme() {
    let names: Vec<String> = dashboards::files().iter().map(|path| name(path)).collect();
    for file in &names {
        let known = file.ends_with(".json")
            || (file.starts_with("provisioning/") && file.ends_with(".yaml"))
            || file == "README.md";
        assert!(known, "dashboards/{file}: no test checks this kind of file");
    }
    for wanted in [
        SERVER,
        CLIENT,
        "provisioning/datasources/prometheus.yaml",
        "provisioning/dashboards/streamstorm.yaml",
    ] {
        assert!(names.iter().any(|file| file == wanted), "dashboards/{wanted} is missing: {names:?}");
    }
}

/// Every problem with one dashboard.
fn problems(file: &str, dashboard: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(format!("{file}: {text}"));
    if dashboard["schemaVersion"].as_u64().is_none_or(|version| version < 36) {
        problem(format!("schemaVersion {} (want 36 or later)", dashboard["schemaVersion"]));
    }
    for key in ["uid", "title"] {
        if dashboard[key].as_str().is_none_or(str::is_empty) {
            problem(format!("no {key}"));
        }
    }
    let variables = dashboard["templating"]["list"].as_array().cloned().unwrap_or_default();
    let datasource = variables.iter().find(|variable| variable["name"] == "datasource");
    if !datasource
        .is_some_and(|variable| variable["type"] == "datasource" && variable["query"] == "prometheus")
    {
        problem("no `datasource` variable of type datasource with query prometheus".into());
    }
    let defined = dashboards::variable_names(dashboard);
    let uses_variable_source =
        |value: &Value| value["type"] == "prometheus" && value["uid"] == "${datasource}";
    for (name, query) in dashboards::query_variables(dashboard) {
        if dashboards::label_values(&query).is_none() {
            problem(format!("variable {name}: not label_values(SELECTOR, LABEL): {query}"));
        }
    }
    for variable in variables.iter().filter(|variable| variable["type"] == "query") {
        if !uses_variable_source(&variable["datasource"]) {
            problem(format!("variable {}: data source is not ${{datasource}}", variable["name"]));
        }
    }

    let mut ids = BTreeSet::new();
    let panels = dashboards::panels(dashboard);
    if panels.is_empty() {
        problem("no panels".into());
    }
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        let mut problem = |text: &str| problem(format!("panel '{title}': {text}"));
        if title.is_empty() {
            problem("no title");
        }
        if !ids.insert(panel["id"].to_string()) {
            problem("duplicate id");
        }
        if !["timeseries", "stat"].contains(&panel["type"].as_str().unwrap_or_default()) {
            problem("type is not timeseries or stat");
        }
        if !uses_variable_source(&panel["datasource"]) {
            problem("data source is not ${datasource}");
        }
        if panel["fieldConfig"]["defaults"]["unit"].as_str().is_none_or(str::is_empty) {
            problem("no unit");
        }
        if panel["description"].as_str().is_none_or(str::is_empty) {
            problem("no description");
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problem("no targets");
        }
        let mut ref_ids = BTreeSet::new();
        for target in &targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            if expr.is_empty() {
                problem("a target without expr");
            }
            if target["legendFormat"].as_str().is_none_or(str::is_empty) {
                problem(&format!("target {expr}: no legendFormat"));
            }
            if !uses_variable_source(&target["datasource"]) {
                problem(&format!("target {expr}: data source is not ${{datasource}}"));
            }
            if !ref_ids.insert(target["refId"].to_string()) {
                problem(&format!("target {expr}: duplicate refId"));
            }
            for (variable, before) in dashboards::variables_used(expr) {
                if !defined.contains(&variable) {
                    problem(&format!("target {expr}: ${variable} is not a dashboard variable"));
                }
                if !before.ends_with("=~\"") {
                    problem(&format!("target {expr}: ${variable} not matched with =~ (\"All\" is a regex)"));
                }
            }
        }
    }
    problems
}

#[test]
fn dashboards_are_importable_and_every_panel_is_complete() {
    let files = dashboard_files();
    assert!(files.len() >= 2, "{files:?}");
    let mut uids = BTreeSet::new();
    let mut all = Vec::new();
    for path in &files {
        let dashboard = dashboards::load(path);
        assert!(
            uids.insert(dashboard["uid"].to_string()),
            "{}: uid {} is taken",
            name(path),
            dashboard["uid"]
        );
        all.extend(problems(&name(path), &dashboard));
    }
    assert!(all.is_empty(), "{}", all.join("\n"));
}

/// Queries that would not add up over many pods: a series not under an aggregation, a
/// quantile of buckets not summed by `le`, a query without the `instance` filter.
fn per_pod_queries(dashboard: &Value) -> Vec<String> {
    let aggregated = regex::Regex::new(r"^\(*\s*(sum|max|min|count|avg|histogram_quantile)\b").unwrap();
    let mut found = Vec::new();
    for query in dashboards::panel_queries(dashboard) {
        let expr = query.expr.as_str();
        if !aggregated.is_match(expr) {
            found.push(format!("not aggregated across pods: {expr}"));
        }
        if expr.contains("histogram_quantile") && !expr.contains("sum by (le") {
            found.push(format!("buckets not summed by le before the quantile: {expr}"));
        }
        if !expr.contains("instance=~\"$instance\"") {
            found.push(format!("no instance filter: {expr}"));
        }
    }
    found
}

#[test]
fn every_query_aggregates_across_pods_with_an_instance_filter() {
    for path in dashboard_files() {
        let dashboard = dashboards::load(&path);
        assert!(dashboards::variable_names(&dashboard).contains(&"instance".to_owned()), "{}", name(&path));
        assert_eq!(per_pod_queries(&dashboard), Vec::<String>::new(), "{}", name(&path));
    }
    let mut dashboard = dashboards::load(&common::repo_root().join("dashboards").join(CLIENT));
    let mut panels =
        dashboard["panels"].as_array_mut().unwrap().iter_mut().filter(|panel| panel["type"] != "row");
    panels.next().unwrap()["targets"][0]["expr"] =
        r#"histogram_quantile(0.99, rate(streamstorm_client_message_latency_seconds_bucket[1m]))"#.into();
    panels.next().unwrap()["targets"][0]["expr"] =
        r#"streamstorm_client_streams_active{instance=~"$instance"}"#.into();
    let found = per_pod_queries(&dashboard).join("\n");
    for expected in ["buckets not summed by le", "no instance filter", "not aggregated across pods"] {
        assert!(found.contains(expected), "{expected:?} not reported in:\n{found}");
    }
}

#[test]
fn a_dashboard_missing_its_datasource_unit_or_legend_is_reported() {
    let mut dashboard = dashboards::load(&common::repo_root().join("dashboards").join(SERVER));
    assert!(problems(SERVER, &dashboard).is_empty());
    let panel =
        dashboard["panels"].as_array_mut().unwrap().iter_mut().find(|panel| panel["type"] != "row").unwrap();
    panel["datasource"] = Value::Null;
    panel["fieldConfig"]["defaults"]["unit"] = Value::Null;
    panel["targets"][0]["legendFormat"] = "".into();
    panel["targets"][0]["expr"] = r#"sum(streamstorm_streams_active{method="$method", job=~"$job"})"#.into();
    let found = problems(SERVER, &dashboard).join("\n");
    for expected in [
        "data source is not",
        "no unit",
        "no legendFormat",
        "$job is not a dashboard variable",
        "not matched with =~",
    ] {
        assert!(found.contains(expected), "{expected:?} not reported in:\n{found}");
    }
}

/// The `streamstorm_…` metric names a dashboard queries, without histogram suffixes.
fn metrics_used(dashboard: &Value) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for query in dashboards::panel_queries(dashboard) {
        for (at, _) in query.expr.match_indices("streamstorm_") {
            let name: String =
                query.expr[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let family = name.strip_suffix("_bucket").unwrap_or(&name).to_owned();
            used.insert(family);
        }
    }
    used
}

#[test]
fn the_server_dashboard_covers_every_server_metric_and_queries_nothing_else() {
    let dashboard = dashboards::load(&common::repo_root().join("dashboards").join(SERVER));
    let used = metrics_used(&dashboard);
    // Per-stream series are for a few streams picked by the profile, not for a dashboard.
    let exported: BTreeSet<String> = [
        names::STREAMS_ACTIVE,
        names::STREAMS_STARTED,
        names::STREAMS_ENDED,
        names::STREAM_DURATION,
        names::STREAM_MESSAGES,
        names::STREAM_BYTES,
        names::MESSAGES_SENT,
        names::MESSAGES_RECEIVED,
        names::MESSAGE_SIZE,
        names::FAULTS_INJECTED,
        names::INJECTED_LATENCY,
        names::CONNECTIONS_ACTIVE,
        names::CONNECTIONS_ACCEPTED,
        names::CONNECTIONS_CLOSED,
        names::CHAOS_PHASE,
        names::CHAOS_ENABLED,
        names::PROFILE_RELOADS,
        names::STUB_RELOADS,
        names::RUNTIME_TASKS_ALIVE,
        names::PROCESS_OPEN_FDS,
        names::PROCESS_RESIDENT_MEMORY,
        // The client judge's; `PEER_CLIENT_ATTEMPTS`, labelled by client, is left out like the
        // per-stream series.
        names::PEER_ATTEMPTS,
        names::PEER_CONNECTIONS,
        names::PEER_CLIENTS_TRACKED,
        names::PEER_CLIENTS_DROPPED,
        names::PEER_HOT_LOOPS,
        names::PEER_RECONNECT_DELAY,
        names::PEER_RETRY_GAP,
        names::PEER_RECOVERY,
        names::PEER_DEAD_PEER_DETECTION,
        names::PEER_RESUMES,
        names::PEER_RETRY_INFO,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let unused: Vec<_> = exported.difference(&used).collect();
    let unknown: Vec<_> = used.difference(&exported).collect();
    assert!(unused.is_empty(), "server metrics on no panel: {unused:?}");
    assert!(unknown.is_empty(), "panels query metrics the server does not export: {unknown:?}");
}

#[test]
fn the_client_dashboard_queries_only_client_metrics() {
    let dashboard = dashboards::load(&common::repo_root().join("dashboards").join(CLIENT));
    let used = metrics_used(&dashboard);
    assert!(used.len() >= 8, "{used:?}");
    let foreign: Vec<_> = used.iter().filter(|name| !name.starts_with("streamstorm_client_")).collect();
    assert!(foreign.is_empty(), "{foreign:?}");
}

fn yaml(path: &str) -> Value {
    let path = common::repo_root().join("dashboards").join(path);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn provisioning_examples_are_what_grafana_expects() {
    let datasources = yaml("provisioning/datasources/prometheus.yaml");
    assert_eq!(datasources["apiVersion"], 1);
    let source = &datasources["datasources"][0];
    assert_eq!(source["type"], "prometheus", "{datasources}");
    assert!(source["url"].as_str().is_some_and(|url| url.starts_with("http")), "{datasources}");
    assert!(source["name"].as_str().is_some_and(|name| !name.is_empty()), "{datasources}");

    let providers = yaml("provisioning/dashboards/streamstorm.yaml");
    assert_eq!(providers["apiVersion"], 1);
    let provider = &providers["providers"][0];
    assert_eq!(provider["type"], "file", "{providers}");
    assert!(provider["options"]["path"].as_str().is_some_and(|path| path.starts_with('/')), "{providers}");
}

#[test]
fn the_readme_describes_every_dashboard_and_panel() {
    let readme = std::fs::read_to_string(common::repo_root().join("dashboards/README.md")).unwrap();
    for path in dashboard_files() {
        let file = name(&path);
        assert!(readme.contains(&file), "dashboards/README.md does not mention {file}");
        for panel in dashboards::panels(&dashboards::load(&path)) {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(
                readme.contains(&format!("**{title}**")),
                "dashboards/README.md does not describe {file}'s panel '{title}'"
            );
        }
    }
}
