//! Server reflection (v1 and v1alpha) and the health service, through their generated clients.

mod common;

use std::time::Duration;

use common::{EXAMPLE_SERVICES, TestServer};
use streamstorm::server::ServerSettings;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest as ReflectionRequestV1;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient as ReflectionV1;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest as RequestV1;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse as ResponseV1;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest as ReflectionRequestV1alpha;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as ReflectionV1alpha;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as RequestV1alpha;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as ResponseV1alpha;

async fn ask_v1(server: &TestServer, request: RequestV1) -> ResponseV1 {
    let mut client = ReflectionV1::new(server.channel().await);
    let request = ReflectionRequestV1 { host: String::new(), message_request: Some(request) };
    let mut responses =
        client.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    responses.message().await.unwrap().unwrap().message_response.unwrap()
}

async fn ask_v1alpha(server: &TestServer, request: RequestV1alpha) -> ResponseV1alpha {
    let mut client = ReflectionV1alpha::new(server.channel().await);
    let request = ReflectionRequestV1alpha { host: String::new(), message_request: Some(request) };
    let mut responses =
        client.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    responses.message().await.unwrap().unwrap().message_response.unwrap()
}

#[tokio::test]
async fn both_reflection_versions_list_every_service() {
    let server = TestServer::start(ServerSettings::default()).await;
    let ResponseV1::ListServicesResponse(v1) = ask_v1(&server, RequestV1::ListServices(String::new())).await
    else {
        panic!("v1 answered something other than a service list");
    };
    let mut v1: Vec<_> = v1.service.into_iter().map(|s| s.name).collect();
    v1.sort();
    assert_eq!(v1, EXAMPLE_SERVICES);

    let ResponseV1alpha::ListServicesResponse(v1alpha) =
        ask_v1alpha(&server, RequestV1alpha::ListServices(String::new())).await
    else {
        panic!("v1alpha answered something other than a service list");
    };
    let mut v1alpha: Vec<_> = v1alpha.service.into_iter().map(|s| s.name).collect();
    v1alpha.sort();
    assert_eq!(v1alpha, EXAMPLE_SERVICES);
}

#[tokio::test]
async fn reflection_serves_files_and_their_imports() {
    let server = TestServer::start(ServerSettings::default()).await;
    let response = ask_v1(&server, RequestV1::FileContainingSymbol("myapp.NotificationService".into())).await;
    let ResponseV1::FileDescriptorResponse(files) = response else { panic!("expected file descriptors") };
    let names: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| {
            <prost_types::FileDescriptorProto as prost::Message>::decode(bytes.as_slice())
                .unwrap()
                .name()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["myapp/notification.proto"]);
    // Clients then fetch the imports by name.
    let response = ask_v1(&server, RequestV1::FileByFilename("google/protobuf/timestamp.proto".into())).await;
    assert!(matches!(response, ResponseV1::FileDescriptorResponse(_)), "{response:?}");

    let mut client = ReflectionV1alpha::new(server.channel().await);
    let request = ReflectionRequestV1alpha {
        host: String::new(),
        message_request: Some(RequestV1alpha::FileContainingSymbol("myapp.Nope".into())),
    };
    let mut responses =
        client.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    let status = responses.message().await.expect_err("an unknown symbol is an error");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn health_reports_each_service_and_unknown_ones_are_not_found() {
    let server = TestServer::start(ServerSettings::default()).await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "myapp.ChatService", "myapp.UserService"] {
        let response = health.check(HealthCheckRequest { service: service.into() }).await.unwrap();
        assert_eq!(response.into_inner().status(), ServingStatus::Serving, "service {service:?}");
    }
    let status = health.check(HealthCheckRequest { service: "myapp.Nope".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn health_watch_sees_not_serving_when_shutdown_begins() {
    let server = TestServer::start(ServerSettings {
        shutdown_grace: Duration::from_secs(2),
        ..ServerSettings::default()
    })
    .await;
    let mut health = HealthClient::new(server.channel().await);
    let mut updates =
        health.watch(HealthCheckRequest { service: "myapp.ChatService".into() }).await.unwrap().into_inner();
    assert_eq!(updates.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    server.begin_shutdown();
    let update =
        tokio::time::timeout(Duration::from_secs(2), updates.message()).await.expect("an update arrives");
    assert_eq!(update.unwrap().unwrap().status(), ServingStatus::NotServing);
}
