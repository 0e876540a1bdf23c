//! Recording what passes through the proxy (`proxy --record DIR`, `streamstorm record`) as
//! stubs and stream scripts that `serve --stubs DIR` loads unchanged.
//!
//! The proxy knows only [`Recorder::tap`] and the three taps of a [`CallTap`] (a client
//! message, an upstream message, the upstream's end); this module knows nothing of the proxy.
//! A tap notes raw messages with their time since the call opened and never waits: the call's
//! log goes, when the upstream ends the call, to a writer thread through a bounded queue
//! (full: the call is not recorded, said once). The writer decodes the messages with the
//! method's descriptors, folds identical exchanges into one with a count ([`exchange`]),
//! renders the method's files ([`files`]) and replaces them atomically ([`writer`]).
//!
//! Recording is bounded: a cap per method and one in total on the calls recorded, each
//! announced once when reached; a call longer than [`MAX_CALL_MESSAGES`] messages or
//! [`MAX_CALL_BYTES`] bytes is not recorded.

pub mod exchange;
pub mod files;
pub mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::HeaderMap;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::proto::{MethodCatalog, MethodEntry};

/// Messages (both ways) one recorded call may hold.
pub const MAX_CALL_MESSAGES: usize = 10_000;
/// Message bytes (both ways) one recorded call may hold: a script is at most 8 MiB.
pub const MAX_CALL_BYTES: usize = 4 << 20;
/// Finished calls waiting for the writer; beyond them, calls are not recorded.
const QUEUE: usize = 256;

/// Headers never written: sensitive unless `--record-keep-sensitive`.
pub const SENSITIVE_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "set-cookie"];
/// Headers never written at all: HTTP/2 and gRPC transport, or different on every call.
const TRANSPORT_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "te",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "accept-encoding",
    "date",
];

/// What `--record` and the `proxy.record` section ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSettings {
    /// Where the files go; must be empty or absent.
    pub dir: PathBuf,
    /// Calls recorded per method.
    pub max_per_method: usize,
    /// Calls recorded in all.
    pub max_calls: usize,
    /// More header names never written (lowercase).
    pub redact: Vec<String>,
    /// Write `authorization`, `cookie` and `set-cookie` after all.
    pub keep_sensitive: bool,
}

impl RecordSettings {
    pub const DEFAULT_MAX_PER_METHOD: usize = 100;
    pub const DEFAULT_MAX_CALLS: usize = 1000;

    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            max_per_method: Self::DEFAULT_MAX_PER_METHOD,
            max_calls: Self::DEFAULT_MAX_CALLS,
            redact: Vec::new(),
            keep_sensitive: false,
        }
    }

    /// Whether a header (or trailer) named `name` (lowercase) may be written.
    pub fn keeps_header(&self, name: &str) -> bool {
        let transport = name.starts_with(':')
            || name.starts_with("grpc-")
            || name.ends_with("-bin")
            || TRANSPORT_HEADERS.contains(&name);
        let sensitive = !self.keep_sensitive && SENSITIVE_HEADERS.contains(&name);
        !transport && !sensitive && !self.redact.iter().any(|redacted| redacted == name)
    }

    /// The headers of `map` that may be written, in order, values as text.
    pub fn kept_headers(&self, map: &HeaderMap) -> Vec<(String, String)> {
        map.iter()
            .filter(|(name, _)| self.keeps_header(name.as_str()))
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect()
    }
}

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{dir}: {reason}")]
    Directory { dir: String, reason: String },
    #[error(
        "--record needs the upstream's protos to decode what it records: pass --protos (the upstream has no reflection service, or it did not answer)"
    )]
    NoProtos,
}

/// Decides which calls are recorded and hands their logs to the writer.
pub struct Recorder {
    settings: RecordSettings,
    counts: Mutex<Counts>,
    queue: std::sync::mpsc::SyncSender<CallLog>,
    /// The queue was found full once (said once).
    queue_full: AtomicBool,
    /// A call was too long to record (said once).
    too_long: AtomicBool,
}

/// Calls recorded so far.
#[derive(Default)]
struct Counts {
    per_method: HashMap<String, usize>,
    total: usize,
}

impl Recorder {
    /// Starts recording into `settings.dir` (created; refused when it holds files already)
    /// with the writer thread running.
    pub fn start(settings: RecordSettings, catalog: &MethodCatalog) -> Result<Arc<Self>, RecordError> {
        if catalog.is_empty() {
            return Err(RecordError::NoProtos);
        }
        writer::prepare_dir(&settings.dir)?;
        let (queue, finished) = std::sync::mpsc::sync_channel(QUEUE);
        writer::spawn(settings.dir.clone(), finished);
        info!(dir = %settings.dir.display(), max_per_method = settings.max_per_method, max_calls = settings.max_calls, "Recording relayed calls.");
        Ok(Arc::new(Self {
            settings,
            counts: Mutex::default(),
            queue,
            queue_full: AtomicBool::new(false),
            too_long: AtomicBool::new(false),
        }))
    }

    pub fn settings(&self) -> &RecordSettings {
        &self.settings
    }

    /// A tap for a call of `method` with request `headers`, when the call is to be recorded:
    /// its method is known from the protos and no cap has been reached.
    pub fn tap(self: &Arc<Self>, method: &Arc<MethodEntry>, headers: &HeaderMap) -> Option<Arc<CallTap>> {
        if method.opaque {
            return None;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let name = method.path.trim_start_matches('/');
        if counts.total >= self.settings.max_calls {
            return None;
        }
        let recorded = counts.per_method.entry(method.path.clone()).or_default();
        if *recorded >= self.settings.max_per_method {
            return None;
        }
        *recorded += 1;
        if *recorded == self.settings.max_per_method {
            info!(
                "Recording stopped for {name}: {} calls recorded (--record-max-per-method); relaying goes on.",
                *recorded
            );
        }
        counts.total += 1;
        if counts.total == self.settings.max_calls {
            info!(
                "Recording stopped: {} calls recorded (--record-max-calls); relaying goes on.",
                counts.total
            );
        }
        let log = CallLog {
            method: method.clone(),
            opened: Instant::now(),
            request_headers: self.settings.kept_headers(headers),
            response_headers: Vec::new(),
            events: Vec::new(),
            bytes: 0,
            too_long: false,
        };
        Some(Arc::new(CallTap { recorder: self.clone(), log: Mutex::new(Some(log)) }))
    }

    fn finished(&self, log: CallLog) {
        if log.too_long {
            if !self.too_long.swap(true, Ordering::Relaxed) {
                warn!(method = %log.method.path, "A call longer than {MAX_CALL_MESSAGES} messages or {MAX_CALL_BYTES} bytes is not recorded (said once).");
            }
            return;
        }
        if self.queue.try_send(log).is_err() && !self.queue_full.swap(true, Ordering::Relaxed) {
            warn!(
                "Recording falls behind the traffic: calls that end while the writer is busy are not recorded (said once)."
            );
        }
    }
}

/// What one call did, as the proxy saw it.
pub struct CallLog {
    pub method: Arc<MethodEntry>,
    pub opened: Instant,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    /// Messages both ways and the end, in the order the proxy saw them.
    pub events: Vec<CallEvent>,
    bytes: usize,
    too_long: bool,
}

/// One thing the proxy saw of a call, with its time in milliseconds since the call opened.
pub enum CallEvent {
    /// A client message, with its 5-byte prefix.
    Request { at: u64, message: Bytes },
    /// An upstream message, with its 5-byte prefix.
    Response { at: u64, message: Bytes },
    /// The upstream's trailers (or trailers-only headers): status, message, details and
    /// trailing metadata.
    End { at: u64, trailers: HeaderMap, kept: Vec<(String, String)> },
}

/// The taps on one recorded call. Dropped without [`CallTap::end`] (the client cancelled, the
/// upstream failed), the call is not recorded.
pub struct CallTap {
    recorder: Arc<Recorder>,
    log: Mutex<Option<CallLog>>,
}

impl CallTap {
    /// A message from the client, as it arrived.
    pub fn request(&self, message: &Bytes) {
        self.note(|at| CallEvent::Request { at, message: message.clone() }, message.len());
    }

    /// A message from the upstream, as it arrived.
    pub fn response(&self, message: &Bytes) {
        self.note(|at| CallEvent::Response { at, message: message.clone() }, message.len());
    }

    /// The upstream's response headers.
    pub fn response_headers(&self, headers: &HeaderMap) {
        let kept = self.recorder.settings.kept_headers(headers);
        if let Some(log) = self.log.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            log.response_headers = kept;
        }
    }

    /// The upstream ended the call with `trailers`: the call goes to the writer.
    pub fn end(&self, trailers: HeaderMap) {
        let kept = self.recorder.settings.kept_headers(&trailers);
        let log = {
            let mut slot = self.log.lock().unwrap_or_else(|p| p.into_inner());
            let Some(mut log) = slot.take() else { return };
            log.events.push(CallEvent::End { at: millis_since(log.opened), trailers, kept });
            log
        };
        self.recorder.finished(log);
    }

    fn note(&self, event: impl FnOnce(u64) -> CallEvent, len: usize) {
        let mut slot = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let Some(log) = slot.as_mut() else { return };
        if log.too_long {
            return;
        }
        log.bytes += len;
        if log.events.len() >= MAX_CALL_MESSAGES || log.bytes > MAX_CALL_BYTES {
            log.too_long = true;
            log.events = Vec::new();
            return;
        }
        log.events.push(event(millis_since(log.opened)));
    }
}

/// Whole milliseconds since `opened`, rounded to the nearest.
fn millis_since(opened: Instant) -> u64 {
    let micros = opened.elapsed().as_micros();
    u64::try_from((micros + 500) / 1000).unwrap_or(u64::MAX)
}
