//! Histograms as reports carry them, so shard reports can be merged exactly: HdrHistogram's
//! V2 format, deflate-compressed, in base64 (the form HdrHistogram's own tools read). One
//! string per measure of a scenario, per phase occurrence and per timeline interval.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::client::stats::new_histogram;
use crate::client::{Sample, ScenarioStats};

/// `histogram` in the report's form.
pub fn encode(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail; an empty string would decode as an error, not as empty.
    if V2DeflateSerializer::new().serialize(histogram, &mut bytes).is_err() {
        bytes.clear();
    }
    STANDARD.encode(bytes)
}

/// A histogram written by [`encode`], brought back to the load client's bounds so it adds to
/// any other.
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = STANDARD.decode(text).map_err(|error| format!("not base64: {error}"))?;
    let read: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|error| format!("not an HdrHistogram (V2, compressed): {error:?}"))?;
    let mut histogram = new_histogram();
    histogram.add(&read).map_err(|error| format!("values out of range: {error:?}"))?;
    Ok(histogram)
}

/// A scenario's six measures, serialized.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SampleHistograms {
    pub latency: String,
    pub time_to_first_message: String,
    pub recovery: String,
    pub stream_duration: String,
    pub message_age: String,
    pub backoff: String,
}

/// Each measure with its field name, in [`Sample`] order (the order of `ScenarioStats`).
const MEASURES: [(Sample, &str); 6] = [
    (Sample::Latency, "latency"),
    (Sample::TimeToFirstMessage, "time_to_first_message"),
    (Sample::StreamDuration, "stream_duration"),
    (Sample::Recovery, "recovery"),
    (Sample::Age, "message_age"),
    (Sample::Backoff, "backoff"),
];

impl SampleHistograms {
    pub fn of(stats: &ScenarioStats) -> Self {
        let field = |sample| encode(stats.histogram(sample));
        Self {
            latency: field(Sample::Latency),
            time_to_first_message: field(Sample::TimeToFirstMessage),
            recovery: field(Sample::Recovery),
            stream_duration: field(Sample::StreamDuration),
            message_age: field(Sample::Age),
            backoff: field(Sample::Backoff),
        }
    }

    fn text(&self, sample: Sample) -> &str {
        match sample {
            Sample::Latency => &self.latency,
            Sample::TimeToFirstMessage => &self.time_to_first_message,
            Sample::Recovery => &self.recovery,
            Sample::StreamDuration => &self.stream_duration,
            Sample::Age => &self.message_age,
            Sample::Backoff => &self.backoff,
        }
    }

    /// Every measure decoded, in [`Sample`] order; an error names the measure's field.
    pub fn decode_all(&self) -> Result<[Histogram<u64>; 6], (&'static str, String)> {
        let mut decoded = Vec::with_capacity(MEASURES.len());
        for (sample, name) in MEASURES {
            decoded.push(decode(self.text(sample)).map_err(|why| (name, why))?);
        }
        decoded.try_into().map_err(|_| ("histograms", "a measure is missing".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exactly() {
        let mut histogram = new_histogram();
        for value in [1u64, 17, 999, 1_234_567, 3_600_000_000] {
            histogram.record_n(value, value % 7 + 1).unwrap();
        }
        let back = decode(&encode(&histogram)).unwrap();
        assert_eq!(back, histogram);
        assert_eq!(decode(&encode(&new_histogram())).unwrap().len(), 0);
        assert!(decode("not-base64!").unwrap_err().contains("base64"));
        assert!(decode("AAAA").unwrap_err().contains("HdrHistogram"));
    }
}
