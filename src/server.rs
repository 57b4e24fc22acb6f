//! The accept loop and the shutdown sequence.
//!
//! Shutdown, once the `shutdown` future completes: readiness fails at once, the listener keeps
//! accepting for the shutdown delay (load balancers need that long to notice), every response
//! meanwhile carries `Connection: close`; then the listener closes, idle connections are
//! closed and in-flight responses get up to the drain timeout to finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::body::Body;
use crate::cache::{self, Cache, Limits};
use crate::config::Config;
use crate::idle::{TimedIo, Timeouts};
use crate::metrics::{self, Metrics};
use crate::observe::{Observe, Recorder};
use crate::sendfile::{Segments, SendfileIo};
use crate::service::{Readiness, SiteService};
use crate::watch::Watch;

/// Any fatal error after startup checks: printed once by `main`, exit code 1.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Serves the configured root on `listener` until `shutdown` completes, then drains.
///
/// Reads nothing of the site before it prints the line `listening on <addr>`: files are
/// looked up as they are asked for, so start-up does not grow with the site.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let started = Instant::now();
    let (watch, watch_reason) = Watch::start(&config.root, config.watch);
    let limits = Limits {
        memory: config.cache_max,
        file_max: config.cache_file_max,
        entries: config.cache_entries,
        open_files: config
            .cache_open_files
            .unwrap_or_else(cache::default_open_files),
    };
    let watch_mode = watch.mode();
    // The one check of the site before serving: the root can be opened (a folder the
    // server's user cannot read would otherwise show up as 404s only).
    let cache = Cache::new(&config, limits, watch).map_err(|e| {
        format!(
            "cannot read --root {:?} (TINYSERVE_ROOT): {e}",
            config.root.display().to_string()
        )
    })?;

    let metrics = match config.metrics_listen {
        None => None,
        Some(addr) => {
            let l = crate::listen::bind(addr, "--metrics-listen").map_err(|e| {
                format!("cannot listen on {addr} (--metrics-listen, TINYSERVE_METRICS_LISTEN): {e}")
            })?;
            Some((l, Arc::new(Metrics::new(Some(cache.clone())))))
        }
    };

    let readiness = Arc::new(Readiness::default());
    let recorder = Arc::new(Recorder {
        metrics: metrics.as_ref().map(|(_, m)| m.clone()),
        access_log: config.access_log,
        trusted: config.trusted_proxies.clone(),
    });
    let service = Observe::new(
        SiteService::new(cache, readiness.clone(), &config),
        recorder.clone(),
    );

    let addr = listener.local_addr()?;
    tracing::info!(
        root = %config.root.display(),
        watch = watch_mode.name(),
        watch_reason = %watch_reason,
        cache_max = limits.memory,
        cache_entries = limits.entries,
        cache_open_files = limits.open_files,
        max_connections = config.max_connections,
        max_connections_reason = %config.max_connections_reason,
        startup_us = started.elapsed().as_micros() as u64,
        "listening on {addr}"
    );
    let timeouts = Timeouts {
        header: config.header_timeout,
        idle: config.idle_timeout,
    };
    let metrics_task = metrics.map(|(l, m)| {
        tracing::info!(
            "metrics on http://{}/metrics",
            l.local_addr().map(|a| a.to_string()).unwrap_or_default()
        );
        tokio::spawn(metrics::serve(l, m, timeouts))
    });

    let mut http = http1::Builder::new();
    // Header and idle timeouts are TimedIo's: one timer per connection, none per request.
    http.header_read_timeout(None)
        .max_buf_size(config.max_header_size)
        .keep_alive(true)
        // A client may send its request and then shut its sending side (`printf … | nc`,
        // scripted health checks, proxies that forward a half-close): it still gets every
        // answer, and the connection closes once the last one is written. Without this,
        // hyper drops a request whose EOF it reads before it has answered.
        .half_close(true);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let delay = config.shutdown_delay;

    let mut stop_accepting = pin!(async {
        shutdown.await;
        readiness.start_draining();
        tracing::info!(
            shutdown_delay_ms = delay.as_millis() as u64,
            "shutdown: readiness failing, still serving for the shutdown delay"
        );
        tokio::time::sleep(delay).await;
    });

    loop {
        // Wait for a free slot first: past the cap, clients queue in the kernel's backlog.
        let permit = tokio::select! {
            biased;
            _ = &mut stop_accepting => break,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut stop_accepting => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE, ECONNABORTED...: log, breathe, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let segments = Arc::new(Segments::default());
        let io = TokioIo::new(TimedIo::new(
            SendfileIo::new(stream, segments.clone()),
            timeouts,
        ));
        // File bodies are placeholders that only a vectored writer passes on by reference.
        if let Err(e) = crate::sendfile::require_vectored(&io) {
            tracing::error!(%peer, error = %e, "connection refused");
            continue;
        }
        let connection = Connection {
            service: service.clone(),
            segments,
            peer,
        };
        let conn = graceful.watch(http.serve_connection(io, connection));
        let recorder = recorder.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // A request hyper refused while parsing it was answered by hyper itself,
                // before the service saw it: record that answer here.
                if let Some(status) = rejection_status(&e) {
                    recorder.rejected(peer, status);
                }
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    let open = config.max_connections - slots.available_permits();
    tracing::info!(
        open_connections = open,
        drain_timeout_ms = config.drain_timeout.as_millis() as u64,
        "shutdown: listener closed, draining"
    );
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("shutdown: all connections finished"),
        _ = tokio::time::sleep(config.drain_timeout) => {
            let open = config.max_connections - slots.available_permits();
            tracing::warn!(open_connections = open, "shutdown: drain timeout reached, closing what is left");
        }
    }
    if let Some(task) = metrics_task {
        task.abort();
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// The status hyper answered a request it could not parse with (its automatic response),
/// or `None` if it sent none (an HTTP/2 preface, a connection closed mid-head, a timeout).
fn rejection_status(e: &hyper::Error) -> Option<StatusCode> {
    if e.is_parse_too_large() {
        // The one parse error hyper describes this way is a URI over its own limit.
        return Some(if e.to_string().contains("URI too long") {
            StatusCode::URI_TOO_LONG
        } else {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        });
    }
    (e.is_parse() && !e.is_parse_version_h2()).then_some(StatusCode::BAD_REQUEST)
}

/// One connection's service: the shared one, with file bodies sent by `sendfile` through
/// this connection's [`SendfileIo`], and the peer's address for the access log.
#[derive(Clone)]
struct Connection {
    service: Observe<SiteService>,
    segments: Arc<Segments>,
    peer: SocketAddr,
}

impl Connection {
    fn respond(&self, req: &Request<Incoming>) -> Response<Body> {
        let mut response = self.service.respond(req, Some(self.peer));
        response.body_mut().deliver_through(&self.segments);
        response
    }
}

impl hyper::service::Service<Request<Incoming>> for Connection {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: Request<Incoming>) -> Answer {
        // Credentials seen for the first time are checked with bcrypt off the event loop;
        // every other request is answered at once.
        let Some(auth) = self.service.inner().needs_verifying(&req) else {
            return Answer::Now(Some(self.respond(&req)));
        };
        let conn = self.clone();
        Answer::Later(Box::pin(async move {
            auth.verify(req.headers()).await;
            conn.respond(&req)
        }))
    }
}

/// A response now, or once credentials are verified.
// `Now` is every request's path: boxing it, as the lint suggests, would allocate per request.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Now(Option<Response<Body>>),
    Later(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl Future for Answer {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Answer::Now(r) => Poll::Ready(Ok(r.take().expect("polled after it completed"))),
            Answer::Later(f) => f.as_mut().poll(cx).map(Ok),
        }
    }
}
