//! Answers calls from stubs, for every call pattern:
//!
//! - unary and server streaming: the best stub for the request; its messages in order, each
//!   after its delay; then its status (or OK with its trailers);
//! - client streaming: stubs narrowed message by message (`inputs[i]` for the i-th message, a
//!   single matcher for every message); the answer after the client half-closes;
//! - bidi: candidates chosen on the first message and narrowed on each later one; message i is
//!   answered with `stream[i]` (the last input flushes the rest), v1 `input` + `data` stubs
//!   answer every message (ping-pong).
//!
//! Methods without stubs go to the fallback responder. A call no stub matches ends with
//! `NOT_FOUND`, naming the closest stub and the fields that differed.

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_stream::try_stream;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use prost_reflect::DynamicMessage;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::model::{OutputMessage, Stub};
use super::render::Rendering;
use super::set::{MethodStubs, Ranked, StubSet, narrow};
use crate::proto::{CallKind, OutboundMessage};
use crate::script::{Script, play};
use crate::server::{Call, OutboundStream, Responder};

/// Scripts bound to the method first, then stubs, then `fallback` for methods with neither.
pub struct StubResponder {
    stubs: Arc<ArcSwap<StubSet>>,
    fallback: Arc<dyn Responder>,
    /// Seeds every script's per-stream RNG (with the stream id).
    seed: u64,
}

impl StubResponder {
    /// `stubs` may be swapped at any time (hot reload); each call uses the set current when
    /// it started.
    pub fn new(stubs: Arc<ArcSwap<StubSet>>, fallback: Arc<dyn Responder>, seed: u64) -> Self {
        Self { stubs, fallback, seed }
    }
}

impl Responder for StubResponder {
    fn respond(&self, call: Call) -> BoxFuture<'static, Result<tonic::Response<OutboundStream>, Status>> {
        let set = self.stubs.load_full();
        let seed = self.seed;
        if let Some(script) = set.script_for(&call.method.path).cloned() {
            return play(script, call, None, seed).boxed();
        }
        if set.for_method(&call.method.path).is_none() {
            return self.fallback.respond(call);
        }
        async move {
            let stubs = set.for_method(&call.method.path).expect("checked above");
            match call.method.kind {
                CallKind::Unary | CallKind::ServerStreaming => answer_single_request(stubs, call, seed).await,
                CallKind::ClientStreaming => answer_client_stream(stubs, call, seed).await,
                CallKind::BidiStreaming => answer_bidi(set.clone(), call, seed).await,
            }
        }
        .boxed()
    }
}

async fn answer_single_request(
    stubs: &MethodStubs,
    mut call: Call,
    seed: u64,
) -> Result<tonic::Response<OutboundStream>, Status> {
    let request = call.inbound.single().await?;
    let chosen = claim_best(stubs.rank(&call.metadata, 0, &request))
        .ok_or_else(|| Status::not_found(stubs.explain_miss(&call.metadata, 0, &request)))?;
    let rendering = Rendering::new(&call, &request, seed);
    if let Some(script) = &chosen.output.script {
        return play_for_stub(&chosen, rendering, script.clone(), call, request, seed).await;
    }
    respond_with(&chosen, rendering)
}

async fn answer_client_stream(
    stubs: &MethodStubs,
    mut call: Call,
    seed: u64,
) -> Result<tonic::Response<OutboundStream>, Status> {
    let mut candidates = stubs.available(&call.metadata);
    let mut count = 0;
    let mut first = None;
    while let Some(message) = call.inbound.next().await? {
        first.get_or_insert_with(|| message.clone());
        narrow(&mut candidates, count, &message);
        if candidates.is_empty() {
            return Err(Status::not_found(stubs.explain_miss(&call.metadata, count, &message)));
        }
        count += 1;
    }
    candidates.retain(|candidate| candidate.stub.input.sequence_len().is_none_or(|len| len == count));
    candidates.sort_by(Ranked::compare);
    let chosen = claim_best(candidates).ok_or_else(|| {
        Status::not_found(format!("no stub for {} expects {count} messages", call.method.path))
    })?;
    let request = first.unwrap_or_else(|| DynamicMessage::new(call.method.input()));
    respond_with(&chosen, Rendering::new(&call, &request, seed))
}

/// Bidi: the response starts once the first message has chosen a stub, so that stub's
/// headers can go out with it.
async fn answer_bidi(
    set: Arc<StubSet>,
    mut call: Call,
    seed: u64,
) -> Result<tonic::Response<OutboundStream>, Status> {
    let Some(first) = call.inbound.next().await? else {
        return Ok(tonic::Response::new(Box::pin(futures::stream::empty())));
    };
    let stubs = set.for_method(&call.method.path).expect("the method has stubs");
    let mut conversation = Conversation::start(stubs, &call.metadata, &first)?;
    let mut rendering = Rendering::new(&call, &first, seed);
    rendering.answering(&first);
    if let Some(script) = conversation.current.output.script.clone() {
        return play_for_stub(&conversation.current, rendering, script, call, first, seed).await;
    }
    let output = &conversation.current.output;
    let headers = rendering.metadata(&conversation.current, &output.headers, &output.header_templates)?;
    let (metadata, path, mut inbound) = (call.metadata, call.method.path.clone(), call.inbound);
    let stream = try_stream! {
        let stubs = set.for_method(&path).expect("the method has stubs");
        let mut index = 0;
        loop {
            // Each answer's delays count from the message it answers.
            let mut due = tokio::time::Instant::now();
            for output in conversation.replies(index) {
                yield send(&conversation.current, &output, &mut due, &mut rendering).await?;
            }
            if conversation.ends_after(index) {
                break;
            }
            index += 1;
            let Some(next) = inbound.next().await? else { break };
            conversation.advance(stubs, &metadata, index, &next)?;
            rendering.answering(&next);
        }
        finish(&conversation.current, &mut rendering)?;
    };
    let mut response = tonic::Response::new(Box::pin(stream) as OutboundStream);
    *response.metadata_mut() = headers;
    Ok(response)
}

/// A script a stub chose plays the answer with the stub's headers and trailers, both rendered
/// as the call starts; the trailers go with whatever status the script ends with (OK, an
/// `error` entry's, or a failure's).
async fn play_for_stub(
    stub: &Arc<Stub>,
    mut rendering: Rendering,
    script: Arc<Script>,
    call: Call,
    first: DynamicMessage,
    seed: u64,
) -> Result<tonic::Response<OutboundStream>, Status> {
    let headers = rendering.metadata(stub, &stub.output.headers, &stub.output.header_templates)?;
    let trailers = trailers(stub, &mut rendering)?;
    let mut played = match play(script, call, Some(first), seed).await {
        Ok(played) => played,
        Err(status) => return Err(with_trailers(status, &trailers)),
    };
    played.metadata_mut().as_mut().extend(headers.into_headers());
    if trailers.is_empty() {
        return Ok(played);
    }
    let (metadata, mut script_stream, extensions) = played.into_parts();
    let stream = try_stream! {
        while let Some(item) = script_stream.next().await {
            match item {
                Ok(message) => yield message,
                Err(status) => Err(with_trailers(status, &trailers))?,
            }
        }
        // tonic sends a status that ends the body as trailers; OK with metadata is how a
        // successful call carries trailers.
        Err(Status::with_metadata(tonic::Code::Ok, "", trailers.clone()))?;
    };
    Ok(tonic::Response::from_parts(metadata, Box::pin(stream) as OutboundStream, extensions))
}

/// `status` carrying `trailers` too.
fn with_trailers(mut status: Status, trailers: &MetadataMap) -> Status {
    status.metadata_mut().as_mut().extend(trailers.clone().into_headers());
    status
}

/// The state of a bidi call: the v2 stubs still in the running, and the stub answering now.
struct Conversation {
    sequences: Vec<Ranked>,
    current: Arc<Stub>,
    claimed: Vec<usize>,
}

impl Conversation {
    fn start(stubs: &MethodStubs, metadata: &MetadataMap, first: &DynamicMessage) -> Result<Self, Status> {
        let ranked = stubs.rank(metadata, 0, first);
        let sequences = ranked.iter().filter(|r| r.stub.input.is_v2()).cloned().collect();
        let mut claimed = Vec::new();
        let current = claim_for_call(&mut claimed, ranked)
            .ok_or_else(|| Status::not_found(stubs.explain_miss(metadata, 0, first)))?;
        Ok(Self { sequences, current, claimed })
    }

    /// Narrows the sequences by message `index` and picks the stub that answers it: the best
    /// of the sequences still running and the v1 stubs, which answer each message on its own.
    fn advance(
        &mut self,
        stubs: &MethodStubs,
        metadata: &MetadataMap,
        index: usize,
        message: &DynamicMessage,
    ) -> Result<(), Status> {
        narrow(&mut self.sequences, index, message);
        let mut ranked: Vec<Ranked> =
            stubs.rank(metadata, index, message).into_iter().filter(|r| !r.stub.input.is_v2()).collect();
        ranked.extend(self.sequences.iter().cloned());
        ranked.sort_by(Ranked::compare);
        self.current = claim_for_call(&mut self.claimed, ranked)
            .ok_or_else(|| Status::not_found(stubs.explain_miss(metadata, index, message)))?;
        Ok(())
    }

    /// What answers inbound message `index`: for v2 `inputs` + `stream`, `stream[index]`, the
    /// rest of the stream at the last input, nothing past it; otherwise the whole output.
    fn replies(&self, index: usize) -> Vec<OutputMessage> {
        let output = &self.current.output;
        match self.current.input.inputs_len() {
            Some(len) if output.streamed => match index.cmp(&(len - 1)) {
                std::cmp::Ordering::Less => output.messages.get(index).cloned().into_iter().collect(),
                std::cmp::Ordering::Equal => {
                    output.messages.get(index..).map(<[_]>::to_vec).unwrap_or_default()
                }
                std::cmp::Ordering::Greater => Vec::new(),
            },
            _ => output.messages.clone(),
        }
    }

    /// True when the answering stub ends the call with its status right after message
    /// `index`: it has one, and expects no further input (v1, or the last of its `inputs`).
    fn ends_after(&self, index: usize) -> bool {
        self.current.output.status.is_some()
            && self.current.input.inputs_len().is_none_or(|len| index + 1 >= len)
    }
}

/// The first stub in `ranked` this call already uses, or that can still answer (a stub's
/// `times` counts calls, not messages).
fn claim_for_call(claimed: &mut Vec<usize>, ranked: Vec<Ranked>) -> Option<Arc<Stub>> {
    ranked.into_iter().map(|r| r.stub).find(|stub| {
        if claimed.contains(&stub.order) {
            return true;
        }
        let won = stub.claim();
        if won {
            claimed.push(stub.order);
        }
        won
    })
}

/// The first stub in `ranked` that can still answer (its `times` not used up).
fn claim_best(ranked: Vec<Ranked>) -> Option<Arc<Stub>> {
    ranked.into_iter().map(|r| r.stub).find(|stub| stub.claim())
}

/// Sends the stub's messages (each after its delay), then ends as the stub says. The messages
/// are read from the stub in place: a call copies none of them. Delays keep an absolute
/// schedule: each message is due its delay after the previous one was due, so a late timer
/// does not push back the messages after it.
fn respond_with(
    stub: &Arc<Stub>,
    mut rendering: Rendering,
) -> Result<tonic::Response<OutboundStream>, Status> {
    let stub = stub.clone();
    let headers = rendering.metadata(&stub, &stub.output.headers, &stub.output.header_templates)?;
    let stream = try_stream! {
        let mut due = tokio::time::Instant::now();
        for output in &stub.output.messages {
            yield send(&stub, output, &mut due, &mut rendering).await?;
        }
        finish(&stub, &mut rendering)?;
    };
    let mut response = tonic::Response::new(Box::pin(stream) as OutboundStream);
    *response.metadata_mut() = headers;
    Ok(response)
}

/// Waits until the message is due (its delay after the previous one's `due`), then gives it —
/// or the status it ends the stream with.
async fn send(
    stub: &Stub,
    output: &OutputMessage,
    due: &mut tokio::time::Instant,
    rendering: &mut Rendering,
) -> Result<OutboundMessage, Status> {
    let delay = output.delay.unwrap_or(stub.output.delay);
    if !delay.is_zero() {
        *due += delay;
        tokio::time::sleep_until(*due).await;
    }
    match &output.status {
        Some(status) => Err(status.to_status(&trailers(stub, rendering)?)),
        None => rendering.message(stub, output),
    }
}

/// The end of a stub's answer: its error status, or OK carrying its trailers.
fn finish(stub: &Stub, rendering: &mut Rendering) -> Result<(), Status> {
    let trailers = trailers(stub, rendering)?;
    match &stub.output.status {
        Some(status) => Err(status.to_status(&trailers)),
        // tonic sends a status that ends the body as trailers; OK with metadata is how a
        // successful call carries trailers.
        None if !trailers.is_empty() => Err(Status::with_metadata(tonic::Code::Ok, "", trailers)),
        None => Ok(()),
    }
}

fn trailers(stub: &Stub, rendering: &mut Rendering) -> Result<MetadataMap, Status> {
    rendering.metadata(stub, &stub.output.trailers, &stub.output.trailer_templates)
}
