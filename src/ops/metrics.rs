//! Prometheus metrics, exposed only on the separate `--metrics-listen` address so the public
//! port never reveals them.

use std::convert::Infallible;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::cache::Cache;
use crate::http::body::Body;
use crate::http::idle::{TimedIo, Timeouts};

const METHODS: [&str; 3] = ["GET", "HEAD", "OTHER"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

type Labels = Vec<(&'static str, &'static str)>;

/// The server's metrics and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    /// Every (method, status class) counter, created up front so that dashboards see zeros
    /// and a request only bumps an atomic.
    requests: [[Counter; 5]; 3],
    /// Response body bytes sent.
    bytes: Counter<u64, AtomicU64>,
    /// Requests whose response has not finished.
    in_flight: Gauge,
    /// Seconds from request head to the end of the response body.
    duration: Histogram,
    /// The file cache, whose figures are read at each scrape.
    cache: Option<(Arc<Cache>, CacheMetrics)>,
}

/// The file cache's figures, copied from [`crate::cache::Stats`] at each scrape.
struct CacheMetrics {
    entries: Gauge,
    memory_bytes: Gauge,
    content_bytes: Gauge,
    open_files: Gauge,
    hits: Counter,
    misses: Counter,
    revalidations: Counter,
    evictions: Counter,
    hashed: Counter,
}

impl CacheMetrics {
    fn register(registry: &mut Registry) -> CacheMetrics {
        let mut gauge = |name, help| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let entries = gauge("cache_entries", "Request paths whose lookup is kept");
        let memory_bytes = gauge(
            "cache_memory_bytes",
            "Memory the cache holds, entries and content (bounded by --cache-max)",
        );
        let content_bytes = gauge("cache_content_bytes", "File content bytes kept in memory");
        let open_files = gauge("cache_open_files", "Large files kept open");
        let mut counter = |name, help| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        CacheMetrics {
            entries,
            memory_bytes,
            content_bytes,
            open_files,
            hits: counter("cache_hits", "Lookups answered from the cache"),
            misses: counter("cache_misses", "Lookups that went to the file system"),
            revalidations: counter(
                "cache_revalidations",
                "Kept entries checked again after a possible change",
            ),
            evictions: counter(
                "cache_evictions",
                "Entries, contents or descriptors dropped to stay within a budget",
            ),
            hashed: counter(
                "cache_hashed",
                "Files over 256 KiB hashed in the background for their ETag",
            ),
        }
    }

    fn update(&self, cache: &Cache) {
        let s = cache.stats();
        self.entries.set(s.entries as i64);
        self.memory_bytes.set(s.memory_bytes as i64);
        self.content_bytes.set(s.content_bytes as i64);
        self.open_files.set(s.open_files as i64);
        for (counter, now) in [
            (&self.hits, s.hits),
            (&self.misses, s.misses),
            (&self.revalidations, s.revalidations),
            (&self.evictions, s.evictions),
            (&self.hashed, s.hashed),
        ] {
            counter.inc_by(now.saturating_sub(counter.get()));
        }
    }
}

impl Metrics {
    /// Registers every metric, including `tinyserve_build_info` and, given a cache, its
    /// figures.
    pub fn new(cache: Option<Arc<Cache>>) -> Metrics {
        let mut registry = Registry::with_prefix("tinyserve");
        let requests_family = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method and status class",
            requests_family.clone(),
        );
        let requests = METHODS.map(|m| {
            CLASSES.map(|c| {
                requests_family
                    .get_or_create(&vec![("method", m), ("status", c)])
                    .clone()
            })
        });
        let bytes = Counter::<u64, AtomicU64>::default();
        registry.register(
            "http_response_body_bytes",
            "Response body bytes sent",
            bytes.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests whose response is not finished",
            in_flight.clone(),
        );
        let duration = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0,
        ]);
        registry.register(
            "http_request_duration_seconds",
            "Time from request head to the end of the response",
            duration.clone(),
        );
        let build_info = Family::<Labels, Gauge>::default();
        build_info
            .get_or_create(&vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", env!("TINYSERVE_COMMIT")),
            ])
            .set(1);
        registry.register(
            "build_info",
            "Version and git commit of the running binary",
            build_info,
        );
        let cache = cache.map(|c| (c, CacheMetrics::register(&mut registry)));
        Metrics {
            registry,
            requests,
            bytes,
            in_flight,
            duration,
            cache,
        }
    }

    /// A request began.
    pub fn started(&self) {
        self.in_flight.inc();
    }

    /// A request's response ended after `seconds`, having sent `bytes`.
    pub fn finished(&self, method: &Method, status: StatusCode, bytes: u64, seconds: f64) {
        let m = match *method {
            Method::GET => 0,
            Method::HEAD => 1,
            _ => 2,
        };
        let c = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.requests[m][c].inc();
        self.bytes.inc_by(bytes);
        self.duration.observe(seconds);
        self.in_flight.dec();
    }

    /// A request refused while its head was parsed (hyper answered it): counted by status
    /// class under method `OTHER`, never in flight.
    pub fn rejected(&self, status: StatusCode) {
        let c = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.requests[2][c].inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        if let Some((cache, m)) = &self.cache {
            m.update(cache);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(None)
    }
}

/// Connections the metrics listener serves at once: a scraper needs one or two. Past the
/// cap, clients wait in the kernel's accept queue, as on the public listener.
const METRICS_CONNECTIONS: usize = 16;

/// Serves `GET /metrics` on `listener` until the task is aborted, with the same header and
/// idle timeouts as the public listener and at most `METRICS_CONNECTIONS` at once: a
/// slow or stuck client must not hold memory or descriptors there either.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, timeouts: Timeouts) {
    let slots = Arc::new(Semaphore::new(METRICS_CONNECTIONS));
    loop {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(answer(&req, &metrics)) }
            });
            let io = TokioIo::new(TimedIo::new(stream, timeouts));
            let _ = http1::Builder::new()
                .header_read_timeout(None)
                .serve_connection(io, service)
                .await;
            drop(permit);
        });
    }
}

fn answer<B>(req: &Request<B>, metrics: &Metrics) -> Response<Body> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Bytes::from(metrics.render()),
        ),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"method not allowed\n"),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"not found; metrics are at /metrics\n"),
        ),
    };
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
