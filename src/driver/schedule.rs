//! When each outbound message is due: latency on an absolute schedule, and rate limits.
//!
//! A message's intended send time is the previous message's intended time plus its drawn delay,
//! not the previous actual send plus the delay: timers that fire late (they round up to the
//! millisecond, and a busy runtime adds more) then neither bias the mean gap nor push back every
//! later message. When the responder itself paces its messages (the message was not ready when
//! asked for), the schedule re-anchors on the message's arrival, so the delay is added to the
//! responder's own timing. A rate limit is a floor on the gap after the previous actual send,
//! so the stream never exceeds it, even catching up.

use std::time::Duration;

use rand::rngs::StdRng;
use tokio::time::Instant;

use crate::chaos::plan::Distribution;

/// The send schedule of one stream.
#[derive(Debug)]
pub struct Schedule {
    first_message: Option<Distribution>,
    per_message: Option<Distribution>,
    /// Least time between two sends (from `messages_per_second`).
    min_gap: Option<Duration>,
    /// The intended time of the previous message (the stream's start before the first).
    previous_intended: Instant,
    previous_sent: Option<Instant>,
    scheduled: u64,
}

/// When one message is to go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub at: Instant,
    /// The injected latency this message carries (zero for pacing alone).
    pub delay: Duration,
}

impl Schedule {
    /// A schedule starting at `opened`; `None` when nothing delays or paces the stream.
    pub fn new(
        opened: Instant,
        first_message: Option<Distribution>,
        per_message: Option<Distribution>,
        messages_per_second: Option<u32>,
    ) -> Option<Self> {
        let min_gap = messages_per_second.map(|rate| Duration::from_secs(1) / rate.max(1));
        (first_message.is_some() || per_message.is_some() || min_gap.is_some()).then_some(Self {
            first_message,
            per_message,
            min_gap,
            previous_intended: opened,
            previous_sent: None,
            scheduled: 0,
        })
    }

    /// When the next message goes out. `arrived` is when the responder handed it over, or
    /// `None` when it was ready as soon as asked for (the schedule alone paces it).
    pub fn next(&mut self, arrived: Option<Instant>, rng: &mut StdRng) -> Due {
        let distribution = match self.scheduled {
            0 => self.first_message.as_ref().or(self.per_message.as_ref()),
            _ => self.per_message.as_ref(),
        };
        let delay = distribution.map_or(Duration::ZERO, |distribution| distribution.sample(rng));
        let anchor = arrived.map_or(self.previous_intended, |arrived| arrived.max(self.previous_intended));
        let mut at = anchor + delay;
        if let (Some(gap), Some(sent)) = (self.min_gap, self.previous_sent) {
            at = at.max(sent + gap);
        }
        self.previous_intended = at;
        self.scheduled += 1;
        Due { at, delay }
    }

    /// Notes that the message due last went out at `sent`.
    pub fn sent(&mut self, sent: Instant) {
        self.previous_sent = Some(sent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::stream_rng;

    fn fixed(millis: u64) -> Option<Distribution> {
        Some(Distribution::Fixed(Duration::from_millis(millis)))
    }

    #[test]
    fn late_sends_do_not_push_back_later_messages() {
        let start = Instant::now();
        let mut rng = stream_rng(1, 1, 1);
        let mut schedule = Schedule::new(start, None, fixed(100), None).expect("latency schedules");
        let first = schedule.next(None, &mut rng);
        assert_eq!(first.at, start + Duration::from_millis(100));
        // Sent 7 ms late: the next is still due 100 ms after the first was intended.
        schedule.sent(first.at + Duration::from_millis(7));
        assert_eq!(schedule.next(None, &mut rng).at, start + Duration::from_millis(200));
    }

    #[test]
    fn a_responder_that_paces_re_anchors_the_schedule() {
        let start = Instant::now();
        let mut rng = stream_rng(1, 1, 1);
        let mut schedule = Schedule::new(start, fixed(5), fixed(10), None).expect("latency schedules");
        assert_eq!(schedule.next(None, &mut rng).at, start + Duration::from_millis(5));
        let arrived = start + Duration::from_secs(1);
        assert_eq!(schedule.next(Some(arrived), &mut rng).at, arrived + Duration::from_millis(10));
    }

    #[test]
    fn a_rate_limit_is_a_floor_after_the_previous_send() {
        let start = Instant::now();
        let mut rng = stream_rng(1, 1, 1);
        let mut schedule = Schedule::new(start, None, None, Some(10)).expect("pacing schedules");
        let first = schedule.next(None, &mut rng);
        assert_eq!((first.at, first.delay), (start, Duration::ZERO));
        schedule.sent(start + Duration::from_millis(30));
        assert_eq!(schedule.next(None, &mut rng).at, start + Duration::from_millis(130));
        assert!(Schedule::new(start, None, None, None).is_none());
    }
}
