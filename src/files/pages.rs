//! The answers the server makes itself, and the site's pages that dress them:
//!
//! - a 404 gets the nearest `404.html` up the tree from the path asked for (Cloudflare
//!   Pages' rule: `/docs/a/b` tries `/docs/a/404.html`, `/docs/404.html`, `/404.html`);
//! - a 5xx of the server's own (a file that kept changing while being read) gets the root's
//!   `50x.html`;
//! - while `--maintenance FILE` exists, every path but the probes gets a 503 with that page
//!   and `Retry-After`, so a site is taken down and back up by adding and removing a file.
//!
//! Without those pages, a short text body. None of them is ever cached downstream
//! (`no-cache` on a 404 page, `no-store` on the rest), so a visitor sees the site again
//! the moment it is back.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use crate::cache::{Asset, Cache, Content, Found};
use crate::http::body::Body;

/// How long a client is asked to wait during maintenance, in seconds.
pub const MAINTENANCE_RETRY_AFTER: &str = "120";

/// `len` bytes from `offset` of representation `variant` of `asset`, or `None` if its file
/// changed since it was looked up (the cache forgets it, and the next request sees the new
/// file).
pub fn body(cache: &Cache, asset: &Asset, variant: usize, offset: u64, len: u64) -> Option<Body> {
    match cache.content(asset, variant) {
        Ok(Content::Memory(bytes)) => Some(Body::full(
            bytes.slice(offset as usize..(offset + len) as usize),
        )),
        Ok(Content::File(file, id)) => Some(Body::file(file, id, offset, len)),
        Err(_) => {
            cache.forget(&asset.key);
            None
        }
    }
}

/// A short plain-text answer.
pub fn text(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut headers = HeaderMap::new();
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

/// 404 for `path` (decoded and safe; `/` when it was neither): the nearest `404.html` up
/// the tree, or a short text.
pub fn not_found(cache: &Cache, path: &str) -> Response<Body> {
    let folder = match path.rfind('/') {
        Some(at) => &path[..at],
        None => "",
    };
    // `/a/b/c` -> `/a/b`, `/a`, `` (the root).
    let folders = std::iter::successors(Some(folder), |f| f.rfind('/').map(|at| &f[..at]));
    for folder in folders {
        if let Some(r) = page(cache, &format!("{folder}/404.html"), StatusCode::NOT_FOUND) {
            return r;
        }
    }
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// A 5xx of the server's own: the root's `50x.html`, or `fallback_text`.
pub fn server_error(
    cache: &Cache,
    status: StatusCode,
    fallback_text: &'static str,
) -> Response<Body> {
    let mut r = page(cache, "/50x.html", status).unwrap_or_else(|| text(status, fallback_text));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The maintenance answer if `file` (a path under the root) exists now: 503 with its
/// bytes and `Retry-After`.
pub fn maintenance(cache: &Cache, file: &str) -> Option<Response<Body>> {
    let mut r = page(cache, file, StatusCode::SERVICE_UNAVAILABLE)?;
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(MAINTENANCE_RETRY_AFTER),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(r)
}

/// The file at `path`, whole, as the body of a `status` answer; `None` if there is none.
fn page(cache: &Cache, path: &str, status: StatusCode) -> Option<Response<Body>> {
    let Found::File(page) = cache.lookup(path) else {
        return None;
    };
    let body = body(cache, &page, 0, 0, page.variants[0].len())?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(page.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(respond(status, headers, body))
}

/// A response of `status` with `headers` and `body`.
pub fn respond(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::watch::{Mode, Watch};
    use crate::ops::config::{self, Command};

    fn cache_of(root: &std::path::Path) -> std::sync::Arc<Cache> {
        let args = ["--root".into(), root.as_os_str().to_owned()];
        let Command::Serve(config) = config::parse(args, |_| None).unwrap() else {
            panic!("a serve command")
        };
        let limits = crate::cache::Limits {
            memory: 1 << 20,
            file_max: 8192,
            entries: 100,
            open_files: 4,
            page: crate::cache::mapped::PageSize::of_system(),
        };
        Cache::new(&config, limits, Watch::start(root, Mode::Off).0).unwrap()
    }

    async fn text_of(r: Response<Body>) -> String {
        let mut body = r.into_body();
        let mut out = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| {
            http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
        })
        .await
        {
            out.extend_from_slice(frame.unwrap().data_ref().unwrap());
        }
        String::from_utf8(out).unwrap()
    }

    // The server's own 5xx (a file that kept changing while being read) cannot be caused
    // on purpose through the binary: the answer is checked here, on a real folder.
    #[tokio::test]
    async fn a_server_error_wears_the_sites_50x_page_and_is_never_cached() {
        let site = tempfile::tempdir().unwrap();
        let cache = cache_of(site.path());
        let r = server_error(&cache, StatusCode::SERVICE_UNAVAILABLE, "busy\n");
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(text_of(r).await, "busy\n");

        std::fs::write(site.path().join("50x.html"), "<p>soon</p>").unwrap();
        let cache = cache_of(site.path());
        let r = server_error(&cache, StatusCode::SERVICE_UNAVAILABLE, "busy\n");
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert!(r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert_eq!(text_of(r).await, "<p>soon</p>");
    }
}
