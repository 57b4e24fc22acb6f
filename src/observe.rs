//! A layer that records every request: the access log line and the metrics. Both are
//! written when the socket has taken the response body's last byte, or the connection failed
//! first ([`crate::delivery`]): a long download is logged with its real duration and the
//! bytes that left.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use http::{header, Method, Request, Response, StatusCode};

use crate::body::Body;
use crate::metrics::Metrics;
use crate::proxies::TrustedProxies;
use crate::service::SiteService;

/// What to record; with neither part on, the layer adds no work per request.
pub struct Recorder {
    /// Metrics to update, when a metrics listener is configured.
    pub metrics: Option<Arc<Metrics>>,
    /// Whether to write one log line per request.
    pub access_log: bool,
    /// Peers whose forwarding headers name the client in the log.
    pub trusted: TrustedProxies,
}

/// Wraps a service whose responses carry a [`Body`].
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    recorder: Arc<Recorder>,
}

impl<S> Observe<S> {
    /// Records what `inner` answers.
    pub fn new(inner: S, recorder: Arc<Recorder>) -> Observe<S> {
        Observe { inner, recorder }
    }
}

/// What is known of a request before its response exists.
struct Pending {
    recorder: Arc<Recorder>,
    start: Instant,
    peer: Option<SocketAddr>,
    /// The client: the peer, or whom a trusted proxy says it forwards for.
    client: Option<IpAddr>,
    method: Method,
    /// Path and query, and user agent: copied only when the access log is on.
    target: String,
    user_agent: String,
}

impl Observe<SiteService> {
    /// The service it records.
    pub fn inner(&self) -> &SiteService {
        &self.inner
    }

    /// Who sent a request from `peer` with `headers`: the peer, or whom a trusted proxy
    /// says it forwards for.
    pub fn client(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        self.recorder.trusted.client(peer, headers)
    }

    /// Answers `req` from `peer` and records it. The server's connections call this with
    /// `&self`, through hyper's `Service` (tower's takes `&mut self`, which would need a
    /// clone of the service per request).
    pub fn respond<B>(&self, req: &Request<B>, peer: Option<SocketAddr>) -> Response<Body> {
        self.respond_by(req, peer, |site| site.respond(req))
    }

    /// Like [`Self::respond`], with the response `answer` makes.
    pub fn respond_by<B>(
        &self,
        req: &Request<B>,
        peer: Option<SocketAddr>,
        answer: impl FnOnce(&SiteService) -> Response<Body>,
    ) -> Response<Body> {
        let pending = Pending::begin(&self.recorder, req, peer);
        let mut response = answer(&self.inner);
        if let Some(p) = pending {
            p.attach(&mut response);
        }
        response
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
                client = %crate::proxies::canonical(peer.ip()),
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
    fn begin<B>(
        recorder: &Arc<Recorder>,
        req: &Request<B>,
        peer: Option<SocketAddr>,
    ) -> Option<Pending> {
        if !recorder.access_log && recorder.metrics.is_none() {
            return None;
        }
        if let Some(m) = &recorder.metrics {
            m.started();
        }
        let client = peer
            .filter(|_| recorder.access_log)
            .map(|p| recorder.trusted.client(p.ip(), req.headers()));
        let (target, user_agent) = if recorder.access_log {
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
                if self.recorder.access_log {
                    tracing::info!(
                        target: "access",
                        peer = %OrDash(self.peer),
                        client = %OrDash(self.client),
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

/// An address in the log, `-` when unknown (the service used without a connection).
struct OrDash<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}
