//! What every fuzz target shares: the repository's example protos, loaded once through the
//! project's own loader (as `serve --protos` and `validate` load them), and the method catalog
//! stubs and scripts are compiled against.

pub mod compare;

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use prost_reflect::{DescriptorPool, MessageDescriptor};
use streamstorm::proto::{MethodCatalog, MethodEntry, load_pool};
use streamstorm::server::introspection::{BUILTIN_SERVICE_PREFIXES, add_builtin_descriptors};

/// One set of protos compiled into a pool, as one `serve --protos` run would load it.
pub struct ProtoSet {
    pub pool: DescriptorPool,
    pub catalog: MethodCatalog,
    /// Every method of its services, in path order.
    pub methods: Vec<Arc<MethodEntry>>,
}

/// The example protos: `protos/myapp` with the codec fixture that has every field kind, and
/// `protos/gripmock` apart (both have a `chat.proto`, so they are never served together).
pub struct Descriptors {
    pub sets: Vec<ProtoSet>,
    /// Every message type of every set (well-known types included), by full name.
    pub messages: Vec<MessageDescriptor>,
}

/// The repository root (the fuzz crate lives in `fuzz/`).
pub fn repository() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn load(paths: &[&str]) -> ProtoSet {
    let paths: Vec<PathBuf> = paths.iter().map(|path| repository().join(path)).collect();
    let mut pool = load_pool(&paths, &[]).unwrap_or_else(|problems| panic!("example protos: {problems}"));
    add_builtin_descriptors(&mut pool).expect("builtin descriptors");
    let catalog = MethodCatalog::new(&pool, BUILTIN_SERVICE_PREFIXES);
    let mut methods: Vec<Arc<MethodEntry>> = catalog.methods().cloned().collect();
    methods.sort_by(|a, b| a.path.cmp(&b.path));
    ProtoSet { pool, catalog, methods }
}

pub static DESCRIPTORS: LazyLock<Descriptors> = LazyLock::new(|| {
    let sets = vec![load(&["protos/myapp", "tests/fixtures/codec.proto"]), load(&["protos/gripmock"])];
    let mut messages: Vec<MessageDescriptor> = Vec::new();
    for set in &sets {
        for message in set.pool.all_messages() {
            if !messages.iter().any(|known| known.full_name() == message.full_name()) {
                messages.push(message);
            }
        }
    }
    messages.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    Descriptors { sets, messages }
});
