//! The response body every mock call goes out through: it counts the DATA bytes the stream
//! hands to HTTP/2 (for the delivery barrier, [`super::delivery`]) and turns the driver's
//! [`StreamControl::reset`] into a stream reset, after whatever the stream already handed over.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame};
use tonic::Status;

use super::delivery::DeliveryProgress;
use crate::driver::StreamControl;

/// A response body the driver can reset, metered for delivery.
pub struct DrivenBody<B> {
    inner: B,
    control: Arc<StreamControl>,
    delivery: Arc<DeliveryProgress>,
}

impl<B> DrivenBody<B> {
    pub fn new(inner: B, control: Arc<StreamControl>, delivery: Arc<DeliveryProgress>) -> Self {
        Self { inner, control, delivery }
    }
}

impl<B> Body for DrivenBody<B>
where
    B: Body<Data = Bytes, Error = Status> + Unpin,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.control.register(cx.waker());
        // What was sent before the reset goes out first.
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        match (frame, self.control.pending_reset()) {
            (Poll::Pending, Some(reason)) => {
                // hyper finds the h2 reason in the error's sources and resets with it.
                Poll::Ready(Some(Err(Status::from_error(Box::new(h2::Error::from(reason))))))
            }
            (Poll::Ready(Some(Ok(frame))), _) => {
                if let Some(data) = frame.data_ref() {
                    self.delivery.handed.fetch_add(data.remaining() as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            (frame, _) => frame,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.control.pending_reset().is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
