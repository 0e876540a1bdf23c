//! The phase timeline: which phase of the plan is in force (by the clock from server start, or
//! pinned by hand), when it began and when it is scheduled to end, and the task that follows
//! the clock — at each change it logs, counts `streamstorm_phase_changes_total{phase}`, has
//! the phase's `on_enter` carried out, and publishes the change ([`ChaosEngine::phase_changes`])
//! for whoever follows phases (the simulator's report, the judge).
//!
//! Carrying out `on_enter` is the server's: the task is handed a function for it, so the
//! timeline knows nothing of streams or connections.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::ChaosEngine;
use super::plan::{FaultPlan, LiveCut, Phase};
use crate::telemetry::names;

/// The phase in force, as published at each change.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseInForce {
    /// Index into the plan's phases; `None` when the plan has no phases.
    pub index: Option<usize>,
    pub name: Option<String>,
    /// Whether the phase is an outage ([`super::plan::Phase::is_outage`]).
    pub outage: bool,
    /// When the phase began.
    pub since: std::time::Instant,
    /// The same, on the wall clock.
    pub since_wall: SystemTime,
    /// When the phase is scheduled to end; `None` when pinned or without phases.
    pub until: Option<std::time::Instant>,
}

/// Where the clock is in the timeline: the phase and the span it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseSlot {
    pub index: usize,
    pub since: Instant,
    pub until: Instant,
}

/// The engine's phase state.
pub(super) struct PhaseClock {
    /// Phases count from here (server start).
    started: Instant,
    /// A phase chosen by hand (admin endpoint) instead of the clock.
    pinned: Mutex<Option<usize>>,
    /// Bumped whenever a phase is pinned or released or the plan is replaced, so the timeline
    /// task looks again.
    edits: watch::Sender<u64>,
    published: watch::Sender<PhaseInForce>,
}

impl PhaseClock {
    pub(super) fn new(plan: &FaultPlan) -> Self {
        let started = Instant::now();
        let first = plan.phases.first();
        let published = PhaseInForce {
            index: first.map(|_| 0),
            name: first.map(|phase| phase.name.clone()),
            outage: first.is_some_and(|phase| phase.is_outage()),
            since: started.into_std(),
            since_wall: SystemTime::now(),
            until: first.and_then(|phase| started.checked_add(phase.duration)).map(Instant::into_std),
        };
        Self {
            started,
            pinned: Mutex::new(None),
            edits: watch::Sender::new(0),
            published: watch::Sender::new(published),
        }
    }

    fn pinned(&self) -> std::sync::MutexGuard<'_, Option<usize>> {
        self.pinned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the pinned phase and tells the timeline task.
    pub(super) fn pin(&self, index: Option<usize>) {
        *self.pinned() = index;
        self.edits.send_modify(|edits| *edits += 1);
    }
}

impl ChaosEngine {
    /// Pins the named phase (or lets the clock decide again with `None`); false if unknown.
    /// Pinning is a phase change: the timeline task carries out the phase's `on_enter`.
    pub fn pin_phase(&self, name: Option<&str>) -> bool {
        let index = match name {
            None => None,
            Some(name) => match self.plan().phases.iter().position(|phase| phase.name == name) {
                Some(index) => Some(index),
                None => return false,
            },
        };
        self.phases.pin(index);
        true
    }

    /// The phase chosen by hand, if any.
    pub fn pinned_phase(&self) -> Option<usize> {
        *self.phases.pinned()
    }

    /// The phase in force now, by index into the plan's phases.
    pub fn current_phase(&self, plan: &FaultPlan) -> Option<usize> {
        self.pinned_phase().or_else(|| self.phase_slot(plan, Instant::now()).map(|slot| slot.index))
    }

    /// Where the clock puts `now` in the plan's repeating timeline; `None` without phases.
    pub fn phase_slot(&self, plan: &FaultPlan, now: Instant) -> Option<PhaseSlot> {
        // Saturating: phases may each be as long as a duration can be, and a cycle longer
        // than that never comes round anyway.
        let cycle =
            plan.phases.iter().fold(Duration::ZERO, |total, phase| total.saturating_add(phase.duration));
        if cycle.is_zero() {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.phases.started);
        let offset = Duration::from_nanos((elapsed.as_nanos() % cycle.as_nanos()) as u64);
        let mut since = now - offset;
        for (index, phase) in plan.phases.iter().enumerate() {
            let until = since.checked_add(phase.duration).unwrap_or(now + Duration::from_secs(86_400 * 365));
            if until > now {
                return Some(PhaseSlot { index, since, until });
            }
            since = until;
        }
        None
    }

    /// Follows phase changes: the current value, and a notification at each change (the clock
    /// moving on, a phase pinned or released).
    pub fn phase_changes(&self) -> watch::Receiver<PhaseInForce> {
        self.phases.published.subscribe()
    }
}

/// What the timeline task last announced.
#[derive(PartialEq)]
struct Announced {
    index: Option<usize>,
    pinned: bool,
    until: Option<Instant>,
}

/// Follows the timeline until `shutdown`: sleeps to the next boundary (or until a phase is
/// pinned or released), and at each change logs it, counts it, calls `on_enter` with the new
/// phase's live cut (while chaos is on), and publishes it.
pub async fn run_timeline(engine: &ChaosEngine, on_enter: impl Fn(&LiveCut), shutdown: CancellationToken) {
    let mut edits = engine.phases.edits.subscribe();
    // Each phase's series starts at 0, so a dashboard shows 0 rather than no data before it.
    for phase in &engine.plan().phases {
        metrics::counter!(names::PHASE_CHANGES, "phase" => phase.name.clone()).increment(0);
    }
    let mut last: Option<Announced> = None;
    let mut pin_edited = false;
    loop {
        edits.borrow_and_update();
        let plan = engine.plan();
        let now = Instant::now();
        let pinned = engine.pinned_phase();
        let slot = engine.phase_slot(&plan, now);
        let (index, since, until) = match pinned {
            Some(index) => (Some(index), now, None),
            None => (
                slot.map(|slot| slot.index),
                slot.map_or(now, |slot| slot.since),
                slot.map(|slot| slot.until),
            ),
        };
        let announced = Announced { index, pinned: pinned.is_some(), until };
        // A pin is a change even to the phase in force; releasing one to the same phase is not.
        let entered =
            last.as_ref().is_none_or(|last| last.index != index || (pinned.is_some() && pin_edited));
        if last.as_ref() != Some(&announced) || entered {
            let phase = index.and_then(|index| plan.phases.get(index));
            if let Some(phase) = phase.filter(|_| entered) {
                enter(engine, phase, now, until, &on_enter);
            }
            engine.phases.published.send_replace(PhaseInForce {
                index,
                name: phase.map(|phase| phase.name.clone()),
                outage: phase.is_some_and(|phase| phase.is_outage()),
                since: since.into_std(),
                since_wall: SystemTime::now() - now.saturating_duration_since(since),
                until: until.map(Instant::into_std),
            });
            last = Some(announced);
        }
        let next = async {
            match until {
                Some(until) => tokio::time::sleep_until(until).await,
                None => std::future::pending().await,
            }
        };
        pin_edited = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = edits.changed() => true,
            _ = next => false,
        };
    }
}

/// `phase` begins at `now`, scheduled to end at `until` (`None`: pinned): logged, counted, and
/// its `on_enter` carried out while chaos is on.
fn enter(
    engine: &ChaosEngine,
    phase: &Phase,
    now: Instant,
    until: Option<Instant>,
    on_enter: &impl Fn(&LiveCut),
) {
    let until = until.map(|until| {
        let wall = SystemTime::now() + until.saturating_duration_since(now);
        humantime::format_rfc3339_millis(wall).to_string()
    });
    let (name, outage) = (phase.name.as_str(), phase.is_outage());
    info!(phase = %name, outage, until = until.as_deref().unwrap_or("pinned"), "Phase began.");
    metrics::counter!(names::PHASE_CHANGES, "phase" => name.to_owned()).increment(1);
    if let Some(cut) = phase.on_enter.as_ref().filter(|_| engine.enabled()) {
        on_enter(cut);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::chaos::plan::{DisconnectMode, Faults, LiveAction, MethodMatch};

    fn phase(name: &str, millis: u64, on_enter: Option<LiveCut>) -> Phase {
        Phase {
            name: name.into(),
            duration: Duration::from_millis(millis),
            faults: Faults::default(),
            on_enter,
        }
    }

    /// Steady 1.5 s, then an outage of 1 s that resets every live connection as it begins.
    fn engine() -> Arc<ChaosEngine> {
        let cut = LiveCut {
            action: LiveAction::Disconnect(DisconnectMode::TcpReset),
            fraction: 1.0,
            matcher: MethodMatch::All,
        };
        let phases = vec![phase("steady", 1500, None), phase("outage", 1000, Some(cut))];
        Arc::new(ChaosEngine::new(FaultPlan { phases, ..FaultPlan::default() }))
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_places_each_instant_in_its_phase() {
        let engine = engine();
        let (plan, start) = (engine.plan(), Instant::now());
        let at = |millis: u64| engine.phase_slot(&plan, start + Duration::from_millis(millis)).unwrap();
        let span = |slot: PhaseSlot| (slot.index, slot.since - start, slot.until - start);
        let ms = Duration::from_millis;
        assert_eq!(span(at(0)), (0, ms(0), ms(1500)));
        assert_eq!(span(at(1499)), (0, ms(0), ms(1500)));
        assert_eq!(span(at(1500)), (1, ms(1500), ms(2500)));
        assert_eq!(span(at(2600)), (0, ms(2500), ms(4000)));
        assert!(plan.phases[1].is_outage() && !plan.phases[0].is_outage());
    }

    #[tokio::test(start_paused = true)]
    async fn each_change_runs_on_enter_and_is_published() {
        let engine = engine();
        let entered = Arc::new(Mutex::new(Vec::new()));
        let record = entered.clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let (engine, shutdown) = (engine.clone(), shutdown.clone());
            async move {
                let on_enter =
                    |cut: &LiveCut| record.lock().unwrap().push((Instant::now(), cut.action.describe()));
                run_timeline(&engine, on_enter, shutdown).await;
            }
        });
        let start = Instant::now();
        let mut changes = engine.phase_changes();
        let mut seen = Vec::new();
        while seen.len() < 4 {
            changes.changed().await.unwrap();
            let phase = changes.borrow_and_update().clone();
            seen.push((phase.name.clone().unwrap(), phase.outage, Instant::now() - start));
            let until = phase.until.expect("the clock schedules the end");
            assert_eq!(
                until - phase.since,
                if phase.outage { Duration::from_secs(1) } else { Duration::from_millis(1500) }
            );
        }
        let at = |millis: u64| Duration::from_millis(millis);
        assert_eq!(
            seen,
            [
                ("steady".to_owned(), false, at(0)),
                ("outage".to_owned(), true, at(1500)),
                ("steady".to_owned(), false, at(2500)),
                ("outage".to_owned(), true, at(4000)),
            ]
        );
        let times: Vec<Duration> = entered.lock().unwrap().iter().map(|(when, _)| *when - start).collect();
        assert_eq!(times, [at(1500), at(4000)], "on_enter runs as each outage begins");

        // Pinning is a change, even to the phase in force; releasing returns to the clock.
        assert!(engine.pin_phase(Some("outage")));
        changes.changed().await.unwrap();
        let pinned = changes.borrow_and_update().clone();
        assert_eq!((pinned.index, pinned.until), (Some(1), None));
        assert_eq!(entered.lock().unwrap().len(), 3);
        assert!(engine.pin_phase(None));
        changes.changed().await.unwrap();
        assert!(changes.borrow_and_update().until.is_some());
        assert_eq!(entered.lock().unwrap().len(), 3, "releasing to the clock's phase enters nothing");

        engine.set_enabled(false);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(entered.lock().unwrap().len(), 3, "disabled chaos cuts nothing");
        shutdown.cancel();
        task.await.unwrap();
    }
}
