//! CORS (the Fetch standard's cross-origin protocol) for `--cors-origins`: a browser on
//! another origin may read these files. The origins are checked here; the protocol is
//! tower-http's `CorsLayer`, which answers every `OPTIONS` itself (200, with the
//! permissions when the origin is allowed), so a preflight never needs a password.

use std::time::Duration;

use http::header::{self, HeaderValue};
use http::Method;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

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

    /// tower-http's CORS layer for these origins: simple requests from them get
    /// `Access-Control-Allow-Origin` and may read the validators and range headers;
    /// preflights are answered for GET and HEAD with whatever headers the page asks to
    /// send (the files are the same whatever a request's headers say). A list varies by
    /// `Origin` (a cache must not give one origin's answer to another); `*` does not.
    pub fn layer(&self) -> CorsLayer {
        let layer = CorsLayer::new()
            .allow_methods([Method::GET, Method::HEAD])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([
                header::ETAG,
                header::LAST_MODIFIED,
                header::CONTENT_RANGE,
                header::ACCEPT_RANGES,
            ])
            .max_age(MAX_AGE);
        match self {
            CorsOrigins::Any => layer.allow_origin(AllowOrigin::any()).vary([]),
            CorsOrigins::List(list) => layer.allow_origin(AllowOrigin::list(
                list.iter()
                    .map(|o| HeaderValue::from_str(o).expect("checked by parse")),
            )),
        }
    }
}

/// How long a browser may cache a preflight's answer (its own cap is lower: 2 h in
/// Chromium, 24 h in Firefox).
const MAX_AGE: Duration = Duration::from_secs(86_400);

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
