//! Cuts of live traffic on cue — a phase's `on_enter`, `POST /admin/disconnect`: the share of
//! the matching live streams (a status, `reset_stream`) or connections (`goaway`, `tcp_reset`,
//! `blackhole`) to cut is chosen, deterministically under the plan's seed, and each cut goes
//! through the chosen streams' drivers ([`CutRequest`]), so what a stream sent before it is
//! delivered first. A connection is cut once, when every live stream on it has settled (at
//! once when it carries none), or after a bound when a stream cannot settle (a client that
//! stopped reading).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::seq::index;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;

use super::connection::{ConnectionId, ConnectionRegistry};
use super::delivery::DELIVERY_BOUND;
use super::streams::{LiveStream, StreamRegistry};
use crate::chaos::plan::{DisconnectMode, LiveAction, LiveCut, MethodMatch};
use crate::chaos::{ChaosEngine, FaultKind, stream_rng};
use crate::driver::{ConnectionCutOnce, CutRequest, connection_cut};

/// Distinguishes the choice of what a live cut hits from other draws.
const LIVE_CUT_RNG: u64 = 6;
/// Beyond delivery and the linger, how long a connection cut waits for its streams to settle.
const SETTLE_MARGIN: Duration = Duration::from_secs(1);

/// What a live cut hit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutCount {
    /// Streams cut (for a connection-wide mode, the live streams on the connections cut).
    pub streams: usize,
    pub connections: usize,
}

/// Carries out live cuts on a server's streams and connections.
pub struct LiveCuts {
    streams: Arc<StreamRegistry>,
    connections: Arc<ConnectionRegistry>,
    chaos: Arc<ChaosEngine>,
    /// Numbers the cuts, so each draws its own choice from the seed.
    cuts: AtomicU64,
    /// Connection cuts waiting for their streams to settle, bounded; ended at shutdown.
    waiting: TaskTracker,
    shutdown: CancellationToken,
}

impl LiveCuts {
    pub fn new(
        streams: Arc<StreamRegistry>,
        connections: Arc<ConnectionRegistry>,
        chaos: Arc<ChaosEngine>,
    ) -> Self {
        Self {
            streams,
            connections,
            chaos,
            cuts: AtomicU64::new(0),
            waiting: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Cuts what `cut` asks for among the live streams and connections.
    pub fn cut(&self, cut: &LiveCut) -> CutCount {
        let plan = self.chaos.plan();
        let mut rng = stream_rng(plan.seed, self.cuts.fetch_add(1, Ordering::Relaxed), LIVE_CUT_RNG);
        let live = self.streams.list(false);
        let matching =
            |stream: &&Arc<LiveStream>| cut.matcher.matches(&stream.method.service, &stream.method.method);
        let mut choose = |count: usize| {
            let chosen = ((cut.fraction * count as f64).round() as usize).min(count);
            let mut picks = index::sample(&mut rng, count, chosen).into_vec();
            picks.sort_unstable();
            picks
        };
        if !cut.action.cuts_connections() {
            let candidates: Vec<_> = live.iter().filter(matching).collect();
            let streams = choose(candidates.len())
                .into_iter()
                .filter(|&pick| candidates[pick].control.request_cut(stream_cut(&cut.action)))
                .count();
            return CutCount { streams, connections: 0 };
        }
        let mut candidates: Vec<ConnectionId> = if cut.matcher == MethodMatch::All {
            self.connections.summaries().into_iter().map(|summary| summary.id).collect()
        } else {
            live.iter().filter(matching).map(|stream| stream.connection).collect()
        };
        candidates.sort_unstable();
        candidates.dedup();
        let mut count = CutCount::default();
        for pick in choose(candidates.len()) {
            let on_connection: Vec<_> =
                live.iter().filter(|stream| stream.connection == candidates[pick]).collect();
            if let Some(streams) =
                self.cut_connection(candidates[pick], &cut.action, &on_connection, plan.linger)
            {
                count.connections += 1;
                count.streams += streams;
            }
        }
        count
    }

    /// Cuts connection `id` once every stream in `streams` has settled; the streams cut with
    /// it (those not cut already), or `None` when the connection is gone.
    fn cut_connection(
        &self,
        id: ConnectionId,
        action: &LiveAction,
        streams: &[&Arc<LiveStream>],
        linger: Duration,
    ) -> Option<usize> {
        let LiveAction::Disconnect(mode) = action else { return None };
        let control = self.connections.control_of(id)?;
        let cut = connection_cut(*mode)?;
        let once = ConnectionCutOnce::new(control, cut, FaultKind::from(*mode));
        if streams.is_empty() {
            // No stream to record it: the connection's cut is counted here.
            self.chaos.tally().record(FaultKind::from(*mode), None, 0);
        }
        // Held while the shares are handed out, so the first stream to settle cannot cut early.
        let holding = once.share();
        let cut_streams = streams
            .iter()
            .filter(|stream| stream.control.request_cut(CutRequest::Connection(once.share())))
            .count();
        drop(holding);
        let shutdown = self.shutdown.clone();
        self.waiting.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(DELIVERY_BOUND + linger + SETTLE_MARGIN) => once.cut_now(),
                _ = shutdown.cancelled() => {}
            }
        });
        Some(cut_streams)
    }

    /// Ends the waits for streams to settle (server shutdown).
    pub async fn close(&self) {
        self.shutdown.cancel();
        self.waiting.close();
        self.waiting.wait().await;
    }
}

/// The request a stream-level action makes of each stream it hits.
fn stream_cut(action: &LiveAction) -> CutRequest {
    match action {
        LiveAction::Fail { code, message, details: Some(details) } => {
            CutRequest::Status(Status::with_details(*code, message.clone(), details.clone()))
        }
        LiveAction::Fail { code, message, details: None } => {
            CutRequest::Status(Status::new(*code, message.clone()))
        }
        LiveAction::Disconnect(DisconnectMode::ResetStream { h2_code }) => {
            CutRequest::Reset(h2::Reason::from(*h2_code))
        }
        LiveAction::Disconnect(mode) => unreachable!("{mode:?} cuts connections, not streams"),
    }
}
