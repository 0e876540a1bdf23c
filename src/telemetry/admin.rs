//! The chaos admin endpoint, for soak tests that toggle outages on cue:
//!
//! - `GET /admin/chaos`: the active plan (rules, phases, the phase in force), whether chaos is
//!   on, and the faults injected so far;
//! - `POST /admin/chaos/enable`, `POST /admin/chaos/disable`;
//! - `POST /admin/phase/NAME` pins a phase; `DELETE /admin/phase` lets the clock decide again.
//!
//! Changes are refused (403) unless the profile sets `metrics.admin: read_write`.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::endpoint::{TelemetryState, respond, respond_json};
use super::names;
use crate::chaos::plan::{Faults, MethodMatch};
use crate::chaos::tally::NO_CODE_LABEL;
use crate::chaos::{ChaosEngine, FaultPlan};
use crate::proto::status::code_name;

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

pub fn handle(state: &TelemetryState, method: &Method, path: &str) -> Response<Full<Bytes>> {
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
            respond_json(StatusCode::OK, &describe(chaos))
        }
        (&Method::POST, path) if path.starts_with("/admin/phase/") => {
            let name = &path["/admin/phase/".len()..];
            if chaos.pin_phase(Some(name)) {
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
        "rules": rules(&plan),
        "phases": plan.phases.iter().map(|phase| json!({
            "name": phase.name,
            "duration": humantime::format_duration(phase.duration).to_string(),
            "faults": kinds_set(&phase.faults),
        })).collect::<Vec<_>>(),
        "faults_injected": injected,
    })
}

fn rules(plan: &FaultPlan) -> Vec<Value> {
    plan.rules
        .iter()
        .map(|rule| {
            let matcher = match &rule.matcher {
                MethodMatch::All => "*".to_owned(),
                MethodMatch::Service(service) => format!("{service}/*"),
                MethodMatch::Method { service, method } => format!("{service}/{method}"),
            };
            json!({ "match": matcher, "faults": kinds_set(&rule.faults) })
        })
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
