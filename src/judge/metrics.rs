//! The judge's Prometheus series (`streamstorm_peer_`), registered once at zero so dashboards
//! see every series from the start; no label is formatted per call.

use metrics::{Counter, Gauge, Histogram};

use super::resume::ResumeClass;
use crate::config::clients::ending_names;
use crate::telemetry::names;

pub(super) struct PeerMetrics {
    /// By ending, in the order of [`ending_names`].
    reconnect_delay: Vec<(&'static str, Histogram)>,
    pub retry_gap: Histogram,
    pub recovery: Histogram,
    pub detection: Histogram,
    pub attempts: Counter,
    pub connections: Counter,
    resumes: [Counter; 4],
    pub hot_loops: Counter,
    retry_info: [Counter; 2],
    pub tracked: Gauge,
    pub dropped: Counter,
}

impl PeerMetrics {
    pub fn register() -> Self {
        let counter = |name: &'static str| {
            let counter = metrics::counter!(name);
            counter.increment(0);
            counter
        };
        let labelled = |name: &'static str, label: &'static str, value: &'static str| {
            let counter = metrics::counter!(name, label => value);
            counter.increment(0);
            counter
        };
        let tracked = metrics::gauge!(names::PEER_CLIENTS_TRACKED);
        tracked.set(0.0);
        Self {
            reconnect_delay: ending_names()
                .map(|ending| (ending, metrics::histogram!(names::PEER_RECONNECT_DELAY, "ending" => ending)))
                .collect(),
            retry_gap: metrics::histogram!(names::PEER_RETRY_GAP),
            recovery: metrics::histogram!(names::PEER_RECOVERY),
            detection: metrics::histogram!(names::PEER_DEAD_PEER_DETECTION),
            attempts: counter(names::PEER_ATTEMPTS),
            connections: counter(names::PEER_CONNECTIONS),
            resumes: ResumeClass::ALL.map(|class| labelled(names::PEER_RESUMES, "class", class.name())),
            hot_loops: counter(names::PEER_HOT_LOOPS),
            retry_info: [
                labelled(names::PEER_RETRY_INFO, "honoured", "false"),
                labelled(names::PEER_RETRY_INFO, "honoured", "true"),
            ],
            tracked,
            dropped: counter(names::PEER_CLIENTS_DROPPED),
        }
    }

    /// The reconnect delay series for an ending label.
    pub fn reconnect_delay(&self, ending: &str) -> Option<&Histogram> {
        self.reconnect_delay.iter().find(|(name, _)| *name == ending).map(|(_, histogram)| histogram)
    }

    pub fn resume(&self, class: ResumeClass) -> &Counter {
        &self.resumes[ResumeClass::ALL.iter().position(|known| *known == class).unwrap_or(0)]
    }

    pub fn retry_info(&self, honoured: bool) -> &Counter {
        &self.retry_info[usize::from(honoured)]
    }
}
