//! What a load is, as independent choices that compose: the call each slot makes, how many
//! connections and slots per connection, how the slots open (a burst or a ramp), when the run
//! stops, and whether gaps between messages are measured. One slot loop serves every
//! combination ([`crate::slot`]); there is no loop per mode.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The call a slot makes, again and again until the run stops.
#[derive(Debug, Clone)]
pub enum Call {
    /// `NotificationService/Subscribe` (server streaming) with these topics; every
    /// notification received counts as one message.
    Subscribe { topics: Vec<String>, decoding: Decoding },
    /// `UserService/GetUser` (unary); every reply counts as one message.
    GetUser { user_id: String },
}

impl Call {
    /// A `Subscribe` call for the given topics, its notifications decoded.
    pub fn subscribe(topics: &[&str]) -> Self {
        Self::Subscribe { topics: owned(topics), decoding: Decoding::Prost }
    }

    /// A `Subscribe` call for the given topics, its notifications counted but not decoded.
    pub fn subscribe_counting(topics: &[&str]) -> Self {
        Self::Subscribe { topics: owned(topics), decoding: Decoding::CountOnly }
    }
}

fn owned(topics: &[&str]) -> Vec<String> {
    topics.iter().map(|topic| (*topic).to_owned()).collect()
}

/// What a streaming call does with each message it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// Decodes it into the prost type, as a real client would.
    Prost,
    /// Counts it and skips its bytes ([`crate::codec`]): the least a client can do, for
    /// measuring a server's rate.
    CountOnly,
}

/// How the slots start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// All at once.
    Burst,
    /// Evenly spread over this long, in slot order (slot `i` of `n` starts at `i/n` of it).
    Ramp(Duration),
}

impl Opening {
    /// How long after the run starts the last slot starts.
    pub fn duration(self) -> Duration {
        match self {
            Self::Burst => Duration::ZERO,
            Self::Ramp(over) => over,
        }
    }

    /// When slot `index` of `slots` starts, from the run's start.
    pub fn offset(self, index: usize, slots: usize) -> Duration {
        match self {
            Self::Burst => Duration::ZERO,
            Self::Ramp(over) => over.mul_f64(index as f64 / slots.max(1) as f64),
        }
    }
}

/// When the run ends.
#[derive(Debug, Clone)]
pub enum Stop {
    /// At the end of the measuring window.
    EndOfWindow,
    /// When this token is cancelled (e.g. once idle streams have been measured from outside).
    Token(CancellationToken),
}

/// The measuring window: messages (and gaps) count only if they arrive inside it.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Left out after the last slot has started, so start-up effects are not measured.
    pub warmup: Duration,
    /// How long messages are counted.
    pub measure: Duration,
}

/// One load: the target, the shape, the call, the opening, the window and the stop.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The server, on loopback.
    pub target: SocketAddr,
    /// HTTP/2 connections, each its own TCP connection.
    pub connections: usize,
    /// Concurrent calls (streams or unary calls in flight) per connection.
    pub slots_per_connection: usize,
    pub call: Call,
    pub opening: Opening,
    pub window: Window,
    pub stop: Stop,
    /// Measure the gap between consecutive messages of a stream against this expected gap.
    pub expected_gap: Option<Duration>,
}

impl LoadPlan {
    /// Every slot of the run.
    pub fn slots(&self) -> usize {
        self.connections * self.slots_per_connection
    }

    /// Where the measuring window starts and ends, from the run's start.
    pub fn window_bounds(&self) -> (Duration, Duration) {
        let start = self.opening.duration() + self.window.warmup;
        (start, start + self.window.measure)
    }
}
