//! The services every gRPC server is expected to speak about itself: server reflection (v1 and
//! v1alpha — grpcurl 1.8 speaks only v1alpha — from one pool, so both list the same services)
//! and `grpc.health.v1.Health` with a status per service.

use prost_reflect::{DescriptorError, DescriptorPool};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Full names of the services implemented natively rather than from the loaded protos.
pub const BUILTIN_SERVICE_PREFIXES: &[&str] = &["grpc.health.v1.", "grpc.reflection."];

/// Adds the health and reflection protos to `pool`, so that reflection describes them too, and
/// `google.rpc` (Status, ErrorInfo, …) for rich error details. Files already there are kept.
pub fn add_builtin_descriptors(pool: &mut DescriptorPool) -> Result<(), DescriptorError> {
    for encoded in [
        tonic_types::pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ] {
        pool.decode_file_descriptor_set(encoded)?;
    }
    Ok(())
}

/// Reflection servers, v1 and v1alpha, describing every file in `pool`.
pub fn reflection_services(
    pool: &DescriptorPool,
) -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let encoded = pool.encode_to_vec();
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(&encoded)
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

/// A health service reporting `SERVING` for the server as a whole ("") and for each service.
pub async fn health_service(
    services: impl IntoIterator<Item = impl AsRef<str>>,
) -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, server) = tonic_health::server::health_reporter();
    for service in services {
        reporter.set_service_status(service, ServingStatus::Serving).await;
    }
    (reporter, server)
}
