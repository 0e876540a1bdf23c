//! One slot of a load: waits for its start, then makes its call again and again until the run
//! stops — every message it receives is counted (inside the window) and, when gaps are measured,
//! timed against the previous one. The call kind is the only thing that differs between a
//! streaming load, a unary load and idle streams; the loop is the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use streamstorm_baseline::myapp::notification_service_client::NotificationServiceClient;
use streamstorm_baseline::myapp::user_service_client::UserServiceClient;
use streamstorm_baseline::myapp::{GetUserRequest, SubscribeRequest};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use crate::codec::subscribe_counting;
use crate::gaps::GapRecorder;
use crate::plan::{Call, Decoding};

/// Pause after a failed call, so a refusing server does not turn a slot into a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Live counts every slot updates once per call (never per message), for whoever watches a run
/// from outside — e.g. to measure memory once every idle stream has its first message.
#[derive(Debug, Default)]
pub struct Progress {
    /// Calls whose response headers (streaming) or reply (unary) arrived.
    pub calls_opened: AtomicU64,
    /// Calls that received at least one message.
    pub calls_with_a_message: AtomicU64,
    /// Calls that ended, in any way (a stop counts).
    pub calls_ended: AtomicU64,
}

/// What one slot counted.
#[derive(Debug, Default)]
pub struct SlotTally {
    /// Messages received inside the measuring window.
    pub messages: u64,
    /// Calls that ended OK.
    pub completed: u64,
    /// Calls that ended with an error status.
    pub failed: u64,
    /// The first error, to say what went wrong.
    pub first_error: Option<Status>,
    /// The connection the slot's calls went over (its index in the run).
    pub connection: usize,
}

/// Everything a slot needs; owned by the slot's task.
pub struct Slot {
    pub channel: Channel,
    /// The channel's index among the run's connections.
    pub connection: usize,
    pub call: Call,
    /// When this slot makes its first call.
    pub start_at: Instant,
    /// Messages arriving in `[window.0, window.1)` are counted.
    pub window: (Instant, Instant),
    pub stop: CancellationToken,
    pub progress: Arc<Progress>,
    pub gaps: Option<GapRecorder>,
}

/// One call's bookkeeping: messages so far and the slot's running counts.
struct CallState<'a> {
    slot: &'a mut Slot,
    tally: &'a mut SlotTally,
    messages: u64,
}

impl CallState<'_> {
    fn message_arrived(&mut self) {
        let now = Instant::now();
        let counted = now >= self.slot.window.0 && now < self.slot.window.1;
        self.tally.messages += u64::from(counted);
        if self.messages == 0 {
            self.slot.progress.calls_with_a_message.fetch_add(1, Ordering::Relaxed);
        }
        self.messages += 1;
        if let Some(gaps) = &mut self.slot.gaps {
            gaps.arrived(now, counted);
        }
    }
}

impl Slot {
    /// Runs the slot until the stop token is cancelled.
    pub async fn run(mut self) -> SlotTally {
        let mut tally = SlotTally { connection: self.connection, ..SlotTally::default() };
        tokio::select! {
            _ = tokio::time::sleep_until(self.start_at.into()) => {}
            _ = self.stop.cancelled() => return tally,
        }
        let stop = self.stop.clone();
        while !stop.is_cancelled() {
            if let Some(gaps) = &mut self.gaps {
                gaps.restart();
            }
            let progress = self.progress.clone();
            let mut call = CallState { slot: &mut self, tally: &mut tally, messages: 0 };
            let outcome = tokio::select! {
                biased;
                _ = stop.cancelled() => None,
                outcome = call.make() => Some(outcome),
            };
            progress.calls_ended.fetch_add(1, Ordering::Relaxed);
            match outcome {
                None => break,
                Some(Ok(())) => tally.completed += 1,
                Some(Err(status)) => {
                    tally.failed += 1;
                    tally.first_error.get_or_insert(status);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        tally
    }
}

impl CallState<'_> {
    /// Makes one call of the slot's kind and reads it to its end.
    async fn make(&mut self) -> Result<(), Status> {
        let channel = self.slot.channel.clone();
        match &self.slot.call {
            Call::Subscribe { topics, decoding } => {
                let request = SubscribeRequest { topics: topics.clone(), ..Default::default() };
                match *decoding {
                    Decoding::Prost => {
                        let client = &mut NotificationServiceClient::new(channel);
                        self.read_to_end(client.subscribe(request).await?.into_inner()).await?;
                    }
                    Decoding::CountOnly => {
                        self.read_to_end(subscribe_counting(channel, request).await?).await?
                    }
                }
            }
            Call::GetUser { user_id } => {
                let request = GetUserRequest { user_id: user_id.clone() };
                UserServiceClient::new(channel).get_user(request).await?;
                self.slot.progress.calls_opened.fetch_add(1, Ordering::Relaxed);
                self.message_arrived();
            }
        }
        Ok(())
    }

    /// Reads an opened stream to its end, noting every message.
    async fn read_to_end<T>(&mut self, mut stream: Streaming<T>) -> Result<(), Status> {
        self.slot.progress.calls_opened.fetch_add(1, Ordering::Relaxed);
        while stream.message().await?.is_some() {
            self.message_arrived();
        }
        Ok(())
    }
}
