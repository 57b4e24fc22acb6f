//! The service that answers every request on the public listener: health and
//! readiness, then files from the [`Cache`]. It never waits on anything, so its future is
//! always ready; streaming a large file happens later, inside the body.

use std::convert::Infallible;
use std::future::Ready;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::cache::{Asset, Cache, Found};
use crate::files::conditional::{self, Outcome, Validators};
use crate::files::headers;
use crate::files::negotiate::{self, Encoding};
use crate::files::pages::{self, respond};
use crate::files::path::{self, Checked};
use crate::files::resolve::Etag;
use crate::files::rules::{Action, Rules};
use crate::http::body::Body;
use crate::http::host;
use crate::ops::config::Config;

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
    cache: Arc<Cache>,
    readiness: Arc<Readiness>,
    /// The `--fallback` file's path, answering unknown paths with 200.
    fallback: Option<String>,
    /// `--pretty-urls`: `/about` answers with `about.html`, which redirects to it.
    pretty_urls: bool,
    /// `--maintenance`'s path: while it exists, all but the probes get 503 with it.
    maintenance: Option<String>,
    /// Room for a file response's headers, reserved up front ([`FILE_HEADERS`]).
    header_room: usize,
}

/// Headers a file response has at most before the layers outside add theirs; with those,
/// reserved up front so that no response's headers ever grow the map.
const FILE_HEADERS: usize = 8;

impl SiteService {
    /// A service answering from `cache` as `config` says, reporting readiness from
    /// `readiness`.
    pub fn new(cache: Arc<Cache>, readiness: Arc<Readiness>, config: &Config) -> SiteService {
        SiteService {
            shared: Arc::new(Shared {
                cache,
                readiness,
                fallback: config.fallback.as_ref().map(|f| format!("/{f}")),
                pretty_urls: config.pretty_urls,
                maintenance: config.maintenance.as_ref().map(|f| format!("/{f}")),
                // nosniff and the --header ones, which the layers outside add.
                header_room: FILE_HEADERS + 1 + config.headers.len(),
            }),
        }
    }

    /// Answers one request. Only the head is read: GET and HEAD have no body to wait for.
    pub fn respond<B>(&self, req: &Request<B>) -> Response<Body> {
        let s = &*self.shared;
        let method = req.method();
        let is_get = method == Method::GET;
        let rules = Some(req.uri().path())
            .filter(|p| !crate::files::path::is_probe(p))
            .map(|_| s.cache.rules())
            .filter(|r| !r.is_empty());
        let mut response = if let Some(why) = host::problem(req) {
            // RFC 9112 §3.2: a missing (HTTP/1.1), repeated or invalid Host is a 400.
            tracing::debug!(why, "bad Host");
            pages::text(StatusCode::BAD_REQUEST, "bad request: Host header\n")
        } else if !is_get && method != Method::HEAD {
            let mut r = pages::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        } else {
            match req.uri().path() {
                "/healthz" => s.probe(StatusCode::OK, "ok"),
                "/readyz" if s.readiness.is_draining() => {
                    s.probe(StatusCode::SERVICE_UNAVAILABLE, "draining")
                }
                "/readyz" => s.probe(StatusCode::OK, "ready"),
                path => match s.maintenance.as_deref() {
                    // One lookup a request (a hit once cached), and only when configured.
                    Some(m) => pages::maintenance(&s.cache, m)
                        .unwrap_or_else(|| s.file(req, path, is_get, rules.as_deref())),
                    None => s.file(req, path, is_get, rules.as_deref()),
                },
            }
        };
        if let Some(rules) = &rules {
            // `_headers` over the server's own; on an error, not what caches keep.
            let error = response.status().is_client_error() || response.status().is_server_error();
            for (name, value) in rules.headers_for(req.uri().path()) {
                if !(error && headers::is_caching(name)) {
                    response.headers_mut().insert(name.clone(), value.clone());
                }
            }
        }
        response
    }
}

impl<B> tower::Service<Request<B>> for SiteService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.respond(&req)))
    }
}

impl Shared {
    fn file<B>(
        &self,
        req: &Request<B>,
        raw_path: &str,
        is_get: bool,
        rules: Option<&Rules>,
    ) -> Response<Body> {
        let path = match path::check(raw_path) {
            Checked::Path(p) => p,
            Checked::Forbidden => return pages::not_found(&self.cache, "/"),
            Checked::BadRequest => return pages::text(StatusCode::BAD_REQUEST, "bad request\n"),
        };
        // A file that changed between its lookup and its reading is looked up once more.
        for _ in 0..2 {
            if let Some(response) = self.found(req, raw_path, &path, is_get, rules) {
                return response;
            }
        }
        // A file that changed while being read, twice: the client may simply ask again.
        let mut r = pages::server_error(
            &self.cache,
            StatusCode::SERVICE_UNAVAILABLE,
            "file changed while being read; try again\n",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    }

    /// The response for what `path` names now; `None` if its file changed meanwhile.
    fn found<B>(
        &self,
        req: &Request<B>,
        raw_path: &str,
        path: &str,
        is_get: bool,
        rules: Option<&Rules>,
    ) -> Option<Response<Body>> {
        let query = req.uri().query();
        // A forced (`!`) rule applies even where a file exists; the others only where none
        // does.
        if let Some(action) = rules.and_then(|r| r.redirect(path, query, true)) {
            return self.act(req, action, is_get);
        }
        Some(match self.cache.lookup(path) {
            Found::File(asset) => {
                if let Some(canonical) = self.pretty_url_of(raw_path, path) {
                    return Some(self.redirect_to(req, canonical));
                }
                return self.asset(req, &asset, is_get);
            }
            Found::Redirect => self.redirect_to(req, format!("{raw_path}/")),
            Found::Missing => {
                if self.pretty_urls && !path.ends_with('/') {
                    // `/about` is `about.html` (a folder `about/` has won already, above).
                    if let Found::File(page) = self.cache.lookup(&format!("{path}.html")) {
                        return self.asset(req, &page, is_get);
                    }
                }
                if let Some(action) = rules.and_then(|r| r.redirect(path, query, false)) {
                    return self.act(req, action, is_get);
                }
                // A fingerprinted name or an --immutable prefix is an asset, never a page:
                // an old release's `app.3f9a2c1e.js` must get a 404 (not HTML with 200,
                // which breaks the page mid-rollout) that nothing caches.
                let asset_path = self.cache.is_immutable(path);
                if !asset_path && is_navigation(req, path) {
                    if let Some(Found::File(page)) =
                        self.fallback.as_deref().map(|f| self.cache.lookup(f))
                    {
                        return self.asset(req, &page, is_get);
                    }
                }
                let mut r = pages::not_found(&self.cache, path);
                if asset_path {
                    r.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
                r
            }
        })
    }

    /// With `--pretty-urls`, the one URL of the page `path` names if that is not `path`:
    /// `/about.html` is `/about` (unless `/about` names something else), `/docs/index.html`
    /// is `/docs/`.
    fn pretty_url_of(&self, raw_path: &str, path: &str) -> Option<String> {
        if !self.pretty_urls {
            return None;
        }
        // Decided on the decoded path, written from the path as sent (still encoded).
        let stem = path.strip_suffix(".html")?;
        let raw_stem = raw_path.strip_suffix(".html")?;
        if let Some(folder) = raw_stem.strip_suffix("/index") {
            return Some(format!("{folder}/"));
        }
        // Only where `/about` would reach this file: a file or folder `about` keeps it.
        (!stem.ends_with('/') && matches!(self.cache.lookup(stem), Found::Missing))
            .then(|| raw_stem.to_string())
    }

    /// A permanent redirect (308) to `location`, the request's query kept.
    fn redirect_to<B>(&self, req: &Request<B>, mut location: String) -> Response<Body> {
        if let Some(q) = req.uri().query() {
            location.push('?');
            location.push_str(q);
        }
        redirect(StatusCode::PERMANENT_REDIRECT, location)
    }

    /// The response a `_redirects` rule asks for; `None` if a rewritten file changed
    /// meanwhile.
    fn act<B>(&self, req: &Request<B>, action: Action, is_get: bool) -> Option<Response<Body>> {
        match action {
            Action::Redirect(status, location) => Some(redirect(status, location)),
            Action::Rewrite(target) => match path::check(&target) {
                Checked::Path(p) => match self.cache.lookup(&p) {
                    Found::File(asset) => self.asset(req, &asset, is_get),
                    _ => Some(pages::not_found(&self.cache, &p)),
                },
                _ => Some(pages::not_found(&self.cache, "/")),
            },
        }
    }

    /// The response for `asset`; `None` if its file changed since it was looked up.
    fn asset<B>(
        &self,
        req: &Request<B>,
        asset: &Arc<Asset>,
        is_get: bool,
    ) -> Option<Response<Body>> {
        let accept = req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let sidecars = &asset.variants[1..];
        let index = if sidecars.is_empty() {
            0
        } else {
            negotiate::choose(sidecars.iter().map(|v| v.encoding), accept).map_or(0, |i| i + 1)
        };
        // Whether the response varies on Accept-Encoding: sidecars, or a gzip of ours.
        // (Gzippable files have no sidecars: the file is the one representation.)
        let gzippable = asset.gzippable;
        let vary = asset.variants.len() > 1 || gzippable;
        if gzippable
            && !req.headers().contains_key(header::RANGE)
            && accept
                .is_some_and(|a| negotiate::AcceptEncoding::parse(a).quality(Encoding::Gzip) > 0)
        {
            // Ranges always get the file as it is: a range of a gzip is of no use.
            if let Some((gz, etag)) = self.cache.gzip_of(asset) {
                return Some(self.gzip(req, asset, gz, etag, is_get));
            }
        }
        let variant = &asset.variants[index];
        let validators = Validators {
            etag: variant.etag.as_ref().map(Etag::as_bytes),
            last_modified: asset
                .modified
                .map(|secs| UNIX_EPOCH + Duration::from_secs(secs)),
            len: variant.len(),
        };
        let (status, range) = match conditional::evaluate(req.headers(), is_get, &validators) {
            Outcome::Full => (StatusCode::OK, 0..variant.len()),
            Outcome::Partial(range) => (StatusCode::PARTIAL_CONTENT, range),
            Outcome::NotModified => {
                let headers = self.caching_headers(asset, variant.etag.as_ref(), vary);
                return Some(respond(StatusCode::NOT_MODIFIED, headers, Body::empty()));
            }
            Outcome::PreconditionFailed => {
                return Some(pages::text(
                    StatusCode::PRECONDITION_FAILED,
                    "precondition failed\n",
                ))
            }
            Outcome::RangeNotSatisfiable => {
                let mut r =
                    pages::text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
                let content_range = format!("bytes */{}", variant.len());
                r.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::try_from(content_range).expect("digits"),
                );
                return Some(r);
            }
        };
        let body = pages::body(
            &self.cache,
            asset,
            index,
            range.start,
            range.end - range.start,
        )?;
        let mut headers = self.caching_headers(asset, variant.etag.as_ref(), vary);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if let Some(coding) = variant.encoding.token() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        if status == StatusCode::OK {
            return Some(respond(status, headers, body));
        }
        let content_range = format!("bytes {}-{}/{}", range.start, range.end - 1, variant.len());
        headers.insert(
            header::CONTENT_RANGE,
            HeaderValue::try_from(content_range).expect("digits"),
        );
        Some(respond(status, headers, body))
    }

    /// The headers a 304 carries (RFC 9110 §15.4.5: those a 200 would have had that caches
    /// use), which a 200 or 206 then extends.
    /// `vary`: whether the answer depends on `Accept-Encoding`.
    fn caching_headers(&self, asset: &Asset, etag: Option<&Etag>, vary: bool) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(self.header_room);
        if let Some(etag) = etag {
            h.insert(header::ETAG, etag.header());
        }
        h.insert(header::CACHE_CONTROL, self.cache.cache_control(asset));
        if let Some(secs) = asset.modified {
            h.insert(header::LAST_MODIFIED, headers::http_date(secs));
        }
        if vary {
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        h
    }

    /// The gzip of `asset` (`gz`, whose own ETag is `etag`), or a 304 or 412 on it.
    fn gzip<B>(
        &self,
        req: &Request<B>,
        asset: &Asset,
        gz: Bytes,
        etag: Etag,
        is_get: bool,
    ) -> Response<Body> {
        let validators = Validators {
            etag: Some(etag.as_bytes()),
            last_modified: asset
                .modified
                .map(|secs| UNIX_EPOCH + Duration::from_secs(secs)),
            len: gz.len() as u64,
        };
        let mut headers = self.caching_headers(asset, Some(&etag), true);
        match conditional::evaluate(req.headers(), is_get, &validators) {
            Outcome::NotModified => respond(StatusCode::NOT_MODIFIED, headers, Body::empty()),
            Outcome::PreconditionFailed => {
                pages::text(StatusCode::PRECONDITION_FAILED, "precondition failed\n")
            }
            // No Range was sent: the whole representation.
            _ => {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                );
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                respond(StatusCode::OK, headers, Body::full(gz))
            }
        }
    }

    /// Probe answers must never be cached by anything between the prober and the server.
    fn probe(&self, status: StatusCode, text: &'static str) -> Response<Body> {
        let mut r = pages::text(status, text);
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }
}

/// A redirect of `status` to `location`. Locations are made from checked paths, parsed
/// URIs and rule targets checked as header values when the rules were read; one that is
/// not valid header text goes without `Location` rather than fail the response.
fn redirect(status: StatusCode, location: String) -> Response<Body> {
    let mut r = pages::text(status, "");
    if let Ok(v) = HeaderValue::try_from(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Whether a request for a missing path is a browser navigation, which a single-page app's
/// fallback answers: its last segment has no extension, or it accepts HTML.
fn is_navigation<B>(req: &Request<B>, path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or_default();
    !last.contains('.')
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}
