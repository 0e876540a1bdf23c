//! Where the load goes when it goes to more than one server: a `--target` (or `load.target`)
//! of comma-separated `host:port` addresses and `dns:///name:port` names. A DNS name stands
//! for every address it resolves to and is resolved again every [`RESOLVE_EVERY`], as gRPC's
//! DNS resolver does; the run's connections are dealt round robin over the addresses, and
//! each address keeps count of the calls it carried for the report's per-target breakdown.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::connect::{ConnectError, channels};
use super::tls::ClientTls;
pub use crate::config::load::{TargetEntry, parse_targets};

/// How often `dns:///` names are resolved again (gRPC's resolver waits at least 30 s too).
pub const RESOLVE_EVERY: Duration = Duration::from_secs(30);

/// What one address carried.
#[derive(Debug, Default)]
pub struct TargetCounts {
    pub connections: AtomicU64,
    pub calls: AtomicU64,
    pub failed: AtomicU64,
}

/// One connection of the run, to one address.
#[derive(Clone)]
pub struct Connection {
    pub address: String,
    pub channel: Channel,
    pub counts: Arc<TargetCounts>,
}

/// The run's connections, replaced as a whole when a DNS name resolves differently.
pub struct ConnectionPool {
    connections: ArcSwap<Vec<Connection>>,
    /// Every address ever connected to, with its counts (kept after it leaves the DNS answer).
    counts: Mutex<BTreeMap<String, Arc<TargetCounts>>>,
}

/// How the pool connects.
#[derive(Clone)]
pub struct PoolSettings {
    pub connections: usize,
    pub connect_timeout: Duration,
    pub tls: Option<ClientTls>,
}

impl ConnectionPool {
    /// Connections already made to one address (benches, tests).
    pub fn from_channels(address: &str, channels: Vec<Channel>) -> Self {
        let pool = Self { connections: ArcSwap::from_pointee(Vec::new()), counts: Mutex::default() };
        let counts = pool.counts_for(address);
        let connections = channels
            .into_iter()
            .map(|channel| Connection { address: address.to_owned(), channel, counts: counts.clone() })
            .collect();
        pool.connections.store(Arc::new(connections));
        pool
    }

    /// The connection slot `index` uses for its next call.
    pub fn pick(&self, index: usize) -> Connection {
        let connections = self.connections.load();
        connections[index % connections.len()].clone()
    }

    /// Per address: connections now open to it, calls and failed calls.
    pub fn breakdown(&self) -> Vec<(String, u64, u64, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .map(|(address, counts)| {
                let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
                (address.clone(), load(&counts.connections), load(&counts.calls), load(&counts.failed))
            })
            .collect()
    }

    fn counts_for(&self, address: &str) -> Arc<TargetCounts> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.entry(address.to_owned()).or_default().clone()
    }

    /// Deals `settings.connections` (at least one per address) round robin over `addresses`.
    fn connect(&self, addresses: &[String], settings: &PoolSettings) -> Result<(), ConnectError> {
        let total = settings.connections.max(addresses.len()).max(1);
        let mut per_address = vec![0usize; addresses.len()];
        for index in 0..total {
            per_address[index % addresses.len()] += 1;
        }
        let mut by_address = Vec::with_capacity(addresses.len());
        for (address, count) in addresses.iter().zip(per_address) {
            let counts = self.counts_for(address);
            let made = channels(address, count, settings.connect_timeout, settings.tls.as_ref())?;
            let connection =
                |channel| Connection { address: address.clone(), channel, counts: counts.clone() };
            by_address.push(made.into_iter().map(connection).collect());
        }
        // Consecutive slots land on different addresses.
        let interleaved = interleave(by_address);
        for counts in self.counts.lock().unwrap_or_else(|e| e.into_inner()).values() {
            counts.connections.store(0, Ordering::Relaxed);
        }
        for connection in &interleaved {
            connection.counts.connections.fetch_add(1, Ordering::Relaxed);
        }
        self.connections.store(Arc::new(interleaved));
        Ok(())
    }
}

/// `[[a, a], [b, b]]` → `[a, b, a, b]`.
fn interleave(by_address: Vec<Vec<Connection>>) -> Vec<Connection> {
    let longest = by_address.iter().map(Vec::len).max().unwrap_or(0);
    let mut dealt = Vec::new();
    for round in 0..longest {
        dealt.extend(by_address.iter().filter_map(|queue| queue.get(round).cloned()));
    }
    dealt
}

/// Every address the entries stand for now, in order, without repeats.
pub async fn resolve(entries: &[TargetEntry]) -> std::io::Result<Vec<String>> {
    let mut addresses: Vec<String> = Vec::new();
    for entry in entries {
        let found = match entry {
            TargetEntry::Address(address) => vec![address.clone()],
            TargetEntry::Dns(name) => {
                let mut resolved: Vec<String> = tokio::net::lookup_host(name.as_str())
                    .await?
                    .map(|address| address.to_string())
                    .collect();
                resolved.sort();
                resolved
            }
        };
        for address in found {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
    }
    Ok(addresses)
}

/// Resolves `entries`, connects, and (when a DNS name is among them) re-resolves every
/// [`RESOLVE_EVERY`] until `stop`, reconnecting when the answer changes.
pub async fn connect_targets(
    entries: Vec<TargetEntry>,
    settings: PoolSettings,
    stop: CancellationToken,
) -> anyhow::Result<(Arc<ConnectionPool>, Option<tokio::task::JoinHandle<()>>)> {
    let addresses = resolve(&entries).await?;
    anyhow::ensure!(!addresses.is_empty(), "the targets resolve to no address");
    let pool =
        Arc::new(ConnectionPool { connections: ArcSwap::from_pointee(Vec::new()), counts: Mutex::default() });
    pool.connect(&addresses, &settings)?;
    if !entries.iter().any(|entry| matches!(entry, TargetEntry::Dns(_))) {
        return Ok((pool, None));
    }
    let task = tokio::spawn(re_resolve(entries, settings, pool.clone(), addresses, stop));
    Ok((pool, Some(task)))
}

async fn re_resolve(
    entries: Vec<TargetEntry>,
    settings: PoolSettings,
    pool: Arc<ConnectionPool>,
    mut current: Vec<String>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RESOLVE_EVERY) => {}
            _ = stop.cancelled() => return,
        }
        match resolve(&entries).await {
            Ok(addresses) if !addresses.is_empty() && addresses != current => {
                tracing::info!(addresses = ?addresses, "Targets re-resolved; reconnecting.");
                if let Err(error) = pool.connect(&addresses, &settings) {
                    tracing::warn!(%error, "Cannot connect to the re-resolved targets; keeping the old ones.");
                    continue;
                }
                current = addresses;
            }
            Ok(_) => {}
            // As gRPC does, keep the last good answer when a lookup fails.
            Err(error) => tracing::warn!(%error, "Re-resolving the targets failed; keeping the last answer."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_dns_names() {
        assert_eq!(
            parse_targets("a:1, dns:///svc.ns:50051").unwrap(),
            vec![TargetEntry::Address("a:1".into()), TargetEntry::Dns("svc.ns:50051".into())]
        );
        assert!(parse_targets("a:1,b").unwrap_err().contains("\"b\""));
        assert!(parse_targets("dns:///svc").is_err());
    }

    #[tokio::test]
    async fn connections_alternate_over_addresses() {
        let entries = parse_targets("127.0.0.1:1,127.0.0.1:2").unwrap();
        let settings = PoolSettings { connections: 5, connect_timeout: Duration::from_millis(50), tls: None };
        let (pool, task) = connect_targets(entries, settings, CancellationToken::new()).await.unwrap();
        assert!(task.is_none(), "no DNS name, nothing to re-resolve");
        let picked: Vec<String> = (0..4).map(|index| pool.pick(index).address).collect();
        assert_eq!(picked, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1", "127.0.0.1:2"]);
        let connections: Vec<u64> = pool.breakdown().iter().map(|row| row.1).collect();
        assert_eq!(connections, [3, 2]);
    }
}
