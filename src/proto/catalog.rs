//! The methods a pool defines, indexed by their HTTP/2 path (`/myapp.ChatService/Chat`), with
//! the call pattern each one has. Built once at load; looked up on every call.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor};

/// The four gRPC call patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    BidiStreaming,
}

impl CallKind {
    pub fn of(method: &MethodDescriptor) -> Self {
        match (method.is_client_streaming(), method.is_server_streaming()) {
            (false, false) => Self::Unary,
            (false, true) => Self::ServerStreaming,
            (true, false) => Self::ClientStreaming,
            (true, true) => Self::BidiStreaming,
        }
    }

    /// The label used in logs, metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ServerStreaming => "server_streaming",
            Self::ClientStreaming => "client_streaming",
            Self::BidiStreaming => "bidi_streaming",
        }
    }

    pub fn client_streams(self) -> bool {
        matches!(self, Self::ClientStreaming | Self::BidiStreaming)
    }

    pub fn server_streams(self) -> bool {
        matches!(self, Self::ServerStreaming | Self::BidiStreaming)
    }
}

impl fmt::Display for CallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One servable method.
#[derive(Debug)]
pub struct MethodEntry {
    pub descriptor: MethodDescriptor,
    pub kind: CallKind,
    /// A method the proxy relays without protos for it: its descriptor is the opaque stand-in
    /// ([`MethodEntry::relayed`]) and its call pattern is not known.
    pub opaque: bool,
    /// `/package.Service/Method`.
    pub path: String,
    /// `package.Service`.
    pub service: String,
    /// `Method`.
    pub method: String,
}

impl MethodEntry {
    /// A method at `path` that the proxy relays without protos for it. The proxy sees such a
    /// method as what it relays: a bidirectional stream of messages it does not decode, so its
    /// descriptor stands in as `streamstorm.relay.Opaque` (a message with no fields: whatever
    /// is decoded stays unknown fields), and `kind` is only a placeholder (see
    /// [`MethodEntry::kind_label`]).
    pub fn relayed(path: &str) -> Self {
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let service = parts.next().unwrap_or_default().to_owned();
        let method = parts.next().unwrap_or_default().to_owned();
        Self {
            descriptor: OPAQUE_METHOD.clone(),
            kind: CallKind::BidiStreaming,
            opaque: true,
            path: path.to_owned(),
            service,
            method,
        }
    }

    /// The call pattern's label for metrics and listings: `unknown` for an opaque method.
    pub fn kind_label(&self) -> &'static str {
        if self.opaque { "unknown" } else { self.kind.as_str() }
    }

    pub fn input(&self) -> MessageDescriptor {
        self.descriptor.input()
    }

    pub fn output(&self) -> MessageDescriptor {
        self.descriptor.output()
    }
}

/// The stand-in descriptor of methods relayed without protos: `streamstorm.relay.Relay/Opaque`,
/// a bidirectional stream of `streamstorm.relay.Opaque` messages.
static OPAQUE_METHOD: LazyLock<MethodDescriptor> = LazyLock::new(|| {
    use prost_types::{
        DescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
        ServiceDescriptorProto,
    };
    let method = MethodDescriptorProto {
        name: Some("Opaque".into()),
        input_type: Some(".streamstorm.relay.Opaque".into()),
        output_type: Some(".streamstorm.relay.Opaque".into()),
        client_streaming: Some(true),
        server_streaming: Some(true),
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("streamstorm/relay.proto".into()),
        package: Some("streamstorm.relay".into()),
        message_type: vec![DescriptorProto { name: Some("Opaque".into()), ..Default::default() }],
        service: vec![ServiceDescriptorProto {
            name: Some("Relay".into()),
            method: vec![method],
            ..Default::default()
        }],
        syntax: Some("proto3".into()),
        ..Default::default()
    };
    let pool = DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: vec![file] })
        .expect("the opaque relay descriptor is valid");
    let service = pool.get_service_by_name("streamstorm.relay.Relay").expect("defined above");
    service.methods().next().expect("defined above")
});

/// Every method of every service in a pool, except those under `skip_packages`.
#[derive(Debug, Default)]
pub struct MethodCatalog {
    by_path: HashMap<String, Arc<MethodEntry>>,
    services: Vec<String>,
}

impl MethodCatalog {
    /// Indexes the pool's services, leaving out those whose full name starts with one of
    /// `skip_prefixes` (services the server implements natively, such as health).
    pub fn new(pool: &DescriptorPool, skip_prefixes: &[&str]) -> Self {
        let mut catalog = Self::default();
        for service in pool.services() {
            let service_name = service.full_name().to_owned();
            if skip_prefixes.iter().any(|prefix| service_name.starts_with(prefix)) {
                continue;
            }
            for method in service.methods() {
                let entry = MethodEntry {
                    kind: CallKind::of(&method),
                    opaque: false,
                    path: format!("/{}/{}", service_name, method.name()),
                    service: service_name.clone(),
                    method: method.name().to_owned(),
                    descriptor: method,
                };
                catalog.by_path.insert(entry.path.clone(), Arc::new(entry));
            }
            catalog.services.push(service_name);
        }
        catalog.services.sort();
        catalog
    }

    /// The method served at an HTTP/2 path.
    pub fn by_path(&self, path: &str) -> Option<&Arc<MethodEntry>> {
        self.by_path.get(path)
    }

    /// Full names of the services, sorted.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    pub fn methods(&self) -> impl Iterator<Item = &Arc<MethodEntry>> {
        self.by_path.values()
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }
}
