//! The syntax of `load.target` and `--target`: one `host:port`, a comma-separated list of
//! them, or `dns:///name:port` names (each standing for every address it resolves to).
//! Connecting is the load client's business ([`crate::client::targets`]).

/// One entry of a target list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetEntry {
    /// `host:port`, connected to as written.
    Address(String),
    /// `dns:///name:port`: every address the name resolves to.
    Dns(String),
}

/// Splits `a:1,b:2,dns:///c:3` into entries; every entry must carry a port.
pub fn parse_targets(text: &str) -> Result<Vec<TargetEntry>, String> {
    let mut entries = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (entry, address) = match part.strip_prefix("dns:///") {
            Some(name) => (TargetEntry::Dns(name.to_owned()), name),
            None => (TargetEntry::Address(part.to_owned()), part),
        };
        let has_port = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !has_port {
            return Err(format!(
                "not a target: {part:?} (write embedded, host:port like localhost:50051, a comma-separated list of them, or dns:///name:port)"
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}
