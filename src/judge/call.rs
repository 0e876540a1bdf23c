//! A call as the server reports it to the judge: who sent it and on which connection
//! ([`CallArrival`]), the handle its stream keeps ([`JudgedCall`]) to report messages, the
//! ending status and how the call ended ([`Ending`]), and the probe that reads the resume
//! position of its first request ([`RequestProbe`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prost_reflect::DynamicMessage;
use tonic::{Code, Status};

use super::Judge;
use super::client::{CallOutcome, ClientSignals};
use super::resume::ResumeProbe;
use crate::chaos::FaultKind;
use crate::proto::OutboundMessage;
use crate::proto::status::code_name;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ending {
    /// An injected fault ended it, with the status it carried (none for a cut).
    Fault(FaultKind, Option<Code>),
    /// It completed with `OK`.
    Ok,
    /// The responder's own error status.
    Error(Code),
    /// The client cancelled it or lost its connection, with nothing injected.
    Cancelled,
}

impl Ending {
    /// The ending's name (`reset_stream`, `ok`, `error`, `cancelled`), as
    /// `reconnect_delay_after_<ending>` and the metric's label name it.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Fault(kind, _) => kind.name(),
            Self::Ok => "ok",
            Self::Error(_) => "error",
            Self::Cancelled => "cancelled",
        }
    }

    /// The label with the status code, when there is one (`abort UNAVAILABLE`).
    pub fn label_with_code(&self) -> String {
        match self {
            Self::Fault(_, Some(code)) | Self::Error(code) => {
                format!("{} {}", self.label(), code_name(*code))
            }
            _ => self.label().to_owned(),
        }
    }

    /// The server ended the call against the client's wishes: a fault or an error status.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Fault(..) | Self::Error(_))
    }
}

/// What the server knows of a call as it arrives.
pub struct CallArrival<'a> {
    pub connection: u64,
    pub peer: SocketAddr,
    pub headers: &'a http::HeaderMap,
    /// `package.Service/Method`.
    pub method: &'a str,
}

/// A call the judge follows; the server keeps it with the stream and hands it back at the end.
pub(super) struct CallTicket {
    pub(super) client: Arc<str>,
    pub(super) method: Arc<str>,
    pub(super) connection: u64,
    /// Its place in a failure streak (0: not a retry).
    pub(super) retry: u32,
    pub(super) signals: Arc<ClientSignals>,
}

/// One call, as the stream carrying it reports to the judge.
pub struct JudgedCall {
    pub(super) judge: Arc<Judge>,
    pub(super) ticket: CallTicket,
    pub(super) probe: Option<Arc<ResumeProbe>>,
    pub(super) outcome: CallOutcome,
}

/// Reads the resume position from a call's first request.
pub struct RequestProbe {
    pub(super) judge: Arc<Judge>,
    pub(super) client: Arc<str>,
    pub(super) method: Arc<str>,
    pub(super) probe: Arc<ResumeProbe>,
}

impl JudgedCall {
    /// The probe for the call's first request, when its method carries a resume position.
    pub fn request_probe(&self) -> Option<RequestProbe> {
        self.probe.as_ref().map(|probe| RequestProbe {
            judge: self.judge.clone(),
            client: self.ticket.client.clone(),
            method: self.ticket.method.clone(),
            probe: probe.clone(),
        })
    }

    /// A message is on its way to the client.
    pub fn delivering(&mut self, message: &OutboundMessage) {
        if let Some(probe) = &self.probe {
            if let Some(position) = probe.carried(message) {
                self.outcome.last_position = Some(position);
            }
        }
        if self.ticket.signals.recovery_pending.load(Ordering::Relaxed) {
            self.judge.recovered(&self.ticket);
        }
    }

    /// The status the call ends with, for the `RetryInfo` it may carry.
    pub fn status(&mut self, status: &Status) {
        if status.details().is_empty() {
            return;
        }
        use tonic_types::StatusExt;
        self.outcome.retry_delay = status.get_details_retry_info().and_then(|info| info.retry_delay);
    }

    /// The call ended (at `cut_at`, when a fault ended it before the stream was dropped).
    pub fn end(mut self, ending: Ending, messages_sent: u64, cut_at: Option<std::time::Instant>) {
        self.outcome.messages_sent = messages_sent;
        let outcome = std::mem::take(&mut self.outcome);
        self.judge.call_ended(&self.ticket, ending, outcome, cut_at.unwrap_or_else(std::time::Instant::now));
    }
}

impl RequestProbe {
    /// Reads the position the call's first request asks for.
    pub fn observe(self, request: &DynamicMessage) {
        if let Some(asked) = self.probe.asked(request) {
            self.judge.resume_asked(&self.client, &self.method, asked);
        }
    }
}
