//! The `Host` header, as RFC 9112 §3.2 requires it: a server MUST answer 400 to an
//! HTTP/1.1 request without one, and to any request with more than one or with an invalid
//! value. (HTTP/1.0 requests without `Host` stay allowed: simple health checkers send them.)

use http::{header, Request, Version};

/// Why the request's `Host` is refused, if it is.
pub fn problem<B>(req: &Request<B>) -> Option<&'static str> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if req.version() == Version::HTTP_11 => Some("missing Host header"),
        (None, _) => None,
        (Some(_), Some(_)) => Some("more than one Host header"),
        (Some(v), None) if !is_valid(v.as_bytes()) => Some("invalid Host header"),
        (Some(_), None) => None,
    }
}

/// `uri-host [ ":" port ]` (RFC 3986): an IP literal in brackets, or a name of unreserved,
/// percent-encoded and sub-delimiter characters; empty is allowed (RFC 9112 §3.2).
fn is_valid(v: &[u8]) -> bool {
    let (host, port) = match v.iter().rposition(|&b| b == b':') {
        Some(i) if !v[i..].contains(&b']') => (&v[..i], &v[i + 1..]),
        _ => (v, &b""[..]),
    };
    if !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if let Some(inner) = host.strip_prefix(b"[").and_then(|h| h.strip_suffix(b"]")) {
        return !inner.is_empty()
            && inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    host.iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, hosts: &[&str]) -> Request<()> {
        let mut b = Request::builder().version(version).uri("/");
        for h in hosts {
            b = b.header(header::HOST, *h);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn rfc_9112_host_rules() {
        assert_eq!(problem(&req(Version::HTTP_11, &["example.com"])), None);
        assert_eq!(problem(&req(Version::HTTP_11, &["example.com:8080"])), None);
        assert_eq!(problem(&req(Version::HTTP_11, &["10.0.0.1:80"])), None);
        assert_eq!(problem(&req(Version::HTTP_11, &["[::1]:8080"])), None);
        assert_eq!(problem(&req(Version::HTTP_11, &["[fe80::1]"])), None);
        assert_eq!(problem(&req(Version::HTTP_11, &[""])), None);
        assert_eq!(problem(&req(Version::HTTP_10, &[])), None);
        assert!(problem(&req(Version::HTTP_11, &[])).is_some());
        assert!(problem(&req(Version::HTTP_11, &["a", "b"])).is_some());
        assert!(problem(&req(Version::HTTP_10, &["a", "a"])).is_some());
        assert!(problem(&req(Version::HTTP_11, &["a b"])).is_some());
        assert!(problem(&req(Version::HTTP_11, &["a/b"])).is_some());
        assert!(problem(&req(Version::HTTP_11, &["a:8x"])).is_some());
        assert!(problem(&req(Version::HTTP_11, &["[zz]"])).is_some());
        assert!(problem(&req(Version::HTTP_11, &["a@b"])).is_some());
    }
}
