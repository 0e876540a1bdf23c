//! Series updated for every message, kept out of the recorder: there, each message would cost a
//! clock read and an epoch-pinned push into a shared bucket, more than the server spends sending
//! the message. Here a message costs two relaxed adds on the recording thread's own shard, and
//! the shards are summed when `/metrics` is scraped ([`render`]).
//!
//! One [`MessageSeries`] per method and direction gives both the message counter
//! (`streamstorm_messages_{sent,received}_total`, its count) and the size histogram
//! (`streamstorm_message_size_bytes`), so a message is counted once for both. Like the
//! recorder's handles, series are process-wide: servers in one process asking for the same
//! labels share one series.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::exporter::BYTES_BUCKETS;
use super::names;

/// Shards per series: more than the cores that record, so two threads rarely share one.
const SHARDS: usize = 8;

/// One thread's share of a series, on cache lines of its own.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    /// Messages at or below each bound of [`BYTES_BUCKETS`] and above the one before; the last
    /// slot holds those above every bound.
    buckets: [AtomicU64; BYTES_BUCKETS.len() + 1],
    bytes: AtomicU64,
}

/// Which way a series' messages went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Received => "received",
        }
    }

    fn counter(self) -> &'static str {
        match self {
            Self::Sent => names::MESSAGES_SENT,
            Self::Received => names::MESSAGES_RECEIVED,
        }
    }
}

/// The messages one method carried one way: how many, and their encoded sizes.
pub struct MessageSeries {
    /// `service="…",method="…"`, escaped once.
    labels: String,
    direction: Direction,
    shards: Box<[Shard]>,
}

thread_local! {
    /// The shard this thread records into, assigned round-robin as threads first record.
    static SHARD: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
    };
}

/// Every series of the process, by service, method and direction.
type Catalog = BTreeMap<(String, String, Direction), Arc<MessageSeries>>;

static SERIES: Mutex<Catalog> = Mutex::new(BTreeMap::new());

fn catalog() -> std::sync::MutexGuard<'static, Catalog> {
    SERIES.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The series of `method` of `service` one way, made on first use.
pub fn series(service: &str, method: &str, direction: Direction) -> Arc<MessageSeries> {
    let key = (service.to_owned(), method.to_owned(), direction);
    catalog().entry(key).or_insert_with(|| Arc::new(MessageSeries::new(service, method, direction))).clone()
}

impl MessageSeries {
    fn new(service: &str, method: &str, direction: Direction) -> Self {
        let labels = format!("service=\"{}\",method=\"{}\"", escape(service), escape(method));
        Self { labels, direction, shards: (0..SHARDS).map(|_| Shard::default()).collect() }
    }

    /// One message of `bytes` encoded bytes.
    pub fn record(&self, bytes: usize) {
        let bytes = bytes as u64;
        let bucket = BYTES_BUCKETS.partition_point(|&bound| (bound as u64) < bytes);
        let shard = &self.shards[SHARD.with(|shard| *shard)];
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Messages recorded so far: every message is in one bucket.
    pub fn count(&self) -> u64 {
        self.shards.iter().flat_map(|shard| &shard.buckets).map(|bucket| bucket.load(Ordering::Relaxed)).sum()
    }

    fn sum(&self, field: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|shard| field(shard).load(Ordering::Relaxed)).sum()
    }
}

/// Appends every series' message counters and size histograms to `out`, in the text format,
/// each family once with its help text.
pub fn render(out: &mut String) {
    let series: Vec<_> = catalog().values().cloned().collect();
    render_series(&series, out);
}

fn render_series(series: &[Arc<MessageSeries>], out: &mut String) {
    if series.is_empty() {
        return;
    }
    for direction in [Direction::Sent, Direction::Received] {
        let name = direction.counter();
        let help = match direction {
            Direction::Sent => "Messages the server sent.",
            Direction::Received => "Messages the server received.",
        };
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for one in series.iter().filter(|one| one.direction == direction) {
            let _ = writeln!(out, "{name}{{{}}} {}", one.labels, one.count());
        }
    }
    let name = names::MESSAGE_SIZE;
    let _ =
        writeln!(out, "# HELP {name} Encoded size of each message, by direction.\n# TYPE {name} histogram");
    for one in series {
        let labels = format!("{},direction=\"{}\"", one.labels, one.direction.label());
        let mut cumulative = 0;
        for (index, bound) in BYTES_BUCKETS.iter().enumerate() {
            cumulative += one.sum(|shard| &shard.buckets[index]);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let count = one.count();
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", one.sum(|shard| &shard.bytes));
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_fall_in_the_bucket_whose_bound_they_do_not_exceed() {
        let series = Arc::new(MessageSeries::new("myapp.Users", "Get", Direction::Sent));
        for bytes in [0, 16, 17, 64, 100_000_000] {
            series.record(bytes);
        }
        let mut text = String::new();
        render_series(&[series], &mut text);
        let labels = "service=\"myapp.Users\",method=\"Get\"";
        assert!(text.contains(&format!("streamstorm_messages_sent_total{{{labels}}} 5\n")), "{text}");
        let sized = format!("{labels},direction=\"sent\"");
        for (bound, cumulative) in [("16", 2), ("64", 4), ("67108864", 4), ("+Inf", 5)] {
            let line =
                format!("streamstorm_message_size_bytes_bucket{{{sized},le=\"{bound}\"}} {cumulative}\n");
            assert!(text.contains(&line), "missing {line:?} in {text}");
        }
        assert!(text.contains(&format!("streamstorm_message_size_bytes_sum{{{sized}}} 100000097\n")));
        assert!(text.contains("# TYPE streamstorm_messages_received_total counter\n"));
    }

    #[test]
    fn threads_recording_at_once_lose_nothing() {
        let series = Arc::new(MessageSeries::new("s", "m", Direction::Received));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let series = series.clone();
                std::thread::spawn(move || (0..10_000).for_each(|_| series.record(100)))
            })
            .collect();
        threads.into_iter().for_each(|thread| thread.join().unwrap());
        assert_eq!(series.count(), 40_000);
        assert_eq!(series.sum(|shard| &shard.bytes), 4_000_000);
    }

    #[test]
    fn the_same_labels_share_one_series() {
        let first = series("hot.Shared", "Once", Direction::Sent);
        first.record(1);
        assert_eq!(series("hot.Shared", "Once", Direction::Sent).count(), 1);
        assert_eq!(series("hot.Shared", "Once", Direction::Received).count(), 0);
    }
}
