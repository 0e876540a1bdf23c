//! The registry of live connections. The server owns its accept loop so that every connection
//! can be addressed later — drained with GOAWAY, closed, and (in the chaos engine) reset or
//! blackholed — and so that every stream knows which connection carries it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::delivery::DeliveryProgress;
use crate::driver::{ConnectionControl, ConnectionCut};

/// Identifies a connection for the life of the server process (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// What the server can tell a connection's task to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionCommand {
    /// Send GOAWAY and let in-flight streams finish (server shutdown: the server closes what is
    /// left when its grace period ends).
    Drain,
    /// Send GOAWAY, then close after `grace` whatever is still running (zero: at once).
    GoAway { grace: std::time::Duration },
    /// Close the connection now, abandoning its streams.
    Close,
    /// Close the connection with a TCP RST (SO_LINGER 0), as a crashed peer or middlebox would.
    Reset,
    /// Stop reading, writing and answering pings, as a dead network path would; reset the
    /// connection after `hold`.
    Blackhole { hold: std::time::Duration },
}

/// What a stream knows about the connection it arrived on; travels in request extensions.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub id: ConnectionId,
    pub peer: SocketAddr,
    pub stats: Arc<ConnectionStats>,
    /// What the connection has delivered, for cuts that must not lose messages in flight.
    pub delivery: Arc<DeliveryProgress>,
}

/// Live counters of one connection.
#[derive(Debug)]
pub struct ConnectionStats {
    /// When the connection was accepted.
    pub opened_at: Instant,
    /// Streams opened on it so far.
    pub streams_opened: AtomicU64,
    /// Streams open on it now.
    pub streams_active: AtomicUsize,
}

struct RegistryEntry {
    context: ConnectionContext,
    commands: mpsc::UnboundedSender<ConnectionCommand>,
}

/// Every connection the server holds, by id.
#[derive(Default)]
pub struct ConnectionRegistry {
    next_id: AtomicU64,
    connections: Mutex<HashMap<ConnectionId, RegistryEntry>>,
}

/// A snapshot of one connection, for admin views and tests.
#[derive(Debug, Clone)]
pub struct ConnectionSummary {
    pub id: ConnectionId,
    pub peer: SocketAddr,
    pub age: std::time::Duration,
    pub streams_opened: u64,
    pub streams_active: usize,
}

impl ConnectionRegistry {
    /// Registers a newly accepted connection; the receiver delivers commands to its task.
    pub fn register(
        &self,
        peer: SocketAddr,
    ) -> (ConnectionContext, mpsc::UnboundedReceiver<ConnectionCommand>) {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let context = ConnectionContext {
            id,
            peer,
            stats: Arc::new(ConnectionStats {
                opened_at: Instant::now(),
                streams_opened: AtomicU64::new(0),
                streams_active: AtomicUsize::new(0),
            }),
            delivery: Arc::default(),
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().insert(id, RegistryEntry { context: context.clone(), commands: sender });
        (context, receiver)
    }

    /// Forgets a connection whose task has ended.
    pub fn remove(&self, id: ConnectionId) {
        self.lock().remove(&id);
    }

    /// Sends a command to one connection; false when it is already gone.
    pub fn command(&self, id: ConnectionId, command: ConnectionCommand) -> bool {
        self.lock().get(&id).is_some_and(|entry| entry.commands.send(command).is_ok())
    }

    /// Sends a command to every connection.
    pub fn command_all(&self, command: ConnectionCommand) {
        for entry in self.lock().values() {
            // A closed channel means the task is ending anyway.
            let _ = entry.commands.send(command);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live connections, oldest first.
    pub fn summaries(&self) -> Vec<ConnectionSummary> {
        let mut summaries: Vec<_> = self
            .lock()
            .values()
            .map(|entry| {
                let stats = &entry.context.stats;
                ConnectionSummary {
                    id: entry.context.id,
                    peer: entry.context.peer,
                    age: stats.opened_at.elapsed(),
                    streams_opened: stats.streams_opened.load(Ordering::Relaxed),
                    streams_active: stats.streams_active.load(Ordering::Relaxed),
                }
            })
            .collect();
        summaries.sort_by_key(|summary| summary.id);
        summaries
    }

    /// The stream driver's handle on connection `context`.
    pub fn control(self: &Arc<Self>, context: &ConnectionContext) -> Arc<dyn ConnectionControl> {
        Arc::new(ConnectionCuts {
            id: context.id,
            registry: self.clone(),
            delivery: context.delivery.clone(),
        })
    }

    /// The same handle on connection `id`, while it is live.
    pub fn control_of(self: &Arc<Self>, id: ConnectionId) -> Option<Arc<dyn ConnectionControl>> {
        let context = self.lock().get(&id).map(|entry| entry.context.clone())?;
        Some(self.control(&context))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnectionId, RegistryEntry>> {
        // A panic while holding this lock cannot leave the map half-updated.
        self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Cuts of one connection, as the stream driver asks for them.
struct ConnectionCuts {
    id: ConnectionId,
    registry: Arc<ConnectionRegistry>,
    delivery: Arc<DeliveryProgress>,
}

impl ConnectionControl for ConnectionCuts {
    fn cut(&self, cut: ConnectionCut) {
        let command = match cut {
            ConnectionCut::GoAway { grace } => ConnectionCommand::GoAway { grace },
            ConnectionCut::Reset => ConnectionCommand::Reset,
            ConnectionCut::Blackhole { hold } => ConnectionCommand::Blackhole { hold },
        };
        self.registry.command(self.id, command);
    }

    fn delivered(&self) -> BoxFuture<'static, ()> {
        let delivery = self.delivery.clone();
        Box::pin(async move { delivery.delivered().await })
    }
}
