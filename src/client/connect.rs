//! Connections to the target: N HTTP/2 channels with keepalive (so a blackholed connection is
//! noticed) and a connect timeout, plaintext or over TLS ([`super::tls`]), and — for `--target`
//! without protos — the target's service definitions fetched over server reflection.

use std::time::Duration;

use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorProto;
use tonic::transport::{Channel, Endpoint};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use super::tls::ClientTls;

/// Why the target could not be reached or described.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("not a target address: {0} (write host:port, e.g. localhost:50051)")]
    Address(String),
    #[error("cannot reach {target} for reflection: {source}")]
    Unreachable { target: String, source: tonic::transport::Error },
    #[error("reflection on {target} failed: {status} (pass --protos instead)")]
    Reflection { target: String, status: Box<tonic::Status> },
    #[error("the descriptors {target} sent do not form a pool: {reason}")]
    Descriptors { target: String, reason: String },
}

/// HTTP/2 pings: a connection whose pings go unanswered this long after being sent is dead.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

fn endpoint(
    target: &str,
    connect_timeout: Duration,
    tls: Option<&ClientTls>,
) -> Result<Endpoint, ConnectError> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let uri = if target.contains("://") { target.to_owned() } else { format!("{scheme}://{target}") };
    Ok(Endpoint::from_shared(uri)
        .map_err(|_| ConnectError::Address(target.to_owned()))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}

/// `count` lazily connected channels to `target`; each reconnects by itself after a failure.
pub fn channels(
    target: &str,
    count: usize,
    connect_timeout: Duration,
    tls: Option<&ClientTls>,
) -> Result<Vec<Channel>, ConnectError> {
    let endpoint = endpoint(target, connect_timeout, tls)?;
    let connect = || match tls {
        Some(tls) => endpoint.connect_with_connector_lazy(tls.connector()),
        None => endpoint.connect_lazy(),
    };
    Ok((0..count.max(1)).map(|_| connect()).collect())
}

/// Every service the target lists over reflection (v1), with the files defining them.
pub async fn pool_from_reflection(
    target: &str,
    connect_timeout: Duration,
    tls: Option<&ClientTls>,
) -> Result<DescriptorPool, ConnectError> {
    let endpoint = endpoint(target, connect_timeout, tls)?;
    let channel = match tls {
        Some(tls) => endpoint.connect_with_connector(tls.connector()).await,
        None => endpoint.connect().await,
    }
    .map_err(|source| ConnectError::Unreachable { target: target.to_owned(), source })?;
    let mut client = ServerReflectionClient::new(channel);
    let fail = |status: tonic::Status| ConnectError::Reflection {
        target: target.to_owned(),
        status: Box::new(status),
    };
    let list = ask(&mut client, MessageRequest::ListServices(String::new())).await.map_err(fail)?;
    let services: Vec<String> = match list {
        MessageResponse::ListServicesResponse(list) => {
            list.service.into_iter().map(|service| service.name).collect()
        }
        _ => Vec::new(),
    };
    let mut files: Vec<FileDescriptorProto> = Vec::new();
    let mut requests: Vec<MessageRequest> = services
        .iter()
        .filter(|name| !name.starts_with("grpc."))
        .map(|service| MessageRequest::FileContainingSymbol(service.clone()))
        .collect();
    // Servers may answer with the file alone: ask for each import not yet seen by name.
    while let Some(request) = requests.pop() {
        let answer = ask(&mut client, request).await.map_err(fail)?;
        let MessageResponse::FileDescriptorResponse(response) = answer else { continue };
        for bytes in response.file_descriptor_proto {
            let file = FileDescriptorProto::decode(bytes.as_slice()).map_err(|error| {
                ConnectError::Descriptors { target: target.to_owned(), reason: error.to_string() }
            })?;
            if files.iter().any(|known| known.name == file.name) {
                continue;
            }
            for dependency in &file.dependency {
                let pending = requests.iter().any(
                    |request| matches!(request, MessageRequest::FileByFilename(name) if name == dependency),
                );
                if !pending && !files.iter().any(|known| known.name.as_deref() == Some(dependency.as_str())) {
                    requests.push(MessageRequest::FileByFilename(dependency.clone()));
                }
            }
            files.push(file);
        }
    }
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(files).map_err(|error| ConnectError::Descriptors {
        target: target.to_owned(),
        reason: error.to_string(),
    })?;
    Ok(pool)
}

async fn ask(
    client: &mut ServerReflectionClient<Channel>,
    request: MessageRequest,
) -> Result<MessageResponse, tonic::Status> {
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut answers = client.server_reflection_info(futures::stream::iter([request])).await?.into_inner();
    let answer = answers.message().await?.and_then(|answer| answer.message_response);
    match answer {
        Some(MessageResponse::ErrorResponse(error)) => {
            Err(tonic::Status::new(tonic::Code::from_i32(error.error_code), error.error_message))
        }
        Some(answer) => Ok(answer),
        None => Err(tonic::Status::unavailable("reflection sent no answer")),
    }
}
