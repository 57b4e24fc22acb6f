//! CORS (the Fetch standard's cross-origin protocol) for `--cors-origins`: a browser on
//! another origin may read these files. Simple requests get `Access-Control-Allow-Origin`;
//! preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered here, 204 when
//! allowed, since a static server's answer never depends on anything a preflight could ask
//! for beyond GET and HEAD.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request};

/// Which origins may read the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin (`*`): the response says `*` and does not vary by origin.
    Any,
    /// Exactly these serialized origins (`https://app.example.com`).
    List(Vec<String>),
}

impl CorsOrigins {
    /// Parses `*` or a comma-separated list of origins (`scheme://host[:port]`).
    pub fn parse(s: &str) -> Option<CorsOrigins> {
        let items: Vec<&str> = s
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        if items == ["*"] {
            return Some(CorsOrigins::Any);
        }
        let valid = |o: &&str| {
            let Some((scheme, host)) = o.split_once("://") else {
                return false;
            };
            !scheme.is_empty()
                && !host.is_empty()
                && !host.contains('/')
                && HeaderValue::from_str(o).is_ok()
        };
        (!items.is_empty() && items.iter().all(valid))
            .then(|| CorsOrigins::List(items.iter().map(|o| o.to_ascii_lowercase()).collect()))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    fn allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        match self {
            CorsOrigins::Any => Some(HeaderValue::from_static("*")),
            CorsOrigins::List(list) => {
                let o = origin.to_str().ok()?;
                list.iter()
                    .any(|a| a.eq_ignore_ascii_case(o))
                    .then(|| origin.clone())
            }
        }
    }

    /// Whether the answer depends on the request's `Origin` (caches must key on it).
    fn varies(&self) -> bool {
        matches!(self, CorsOrigins::List(_))
    }
}

/// What CORS makes of a request.
pub enum Cors {
    /// Not a preflight: answer it as usual, then [`add_headers`].
    Proceed,
    /// An allowed preflight: answer 204 with these headers.
    Preflight(HeaderMap),
    /// A preflight from an origin not allowed, or for a method other than GET and HEAD.
    Refused,
}

/// How long a browser may cache a preflight's answer (its own cap is lower: 2 h in
/// Chromium, 24 h in Firefox).
const MAX_AGE: &str = "86400";

/// Classifies `req`.
pub fn check<B>(origins: &CorsOrigins, req: &Request<B>) -> Cors {
    let h = req.headers();
    let (Some(origin), Some(method)) = (
        h.get(header::ORIGIN),
        h.get(header::ACCESS_CONTROL_REQUEST_METHOD),
    ) else {
        return Cors::Proceed;
    };
    if req.method() != Method::OPTIONS {
        return Cors::Proceed;
    }
    let Some(allow) = origins.allow(origin) else {
        return Cors::Refused;
    };
    if !matches!(method.as_bytes(), b"GET" | b"HEAD") {
        return Cors::Refused;
    }
    let mut out = HeaderMap::new();
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD"),
    );
    // The files are the same whatever a request's headers say: any the page wants to send
    // (Range, If-None-Match, its own) are fine.
    if let Some(asked) = h.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE),
    );
    out.insert(
        header::VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    );
    Cors::Preflight(out)
}

/// Adds the CORS headers of an actual (non-preflight) response to a request from an allowed
/// origin: `Access-Control-Allow-Origin`, the validators and range headers scripts may
/// read, and `Vary: Origin` when the answer depends on it.
pub fn add_headers(origins: &CorsOrigins, request: &HeaderMap, response: &mut HeaderMap) {
    if origins.varies() {
        // Even when not allowed: a cache must not give this answer to another origin.
        response.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    let Some(allow) = request.get(header::ORIGIN).and_then(|o| origins.allow(o)) else {
        return;
    };
    response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    response.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag, Last-Modified, Content-Range, Accept-Ranges"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_lists() {
        assert_eq!(CorsOrigins::parse("*"), Some(CorsOrigins::Any));
        assert_eq!(
            CorsOrigins::parse("https://a.example, http://b.example:8080"),
            Some(CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://b.example:8080".into()
            ]))
        );
        assert_eq!(CorsOrigins::parse("a.example"), None);
        assert_eq!(CorsOrigins::parse("https://a.example/path"), None);
        assert_eq!(CorsOrigins::parse("*, https://a.example"), None);
        assert_eq!(CorsOrigins::parse(""), None);
    }
}
