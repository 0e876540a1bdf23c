//! The chaos admin endpoint, for soak tests that toggle outages on cue:
//!
//! - `GET /admin/chaos`: the active plan (rules, phases, the phase in force), whether chaos is
//!   on, and the faults injected so far;
//! - `POST /admin/chaos/enable`, `POST /admin/chaos/disable`;
//! - `POST /admin/phase/NAME` pins a phase (a phase change: its `on_enter` cuts live traffic);
//!   `DELETE /admin/phase` lets the clock decide again;
//! - `POST /admin/disconnect` cuts live streams or connections on cue (the body says how, as a
//!   phase's `on_enter` does) and answers how many it cut.
//!
//! Changes are refused (403) unless the profile sets `metrics.admin: read_write`.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tracing::info;

use super::endpoint::{TelemetryState, respond, respond_json};
use super::names;
use crate::chaos::plan::{Faults, LiveCut};
use crate::chaos::tally::NO_CODE_LABEL;
use crate::chaos::{ChaosEngine, FaultPlan, PhaseInForce};
use crate::proto::status::code_name;

/// The largest request body read (a live cut is a few dozen bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a phase change waits to be published before the answer shows it.
const PUBLISH_WAIT: Duration = Duration::from_secs(1);

/// Sets the phase and on/off gauges from the engine's state (called at each scrape); without
/// an engine, no phase is in force and chaos is off.
pub fn record_chaos_state(chaos: Option<&ChaosEngine>) {
    let Some(chaos) = chaos else {
        metrics::gauge!(names::CHAOS_PHASE, "phase" => names::NO_PHASE).set(1.0);
        metrics::gauge!(names::CHAOS_ENABLED).set(0.0);
        return;
    };
    let plan = chaos.plan();
    let current = chaos.current_phase(&plan);
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    for (index, phase) in plan.phases.iter().enumerate() {
        metrics::gauge!(names::CHAOS_PHASE, "phase" => phase.name.clone()).set(flag(current == Some(index)));
    }
    metrics::gauge!(names::CHAOS_PHASE, "phase" => names::NO_PHASE).set(flag(current.is_none()));
    metrics::gauge!(names::CHAOS_ENABLED).set(flag(chaos.enabled()));
}

pub async fn handle(state: &TelemetryState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let (method, path) = (&method, path.as_str());
    let Some(chaos) = &state.chaos else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "no chaos engine runs in this process\n");
    };
    let changing = *method != Method::GET;
    if changing && !state.admin_writable {
        return respond(
            StatusCode::FORBIDDEN,
            "text/plain",
            "the admin endpoint is read-only: set `metrics.admin: read_write` in the profile to allow changes\n",
        );
    }
    match (method, path) {
        (&Method::GET, "/admin/chaos") => respond_json(StatusCode::OK, &describe(chaos)),
        (&Method::POST, "/admin/disconnect") => disconnect(state, request).await,
        (&Method::POST, "/admin/chaos/enable") => {
            chaos.set_enabled(true);
            respond_json(StatusCode::OK, &describe(chaos))
        }
        (&Method::POST, "/admin/chaos/disable") => {
            chaos.set_enabled(false);
            respond_json(StatusCode::OK, &describe(chaos))
        }
        (&Method::DELETE, "/admin/phase") => {
            chaos.pin_phase(None);
            published(chaos).await;
            respond_json(StatusCode::OK, &describe(chaos))
        }
        (&Method::POST, path) if path.starts_with("/admin/phase/") => {
            let name = &path["/admin/phase/".len()..];
            if chaos.pin_phase(Some(name)) {
                published(chaos).await;
                respond_json(StatusCode::OK, &describe(chaos))
            } else {
                let known: Vec<String> = chaos.plan().phases.iter().map(|phase| phase.name.clone()).collect();
                respond(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    format!("no phase named '{name}' (phases: {})\n", known.join(", ")),
                )
            }
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", format!("no admin route for {method} {path}\n")),
    }
}

/// Waits (briefly) for the timeline task to publish the phase the engine now has in force.
async fn published(chaos: &ChaosEngine) {
    let (current, pinned) = (chaos.current_phase(&chaos.plan()), chaos.pinned_phase());
    let mut changes = chaos.phase_changes();
    let caught_up = |phase: &PhaseInForce| {
        phase.index == current && pinned.is_some() == (phase.index.is_some() && phase.until.is_none())
    };
    let _ = tokio::time::timeout(PUBLISH_WAIT, changes.wait_for(caught_up)).await;
}

/// `POST /admin/disconnect`: the body read as a live cut, carried out on the server's traffic.
async fn disconnect(state: &TelemetryState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(server) = &state.server else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "no server runs in this process\n");
    };
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            return respond(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("cannot read the body: {error}\n"),
            );
        }
    };
    let text = String::from_utf8_lossy(&body);
    let cut = match crate::config::live_cut_request(&text) {
        Ok(cut) => cut,
        Err(problems) => {
            let usage = r#"expected {"mode": "goaway|tcp_reset|reset_stream|blackhole", "method": "pkg.Svc/Method", "fraction": "50%"} or {"fail": {"code": "UNAVAILABLE", "message": "..."}}"#;
            return respond(StatusCode::BAD_REQUEST, "text/plain", format!("{problems}\n{usage}\n"));
        }
    };
    let count = server.cuts.cut(&cut);
    info!(action = %cut.action.describe(), streams = count.streams, connections = count.connections, "Cut live traffic on request.");
    respond_json(StatusCode::OK, &json!({"streams": count.streams, "connections": count.connections}))
}

/// The phase in force as published: since when, and until when it is scheduled.
fn phase_in_force(chaos: &ChaosEngine) -> Value {
    let phase = chaos.phase_changes().borrow().clone();
    let wall = |at: std::time::Instant| {
        let offset = at.saturating_duration_since(phase.since);
        humantime::format_rfc3339_millis(phase.since_wall + offset).to_string()
    };
    json!({
        "name": phase.name,
        "outage": phase.outage,
        "pinned": phase.index.is_some() && phase.until.is_none(),
        "started_at": wall(phase.since),
        "ends_at": phase.until.map(wall),
    })
}

/// A live cut as JSON, as the profile writes it.
fn live_cut(cut: &LiveCut) -> Value {
    json!({
        "action": cut.action.describe(),
        "fraction": cut.fraction,
        "method": cut.matcher.to_string(),
    })
}

/// The engine's state as JSON.
pub fn describe(chaos: &ChaosEngine) -> Value {
    let plan = chaos.plan();
    let current = chaos.current_phase(&plan);
    let injected: Vec<Value> = chaos
        .tally()
        .snapshot()
        .into_iter()
        .map(|count| {
            json!({
                "kind": count.kind.name(),
                "code": count.code.map_or(NO_CODE_LABEL, code_name),
                "count": count.count,
            })
        })
        .collect();
    json!({
        "enabled": chaos.enabled(),
        "seed": plan.seed,
        "header_faults": plan.header_faults,
        "phase": current.and_then(|index| plan.phases.get(index)).map(|phase| phase.name.clone()),
        "phase_pinned": chaos.pinned_phase().is_some(),
        "phase_in_force": phase_in_force(chaos),
        "rules": rules(&plan),
        "phases": plan.phases.iter().map(|phase| json!({
            "name": phase.name,
            "duration": humantime::format_duration(phase.duration).to_string(),
            "faults": kinds_set(&phase.faults),
            "outage": phase.is_outage(),
            "on_enter": phase.on_enter.as_ref().map(live_cut),
        })).collect::<Vec<_>>(),
        "faults_injected": injected,
    })
}

fn rules(plan: &FaultPlan) -> Vec<Value> {
    plan.rules
        .iter()
        .map(|rule| json!({ "match": rule.matcher.to_string(), "faults": kinds_set(&rule.faults) }))
        .collect()
}

/// The fault kinds a rule or phase sets.
fn kinds_set(faults: &Faults) -> Vec<&'static str> {
    let kinds = [
        ("latency", faults.latency.is_some()),
        ("abort", faults.abort.is_some()),
        ("fail", faults.fail.is_some()),
        ("disconnect", faults.disconnect.is_some()),
        ("message_cap", faults.message_cap.is_some()),
        ("inbound_cap", faults.inbound_cap.is_some()),
        ("stream_timeout", faults.stream_timeout.is_some()),
        ("rate_limit", faults.rate_limit.is_some()),
    ];
    kinds.into_iter().filter(|(_, set)| *set).map(|(kind, _)| kind).collect()
}
