//! Latency on the client's messages (`latency` with `direction: request`): each message is
//! held before it is handed on — to the responder under `serve`, to the upstream under
//! `proxy` — on the same absolute schedule as outbound latency, anchored on the message's
//! arrival so the delay adds to the client's own pacing.

use std::sync::Arc;

use rand::rngs::StdRng;
use tokio::time::Instant;

use super::schedule::Schedule;
use crate::chaos::FaultTally;
use crate::chaos::decide::RequestDelays;

/// The delays one stream's inbound messages are held for.
pub struct InboundDelays {
    schedule: Schedule,
    rng: StdRng,
    tally: Arc<FaultTally>,
    stream_id: u64,
}

impl InboundDelays {
    /// `None` when `delays` delays nothing.
    pub fn new(delays: RequestDelays, tally: Arc<FaultTally>, stream_id: u64) -> Option<Self> {
        let schedule = Schedule::new(Instant::now(), delays.first_message, delays.per_message, None)?;
        Some(Self { schedule, rng: delays.rng, tally, stream_id })
    }

    /// Waits until the message that just arrived may be handed on.
    pub async fn hold(&mut self) {
        let due = self.schedule.next(Some(Instant::now()), &mut self.rng);
        if !due.delay.is_zero() {
            self.tally.record_latency(due.delay, self.stream_id);
        }
        tokio::time::sleep_until(due.at).await;
        let now = Instant::now();
        self.tally.record_schedule_error(now.saturating_duration_since(due.at));
        self.schedule.sent(now);
    }
}
