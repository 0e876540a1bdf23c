//! The ceiling streamstorm is measured against: a static tonic server for `protos/myapp` with
//! prost-generated types, serving `NotificationService/Subscribe` (server streaming) and
//! `UserService/GetUser` (unary) with fixed messages, on streamstorm's own runtime and HTTP/2
//! settings ([`streamstorm::server::runtime`], [`streamstorm::server::accept::http2_builder`]).
//!
//! The messages are the ones the end-to-end benchmark's stubs send ([`notification`],
//! [`user`]); the benchmark checks they decode to the same content and size before it runs.
//!
//! With [`Behaviour::per_message_delay`] set it is the latency-fidelity benchmark's reference:
//! a streamed call sleeps that long before each message, the naive way.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use streamstorm::server::Http2Settings;
use streamstorm::server::accept::http2_builder;

/// The generated types and service traits.
pub mod myapp {
    tonic::include_proto!("myapp");
}

use myapp::notification_service_server::{NotificationService, NotificationServiceServer};
use myapp::user_service_server::{UserService, UserServiceServer};
use myapp::{GetUserRequest, Notification, SubscribeRequest, User};

/// A subscription to this topic is an idle stream: one message at once, so the client knows it
/// is open, then another after [`Behaviour::idle_delay`], then the end.
pub const IDLE_TOPIC: &str = "idle";

/// What the server sends.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// Notifications per `Subscribe` call (sent as fast as the client reads them).
    pub stream_messages: u32,
    /// How long an idle subscription waits after its first message before its second.
    pub idle_delay: Duration,
    /// When set, each streamed notification is sent after this pause, taken the naive way
    /// (`tokio::time::sleep` before each message): the reference the latency-fidelity
    /// benchmark holds streamstorm's `latency.per_message` against.
    pub per_message_delay: Option<Duration>,
}

/// The notification every `Subscribe` call streams.
pub fn notification() -> Notification {
    Notification {
        topic: "payment".into(),
        message: "Payment processed for order 1234 in 23 ms".into(),
        timestamp: Some(prost_types::Timestamp { seconds: 1_704_110_400, nanos: 250_000_000 }),
        severity: myapp::Severity::Warning.into(),
        sequence: 42,
    }
}

/// The user every `GetUser` call answers with.
pub fn user() -> User {
    User {
        user_id: "alice".into(),
        name: "Alice Example".into(),
        roles: vec!["admin".into(), "billing".into()],
        labels: [("team".to_owned(), "payments".to_owned())].into(),
        created_at: Some(prost_types::Timestamp { seconds: 1_704_110_400, nanos: 0 }),
        session_ttl: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
        login_count: 1234,
        avatar: vec![0x89, 0x50, 0x4e, 0x47],
        contact: Some(myapp::user::Contact::Email("alice@example.com".into())),
        address: Some(myapp::Address { street: "1 Main St".into(), city: "Springfield".into() }),
        state: myapp::UserState::Active.into(),
    }
}

struct Notifications {
    behaviour: Behaviour,
}

type NotificationStream = Pin<Box<dyn Stream<Item = Result<Notification, Status>> + Send>>;

#[tonic::async_trait]
impl NotificationService for Notifications {
    type SubscribeStream = NotificationStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<NotificationStream>, Status> {
        if request.get_ref().topics.iter().any(|topic| topic == IDLE_TOPIC) {
            let delay = self.behaviour.idle_delay;
            let later = futures::stream::once(async move {
                tokio::time::sleep(delay).await;
                Ok(notification())
            });
            let idle = futures::stream::once(async { Ok(notification()) }).chain(later);
            return Ok(Response::new(Box::pin(idle)));
        }
        let message = notification();
        let count = self.behaviour.stream_messages as usize;
        let messages = futures::stream::iter(std::iter::repeat_n(message, count).map(Ok));
        let Some(delay) = self.behaviour.per_message_delay else {
            return Ok(Response::new(Box::pin(messages)));
        };
        let paced = messages.then(move |message| async move {
            tokio::time::sleep(delay).await;
            message
        });
        Ok(Response::new(Box::pin(paced)))
    }
}

struct Users;

#[tonic::async_trait]
impl UserService for Users {
    async fn get_user(&self, _request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        Ok(Response::new(user()))
    }
}

/// Accepts connections on `listener` and serves them with streamstorm's default HTTP/2
/// settings until the process ends.
pub async fn serve(listener: TcpListener, behaviour: Behaviour) -> std::io::Result<()> {
    let routes = tonic::service::Routes::new(NotificationServiceServer::new(Notifications { behaviour }))
        .add_service(UserServiceServer::new(Users));
    let builder = http2_builder(&Http2Settings::default());
    loop {
        let (stream, _peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let service = TowerToHyperService::new(routes.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(connection);
    }
}
