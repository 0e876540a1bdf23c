//! A client's recent history as the judge notes it: what happened, kept as it came, and written
//! as text only when a report shows the timeline.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::Ending;
use super::resume::{Position, ResumeClass};

/// One line of a client's recent history.
#[derive(Debug, Clone)]
pub struct TimelineEntry {
    /// Seconds since the server started.
    pub at_s: f64,
    pub method: Option<Arc<str>>,
    pub event: Event,
}

/// What happened, kept as it came: entries are noted on every call and mostly dropped unread,
/// so their text is written only when a report shows the timeline.
#[derive(Debug, Clone)]
pub enum Event {
    /// A call arrived, after the ending it was paired with (none: the client's first).
    Attempt {
        after: Option<(&'static str, Duration)>,
    },
    End {
        ending: Ending,
        messages: u64,
    },
    Blackhole {
        connection: u64,
    },
    Abandoned {
        connection: u64,
        after: Duration,
    },
    Resume {
        class: ResumeClass,
        asked: Position,
        delivered: Position,
    },
    Recovered {
        after: Duration,
    },
}

impl Event {
    fn name(&self) -> &'static str {
        match self {
            Self::Attempt { .. } => "attempt",
            Self::End { .. } => "end",
            Self::Blackhole { .. } => "blackhole",
            Self::Abandoned { .. } => "abandoned",
            Self::Resume { .. } => "resume",
            Self::Recovered { .. } => "recovered",
        }
    }
}

/// The entry's detail, as the timeline shows it.
impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |duration: &Duration| duration.as_secs_f64() * 1000.0;
        match self {
            Self::Attempt { after: None } => write!(f, "first"),
            Self::Attempt { after: Some((label, delay)) } => {
                write!(f, "after {label}, {:.0} ms later", ms(delay))
            }
            Self::End { ending, messages } => {
                write!(f, "{} after {messages} messages", ending.label_with_code())
            }
            Self::Blackhole { connection } => write!(f, "connection {connection}"),
            Self::Abandoned { connection, after } => {
                write!(f, "connection {connection} after {:.0} ms", ms(after))
            }
            Self::Resume { class, asked, delivered } => {
                write!(f, "{} (asked {asked}, last delivered {delivered})", class.name())
            }
            Self::Recovered { after } => write!(f, "after {:.0} ms", ms(after)),
        }
    }
}

impl Serialize for TimelineEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut entry = serializer.serialize_struct("TimelineEntry", 4)?;
        entry.serialize_field("at_s", &self.at_s)?;
        entry.serialize_field("event", self.event.name())?;
        match &self.method {
            Some(method) => entry.serialize_field("method", method)?,
            None => entry.skip_field("method")?,
        }
        entry.serialize_field("detail", &self.event.to_string())?;
        entry.end()
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::chaos::FaultKind;

    const UNAVAILABLE: Ending = Ending::Fault(FaultKind::Abort, Some(Code::Unavailable));

    #[test]
    fn timeline_entries_read_as_they_did_when_kept_as_text() {
        let entry =
            |method: Option<&str>, event| TimelineEntry { at_s: 1.5, method: method.map(Arc::from), event };
        let attempt = Event::Attempt { after: Some(("reset_stream", Duration::from_millis(250))) };
        let ended = Event::End { ending: UNAVAILABLE, messages: 3 };
        let cases = [
            (entry(Some("myapp.S/M"), Event::Attempt { after: None }), "attempt", "first"),
            (entry(Some("myapp.S/M"), attempt), "attempt", "after reset_stream, 250 ms later"),
            (entry(Some("myapp.S/M"), ended), "end", "abort UNAVAILABLE after 3 messages"),
            (
                entry(None, Event::Abandoned { connection: 7, after: Duration::from_secs(2) }),
                "abandoned",
                "connection 7 after 2000 ms",
            ),
        ];
        for (entry, event, detail) in cases {
            let json = serde_json::to_value(&entry).unwrap();
            assert_eq!(
                (json["event"].as_str(), json["detail"].as_str()),
                (Some(event), Some(detail)),
                "{json}"
            );
            assert_eq!(json["at_s"], 1.5);
            assert_eq!(json.get("method").is_some(), entry.method.is_some(), "{json}");
        }
    }
}
