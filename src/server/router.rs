//! Routes each request by its gRPC service name: health and reflection to their native
//! implementations, everything else to the dynamic service (which answers `UNIMPLEMENTED` for
//! what the protos do not define).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use super::dynamic::DynamicService;

type GrpcService = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Infallible>;

/// The service every call a server accepts goes to: the mock's [`GrpcRouter`], or the proxy's
/// relay.
pub type FrontService = GrpcService;

/// Dispatches requests to a native service by name, or to the dynamic service.
#[derive(Clone)]
pub struct GrpcRouter {
    native: Arc<HashMap<&'static str, GrpcService>>,
    dynamic: DynamicService,
}

impl GrpcRouter {
    pub fn new(dynamic: DynamicService) -> Self {
        Self { native: Arc::new(HashMap::new()), dynamic }
    }

    /// Serves `service_name` (`grpc.health.v1.Health`) with a natively implemented service.
    pub fn with_native<S>(mut self, service_name: &'static str, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Arc::make_mut(&mut self.native).insert(service_name, BoxCloneSyncService::new(service));
        self
    }
}

impl Service<http::Request<Body>> for GrpcRouter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let service_name = request.uri().path().trim_start_matches('/').split('/').next().unwrap_or_default();
        match self.native.get(service_name) {
            Some(service) => Box::pin(service.clone().oneshot(request)),
            None => self.dynamic.call(request),
        }
    }
}
