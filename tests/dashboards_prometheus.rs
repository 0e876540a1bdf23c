//! The dashboards show data: a real Prometheus (from `scripts/setup-prometheus.sh`), on a free
//! loopback port with its own storage, scrapes streamstorm every second while chaos traffic runs;
//! then every panel query of every dashboard in [`DASHBOARDS`] — Grafana's variables replaced as
//! if every value were selected — and every template variable's `label_values` must return data.
//!
//! Beside the chaos server and its load client, a server judging reconnecting subscribers
//! (Python grpcio, Node grpc-js) feeds the panels on the clients under test.
//!
//! What is scraped is a table too ([`SOURCES`]): to check another dashboard, add its file to
//! `DASHBOARDS` and, if its metrics come from another process, a source starting that process.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::chaos_traffic::{ChaosServer, LoadClient, Traffic};
use common::dashboards;
use common::prometheus::{PrometheusServer, ScrapeTarget};
use futures::future::BoxFuture;

/// The dashboards whose every query must return data from the sources below.
const DASHBOARDS: &[&str] = &["dashboards/streamstorm-server.json", "dashboards/streamstorm-client.json"];

/// The processes Prometheus scrapes, started in order; each may use those started before it
/// (a load client needs a server's address).
const SOURCES: &[Source] = &[server_under_chaos, load_client, judged_subscribers];

/// The same, with a server that has had no reload and has no phase timeline: every counter
/// and gauge a panel reads must exist before its first event.
const SOURCES_BEFORE_RELOADS_AND_PHASES: &[Source] =
    &[server_without_reloads_or_phases, load_client, judged_subscribers];

/// How long the scraped data may take to cover every query.
const DATA_TIMEOUT: Duration = Duration::from_secs(40);

type Source = for<'a> fn(&'a [Running]) -> BoxFuture<'a, Running>;

/// A scraped process, kept running with its traffic until dropped.
struct Running {
    target: ScrapeTarget,
    /// Its gRPC address, when it serves.
    grpc: Option<SocketAddr>,
    _keep: Box<dyn Send>,
}

/// `serve` under the chaos profile of `common::chaos_traffic`, its profile and stub reloaded
/// (so reloads are counted), with its traffic running.
fn server_under_chaos(_started: &[Running]) -> BoxFuture<'_, Running> {
    Box::pin(async {
        let server = ChaosServer::start().await;
        server.reload_inputs().await;
        let traffic = Traffic::start(&server).await;
        Running {
            target: ScrapeTarget { job: "streamstorm-server".into(), metrics: server.process.metrics },
            grpc: Some(server.process.addr),
            _keep: Box::new((traffic, server)),
        }
    })
}

/// `serve` under the chaos profile without its phase timeline, never reloaded, with traffic.
fn server_without_reloads_or_phases(_started: &[Running]) -> BoxFuture<'_, Running> {
    Box::pin(async {
        let server = ChaosServer::start_without_phases().await;
        let traffic = Traffic::start(&server).await;
        Running {
            target: ScrapeTarget { job: "streamstorm-server".into(), metrics: server.process.metrics },
            grpc: Some(server.process.addr),
            _keep: Box::new((traffic, server)),
        }
    })
}

/// `serve` judging reconnecting Python and Node subscribers through outages, cuts and
/// blackholes (see [`common::judge::peer_traffic`]), so the panels on the clients under test
/// have data.
fn judged_subscribers(_started: &[Running]) -> BoxFuture<'_, Running> {
    Box::pin(async {
        let run = common::judge::peer_traffic().await;
        Running {
            target: ScrapeTarget { job: "streamstorm-server".into(), metrics: run.served.metrics },
            grpc: Some(run.served.addr),
            _keep: Box::new(run),
        }
    })
}

/// The load client driving the chaos server (see [`LoadClient`]).
fn load_client(started: &[Running]) -> BoxFuture<'_, Running> {
    let server = started[0].grpc.expect("the server source serves gRPC");
    Box::pin(async move {
        let client = LoadClient::start(server).await;
        Running {
            target: ScrapeTarget { job: "streamstorm-client".into(), metrics: client.process.metrics },
            grpc: None,
            _keep: Box::new(client),
        }
    })
}

/// One query a dashboard runs.
#[derive(Debug, Clone)]
struct Check {
    /// Dashboard, panel and target, or variable.
    what: String,
    query: Query,
}

#[derive(Debug, Clone)]
enum Query {
    /// A panel target: must return a series with a finite value.
    Panel(String),
    /// A template variable's `label_values(SELECTOR, LABEL)`: must return a value.
    LabelValues { selector: String, label: String },
}

impl Check {
    /// Whether the query returns data yet; an error is a query Prometheus refused.
    async fn has_data(&self, prometheus: &PrometheusServer) -> Result<bool, String> {
        Ok(match &self.query {
            Query::Panel(promql) => {
                prometheus.query(promql).await?.iter().any(|sample| sample.value.is_finite())
            }
            Query::LabelValues { selector, label } => {
                !prometheus.label_values(selector, label).await?.is_empty()
            }
        })
    }
}

/// Every query of the dashboards in [`DASHBOARDS`].
fn checks() -> Vec<Check> {
    let mut checks = Vec::new();
    for file in DASHBOARDS {
        let dashboard = dashboards::load(&common::repo_root().join(file));
        let panels = dashboards::panel_queries(&dashboard);
        assert!(!panels.is_empty(), "{file} has no panel queries");
        for panel in panels {
            let promql = dashboards::substitute(&panel.expr);
            assert!(!promql.contains('$'), "{file}: a variable is left in {promql}");
            checks.push(Check {
                what: format!("{file}: panel '{}' target {}", panel.panel, panel.ref_id),
                query: Query::Panel(promql),
            });
        }
        for (name, query) in dashboards::query_variables(&dashboard) {
            let (selector, label) = dashboards::label_values(&query)
                .unwrap_or_else(|| panic!("{file}: variable {name} is not label_values(…): {query}"));
            checks.push(Check {
                what: format!("{file}: variable ${name}"),
                query: Query::LabelValues { selector, label },
            });
        }
    }
    checks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    every_query_returns_data(SOURCES).await;
}

/// Reload counters and the phase gauge are registered at start (at 0, and phase `none` at 1),
/// so their panels show 0 rather than "No data" on a server with no reloads and no phases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_before_any_reload_or_phase() {
    every_query_returns_data(SOURCES_BEFORE_RELOADS_AND_PHASES).await;
}

async fn every_query_returns_data(sources: &[Source]) {
    common::prometheus::binary("prometheus");
    let started = Instant::now();
    let mut running: Vec<Running> = Vec::new();
    for source in sources {
        let source = source(&running).await;
        running.push(source);
    }
    let targets: Vec<ScrapeTarget> = running.iter().map(|source| source.target.clone()).collect();
    let prometheus = PrometheusServer::start(&targets).await;
    let ready = started.elapsed();

    let mut pending = checks();
    let total = pending.len();
    let deadline = tokio::time::Instant::now() + DATA_TIMEOUT;
    loop {
        let mut without_data = Vec::new();
        for check in pending {
            match check.has_data(&prometheus).await {
                Ok(true) => {}
                Ok(false) => without_data.push(check),
                Err(error) => panic!("{}: Prometheus refused {:?}: {error}", check.what, check.query),
            }
        }
        pending = without_data;
        if pending.is_empty() || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !pending.is_empty() {
        let up = prometheus.query("up").await;
        let listed: Vec<String> =
            pending.iter().map(|check| format!("{}: {:?}", check.what, check.query)).collect();
        panic!(
            "{} of {total} queries returned no data after {DATA_TIMEOUT:?}:\n{}\nup: {up:?}\nPrometheus log:\n{}",
            pending.len(),
            listed.join("\n"),
            prometheus.log()
        );
    }
    let scraped: Vec<String> = running
        .iter()
        .map(|source| {
            format!("{} (metrics {}, gRPC {:?})", source.target.job, source.target.metrics, source.grpc)
        })
        .collect();
    eprintln!(
        "{total} dashboard queries returned data from {}; ready after {ready:?}, all data after {:?}",
        scraped.join(", "),
        started.elapsed()
    );
}
