//! Response header values that depend on policy rather than on a request: HTTP dates, the
//! `Cache-Control` of a path, and the recognition of fingerprinted file names.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;

use crate::config::ImmutableRule;

/// `Cache-Control` of files that never change under their name.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// An IMF-fixdate header value.
pub fn http_date(t: SystemTime) -> HeaderValue {
    HeaderValue::try_from(httpdate::fmt_http_date(t)).expect("an HTTP date is header text")
}

/// `t` rounded down to whole seconds, as HTTP dates are.
pub fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// A header value that lives as long as the process. Cloning one is a pointer copy, where a
/// shared one costs two atomic operations per response. Only for values made once from the
/// configuration: anything made per file would leak as files change.
pub fn forever(value: &HeaderValue) -> HeaderValue {
    match value.to_str() {
        Ok(v) => HeaderValue::from_static(Box::leak(v.to_string().into_boxed_str())),
        Err(_) => value.clone(),
    }
}

/// Whether a file gets the one-year immutable `Cache-Control`. HTML never does: it is the
/// entry point that names the fingerprinted assets, so it must be revalidated.
pub fn is_immutable(rule: &ImmutableRule, url_path: &str) -> bool {
    let name = url_path.rsplit('/').next().unwrap_or(url_path);
    if name.ends_with(".html") || name.ends_with(".htm") {
        return false;
    }
    rule.prefixes
        .iter()
        .any(|p| url_path.starts_with(p.as_str()))
        || (rule.fingerprinted && is_fingerprinted(name))
}

/// Recognises the content hash bundlers put in file names, after a `.` or `-`:
/// 8+ lowercase hex digits (webpack, Parcel: `app.3f9a2c1e.js`) or exactly 8 base64url
/// characters mixing digits, upper and lower case (Vite, Rollup: `index-B_x9aQ2k.js`).
/// Deliberately strict: a false positive would pin a stale file in caches for a year.
pub fn is_fingerprinted(name: &str) -> bool {
    let Some((stem, _ext)) = name.rsplit_once('.') else {
        return false;
    };
    stem.char_indices()
        .filter(|&(i, c)| i > 0 && (c == '.' || c == '-'))
        .any(|(i, _)| {
            let tail = &stem[i + 1..];
            let hex = tail.len() >= 8
                && tail
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                && tail.bytes().any(|b| b.is_ascii_digit())
                && tail.bytes().any(|b| b.is_ascii_alphabetic());
            let b64 = tail.len() == 8
                && tail
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                && tail.bytes().any(|b| b.is_ascii_digit())
                && tail.bytes().any(|b| b.is_ascii_uppercase())
                && tail.bytes().any(|b| b.is_ascii_lowercase());
            hex || b64
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints() {
        assert!(is_fingerprinted("app.3f9a2c1e.js"));
        assert!(is_fingerprinted("main.0123456789abcdef0123.css"));
        assert!(is_fingerprinted("index-B_x9aQ2k.js"));
        assert!(is_fingerprinted("index-Bx-9aQ2k.js"));
        assert!(!is_fingerprinted("jquery-3.7.1.min.js"));
        assert!(!is_fingerprinted("summer24.jpg"));
        assert!(!is_fingerprinted("photo-summer24.jpg"));
        assert!(!is_fingerprinted("chapter-2-introduction.png"));
        assert!(!is_fingerprinted("IMG20240101.jpg"));
        assert!(!is_fingerprinted("style.css"));
    }

    #[test]
    fn immutable_paths() {
        let rule = ImmutableRule {
            fingerprinted: true,
            prefixes: vec!["/assets/".into()],
        };
        assert!(is_immutable(&rule, "/js/app.3f9a2c1e.js"));
        assert!(is_immutable(&rule, "/assets/logo.png"));
        assert!(!is_immutable(&rule, "/assets/index.html"));
        assert!(!is_immutable(&rule, "/style.css"));
    }
}
