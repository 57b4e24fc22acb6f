//! The tower service that answers every request on the public listener: health and
//! readiness, then files from the [`Site`] index. It never waits on anything, so its
//! future is always ready; streaming a large file happens later, inside the body.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::body::Body;
use crate::conditional::{self, Outcome, Validators};
use crate::site::{Asset, Content, Lookup, Route, Site, Variant};

/// Whether the server still takes traffic. Flipped once, on the first shutdown signal.
#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
}

impl Readiness {
    /// From now on `/readyz` answers 503 and every response asks the client to close.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether draining has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// The public listener's service; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct SiteService {
    shared: Arc<Shared>,
}

struct Shared {
    site: Site,
    readiness: Arc<Readiness>,
    /// `X-Content-Type-Options` and the configured extra headers: on every response.
    common: HeaderMap,
}

impl SiteService {
    /// A service answering from `site`, reporting readiness from `readiness`.
    pub fn new(site: Site, readiness: Arc<Readiness>, common: HeaderMap) -> SiteService {
        SiteService {
            shared: Arc::new(Shared {
                site,
                readiness,
                common,
            }),
        }
    }

    /// Answers one request. Only the head is read: GET and HEAD have no body to wait for.
    pub fn respond<B>(&self, req: &Request<B>) -> Response<Body> {
        let s = &*self.shared;
        let method = req.method();
        let is_get = method == Method::GET;
        let draining = s.readiness.is_draining();
        let mut response = if !is_get && method != Method::HEAD {
            let mut r = s.text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        } else {
            match req.uri().path() {
                "/healthz" => s.probe(StatusCode::OK, "ok"),
                "/readyz" if draining => s.probe(StatusCode::SERVICE_UNAVAILABLE, "draining"),
                "/readyz" => s.probe(StatusCode::OK, "ready"),
                path => s.file(req, path, is_get),
            }
        };
        if draining {
            // Keep-alive clients reconnect, and the load balancer sends them to a replica
            // that is still ready.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if method == Method::HEAD {
            // HEAD: same headers, no body. Keep the length the GET would have had.
            let len = response.body().len();
            if response.status() != StatusCode::NOT_MODIFIED {
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            *response.body_mut() = Body::empty();
        }
        response
    }
}

impl Shared {
    fn file<B>(&self, req: &Request<B>, path: &str, is_get: bool) -> Response<Body> {
        match self.site.lookup(path) {
            Lookup::Found(Route::Asset(asset)) => self.asset(req, asset, is_get),
            Lookup::Found(Route::Redirect) => {
                let mut location = format!("{path}/");
                if let Some(q) = req.uri().query() {
                    location.push('?');
                    location.push_str(q);
                }
                let mut r = self.text(StatusCode::PERMANENT_REDIRECT, "");
                // The path came from a parsed URI, so it is valid header text.
                if let Ok(v) = HeaderValue::try_from(location) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r
            }
            Lookup::NotFound => match &self.site.fallback {
                Some(fallback) => self.asset(req, fallback, is_get),
                None => self.not_found(),
            },
            Lookup::Forbidden => self.not_found(),
            Lookup::BadRequest => self.text(StatusCode::BAD_REQUEST, "bad request\n"),
        }
    }

    fn asset<B>(&self, req: &Request<B>, asset: &Asset, is_get: bool) -> Response<Body> {
        let variant = asset.negotiate(req.headers().get(header::ACCEPT_ENCODING));
        let validators = Validators {
            etag: &variant.etag,
            last_modified: asset.last_modified,
            len: variant.len,
        };
        match conditional::evaluate(req.headers(), is_get, &validators) {
            Outcome::Full => respond(
                StatusCode::OK,
                variant.headers.clone(),
                body(variant, 0, variant.len),
            ),
            Outcome::Partial(range) => {
                let mut headers = variant.headers.clone();
                let content_range =
                    format!("bytes {}-{}/{}", range.start, range.end - 1, variant.len);
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::try_from(content_range).expect("digits"),
                );
                respond(
                    StatusCode::PARTIAL_CONTENT,
                    headers,
                    body(variant, range.start, range.end - range.start),
                )
            }
            Outcome::NotModified => respond(
                StatusCode::NOT_MODIFIED,
                variant.not_modified.clone(),
                Body::empty(),
            ),
            Outcome::PreconditionFailed => {
                self.text(StatusCode::PRECONDITION_FAILED, "precondition failed\n")
            }
            Outcome::RangeNotSatisfiable => {
                let mut r = self.text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
                let content_range = format!("bytes */{}", variant.len);
                r.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::try_from(content_range).expect("digits"),
                );
                r
            }
        }
    }

    /// 404 with `404.html` when the site has one.
    fn not_found(&self) -> Response<Body> {
        let Some(page) = &self.site.not_found_page else {
            return self.text(StatusCode::NOT_FOUND, "not found\n");
        };
        let v = &page.variants[0];
        let mut headers = self.common.clone();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        respond(StatusCode::NOT_FOUND, headers, body(v, 0, v.len))
    }

    fn text(&self, status: StatusCode, text: &'static str) -> Response<Body> {
        let mut headers = self.common.clone();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        respond(
            status,
            headers,
            Body::full(Bytes::from_static(text.as_bytes())),
        )
    }

    /// Probe answers must never be cached by anything between the prober and the server.
    fn probe(&self, status: StatusCode, text: &'static str) -> Response<Body> {
        let mut r = self.text(status, text);
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }
}

fn body(v: &Variant, offset: u64, len: u64) -> Body {
    match &v.content {
        Content::Memory(bytes) => Body::full(bytes.slice(offset as usize..(offset + len) as usize)),
        Content::Disk(disk) => Body::file(disk.clone(), offset, len),
    }
}

fn respond(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

impl<B> tower::Service<Request<B>> for SiteService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.respond(&req)))
    }
}
