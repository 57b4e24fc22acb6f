//! A layer that records every request: the access log line and the metrics. Both are
//! written when the socket has taken the response body's last byte, or the connection failed
//! first ([`crate::http::delivery`]): a long download is logged with its real duration and the
//! bytes that left.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use http::{header, Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::http::body::Body;
use crate::http::proxies::TrustedProxies;
use crate::ops::metrics::Metrics;

/// What to record; with neither part on, the layer adds no work per request.
pub struct Recorder {
    /// Metrics to update, when a metrics listener is configured.
    pub metrics: Option<Arc<Metrics>>,
    /// Whether to write one log line per request.
    pub access_log: bool,
    /// Whether the probes' requests get one too: a readiness probe every 2 s is 43 000
    /// lines a day per pod, so they can be left to the metrics.
    pub log_probes: bool,
    /// Peers whose forwarding headers name the client in the log.
    pub trusted: TrustedProxies,
}

/// The layer recording a connection's requests from `peer`.
#[derive(Clone)]
pub struct ObserveLayer {
    recorder: Arc<Recorder>,
    peer: SocketAddr,
}

impl ObserveLayer {
    /// Records what the wrapped service answers `peer`.
    pub fn new(recorder: Arc<Recorder>, peer: SocketAddr) -> ObserveLayer {
        ObserveLayer { recorder, peer }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            recorder: self.recorder.clone(),
            peer: self.peer,
        }
    }
}

/// Wraps a service whose responses carry a [`Body`]: the outermost layer, so that what it
/// records is what was sent, whichever layer answered.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    recorder: Arc<Recorder>,
    peer: SocketAddr,
}

/// What is known of a request before its response exists.
struct Pending {
    recorder: Arc<Recorder>,
    start: Instant,
    peer: SocketAddr,
    /// The client: the peer, or whom a trusted proxy says it forwards for (looked up only
    /// for the access log).
    client: IpAddr,
    method: Method,
    /// Path and query, and user agent: copied only when the access log is on.
    target: String,
    user_agent: String,
    /// Whether this request gets its log line.
    log: bool,
}

impl<S, B> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Observed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let pending = Pending::begin(&self.recorder, &req, self.peer);
        Observed {
            inner: self.inner.call(req),
            pending,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response, with the request's record attached to its body.
    pub struct Observed<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F, E> Future for Observed<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(p) = this.pending.take() {
            p.attach(&mut response);
        }
        Poll::Ready(Ok(response))
    }
}

impl Recorder {
    /// Records a response hyper sent on its own for a request it could not parse (400,
    /// 414, 431): one access line (method and path unknown) and a count by status class.
    /// A flood of garbage costs one line per rejected request, as any other request does:
    /// each costs the client a connection or a request head, so the log grows no faster
    /// than it would under a flood of valid requests.
    pub fn rejected(&self, peer: SocketAddr, status: StatusCode) {
        if let Some(m) = &self.metrics {
            m.rejected(status);
        }
        if self.access_log {
            tracing::info!(
                target: "access",
                peer = %peer,
                client = %crate::http::proxies::canonical(peer.ip()),
                method = "-",
                path = "-",
                status = status.as_u16(),
                bytes = 0u64,
                duration_us = 0u64,
                user_agent = "",
                complete = true,
                "request"
            );
        }
    }
}

impl Pending {
    /// What to remember of `req`, or `None` when nothing is recorded.
    fn begin<B>(recorder: &Arc<Recorder>, req: &Request<B>, peer: SocketAddr) -> Option<Pending> {
        let probe = crate::files::path::is_probe(req.uri().path());
        let log = recorder.access_log && (recorder.log_probes || !probe);
        if !log && recorder.metrics.is_none() {
            return None;
        }
        if let Some(m) = &recorder.metrics {
            m.started();
        }
        let client = if log {
            recorder.trusted.client(peer.ip(), req.headers())
        } else {
            peer.ip()
        };
        let (target, user_agent) = if log {
            let target = req
                .uri()
                .path_and_query()
                .map_or("", |p| p.as_str())
                .to_string();
            let ua = req
                .headers()
                .get(header::USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            (target, ua)
        } else {
            (String::new(), String::new())
        };
        Some(Pending {
            recorder: recorder.clone(),
            start: Instant::now(),
            peer,
            client,
            method: req.method().clone(),
            target,
            user_agent,
            log,
        })
    }

    /// Records the request once `response`'s body has gone out (or failed to).
    fn attach(self, response: &mut Response<Body>) {
        let status = response.status();
        response
            .body_mut()
            .on_complete(Box::new(move |bytes, complete| {
                let elapsed = self.start.elapsed();
                if let Some(m) = &self.recorder.metrics {
                    m.finished(&self.method, status, bytes, elapsed.as_secs_f64());
                }
                if self.log {
                    tracing::info!(
                        target: "access",
                        peer = %self.peer,
                        client = %self.client,
                        method = %self.method,
                        path = %self.target,
                        status = status.as_u16(),
                        bytes,
                        duration_us = elapsed.as_micros() as u64,
                        user_agent = %self.user_agent,
                        complete,
                        "request"
                    );
                }
            }));
    }
}
