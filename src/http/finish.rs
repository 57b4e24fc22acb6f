//! The last layer before the access log: what every response needs, whichever layer made
//! it. A HEAD answer drops its body but keeps the length the GET would have had; a
//! draining server asks keep-alive clients to close (they reconnect, and the load balancer
//! sends them to a replica that is still ready); a file body is given its connection's
//! sendfile queue ([`crate::http::sendfile`]), without which it cannot be polled.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::files::service::Readiness;
use crate::http::body::Body;
use crate::http::sendfile::Segments;

/// Finishes the responses of one connection.
#[derive(Clone)]
pub struct FinishLayer {
    readiness: Arc<Readiness>,
    segments: Arc<Segments>,
}

impl FinishLayer {
    /// For the connection whose sendfile queue is `segments`.
    pub fn new(readiness: Arc<Readiness>, segments: Arc<Segments>) -> FinishLayer {
        FinishLayer {
            readiness,
            segments,
        }
    }
}

impl<S> Layer<S> for FinishLayer {
    type Service = Finish<S>;

    fn layer(&self, inner: S) -> Finish<S> {
        Finish {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`FinishLayer`].
#[derive(Clone)]
pub struct Finish<S> {
    inner: S,
    layer: FinishLayer,
}

impl<S, B> Service<Request<B>> for Finish<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Finished<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        Finished {
            head: req.method() == Method::HEAD,
            // As the request arrives: a response begun before draining may keep its
            // connection, and the next request on it is told to close.
            close: self.layer.readiness.is_draining(),
            inner: self.inner.call(req),
            segments: Some(self.layer.segments.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response, finished.
    pub struct Finished<F> {
        #[pin]
        inner: F,
        head: bool,
        close: bool,
        segments: Option<Arc<Segments>>,
    }
}

impl<F, E> Future for Finished<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        let segments = this.segments.take().expect("polled after it completed");
        if *this.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if *this.head {
            let len = response.body().len();
            if response.status() != StatusCode::NOT_MODIFIED {
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            *response.body_mut() = Body::empty();
        }
        response.body_mut().deliver_through(&segments);
        Poll::Ready(Ok(response))
    }
}
