//! Request paths: percent-decoding and the rule for what no servable file can be called.
//! Both run before the cache is asked, so a crafted path never reaches the file system.

/// The one dot-directory served, at the root only: RFC 8615's home of `security.txt`,
/// ACME challenges and app-site associations.
pub const WELL_KNOWN: &str = ".well-known";

/// Whether `path` is a probe (`/healthz`, `/readyz`): the server answers it whatever the
/// site holds, and it needs no credentials (kubelets and load balancers have none).
pub fn is_probe(path: &str) -> bool {
    path == "/healthz" || path == "/readyz"
}

/// What a raw request path (as it came on the wire) means.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked<'a> {
    /// A path a file may have, decoded.
    Path(std::borrow::Cow<'a, str>),
    /// A path no file can have (traversal, dotfile, escaped slash): always 404.
    Forbidden,
    /// Not valid percent-encoding: 400.
    BadRequest,
}

/// Decodes `raw` and applies [`is_safe_path`]. The common case, a plain path, needs no
/// decoding and no allocation.
pub fn check(raw: &str) -> Checked<'_> {
    if !raw.contains('%') {
        return if is_safe_path(raw) {
            Checked::Path(raw.into())
        } else {
            Checked::Forbidden
        };
    }
    match percent_decode(raw) {
        Decoded::Invalid => Checked::BadRequest,
        Decoded::Forbidden => Checked::Forbidden,
        Decoded::Path(p) if is_safe_path(&p) => Checked::Path(p.into()),
        Decoded::Path(_) => Checked::Forbidden,
    }
}

/// Rejects what no servable path can contain, so that crafted paths fail early and the rule
/// is stated once: absolute, no empty, `.` or `..` segment, no dotfile (but the root's
/// `.well-known`), no backslash, no NUL.
pub fn is_safe_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    !path.contains(['\\', '\0'])
        && rest.split('/').enumerate().all(|(i, seg)| {
            !seg.is_empty() && (!seg.starts_with('.') || (i == 0 && seg == WELL_KNOWN))
        })
}

/// The result of [`percent_decode`].
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The decoded path.
    Path(String),
    /// Malformed escapes (`%zz`, a lone `%`).
    Invalid,
    /// An escape of `/`, `\` or NUL, or bytes that are not UTF-8: never a file name here.
    Forbidden,
}

/// Decodes `%XX` escapes.
pub fn percent_decode(raw: &str) -> Decoded {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Decoded::Invalid;
            };
            let b = (h * 16 + l) as u8;
            if matches!(b, b'/' | b'\\' | 0) {
                return Decoded::Forbidden;
            }
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Decoded::Path(s),
        Err(_) => Decoded::Forbidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths() {
        assert!(is_safe_path("/"));
        assert!(is_safe_path("/a/b.css"));
        assert!(is_safe_path("/docs/"));
        assert!(!is_safe_path("/../etc/passwd"));
        assert!(!is_safe_path("/a/./b"));
        assert!(!is_safe_path("/.env"));
        assert!(!is_safe_path("/.git/config"));
        assert!(!is_safe_path("/a//b"));
        assert!(!is_safe_path("/a\\b"));
        assert!(!is_safe_path("a"));
        assert!(is_safe_path("/.well-known/security.txt"));
        assert!(!is_safe_path("/docs/.well-known/x"));
        assert!(!is_safe_path("/.well-known/../.env"));
    }

    #[test]
    fn decoding() {
        assert_eq!(
            percent_decode("/caf%C3%A9.html"),
            Decoded::Path("/café.html".into())
        );
        assert_eq!(percent_decode("/a%2fb"), Decoded::Forbidden);
        assert_eq!(percent_decode("/a%5Cb"), Decoded::Forbidden);
        assert_eq!(percent_decode("/a%00"), Decoded::Forbidden);
        assert_eq!(percent_decode("/a%zz"), Decoded::Invalid);
        assert_eq!(percent_decode("/a%2"), Decoded::Invalid);
        assert_eq!(percent_decode("/%ff"), Decoded::Forbidden);
        assert_eq!(check("/%2e%2e/etc/passwd"), Checked::Forbidden);
        assert_eq!(check("/a%zz"), Checked::BadRequest);
        assert_eq!(check("/a.css"), Checked::Path("/a.css".into()));
    }
}
