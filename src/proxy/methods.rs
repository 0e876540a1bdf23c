//! The methods calls are relayed for: those the protos given to the proxy define (their
//! messages can be decoded, for `/streams`, the judge's resume checks), and any other path as
//! an opaque method ([`MethodEntry::relayed`]), remembered up to a bound so a client inventing
//! paths cannot grow the proxy's memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::proto::{MethodCatalog, MethodEntry};

/// Opaque methods remembered; beyond them, each call gets an entry of its own.
const MAX_REMEMBERED: usize = 1024;

/// Finds the method of each relayed call.
pub struct RelayedMethods {
    catalog: Arc<MethodCatalog>,
    opaque: Mutex<HashMap<String, Arc<MethodEntry>>>,
}

impl RelayedMethods {
    pub fn new(catalog: Arc<MethodCatalog>) -> Self {
        Self { catalog, opaque: Mutex::default() }
    }

    /// The method at `path`.
    pub fn get(&self, path: &str) -> Arc<MethodEntry> {
        if let Some(entry) = self.catalog.by_path(path) {
            return entry.clone();
        }
        let mut opaque = self.opaque.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = opaque.get(path) {
            return entry.clone();
        }
        let entry = Arc::new(MethodEntry::relayed(path));
        if opaque.len() < MAX_REMEMBERED {
            opaque.insert(path.to_owned(), entry.clone());
        }
        entry
    }
}
