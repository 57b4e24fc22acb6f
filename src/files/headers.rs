//! Response header values that depend on policy rather than on a request: HTTP dates, the
//! `Cache-Control` of a path, and the recognition of fingerprinted file names.

use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;

/// Which paths are served with a long, immutable `Cache-Control`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImmutableRule {
    /// File names that carry a content hash (`app.3f9a2c1e.js`, `main-BZk3x9aQ.css`).
    pub fingerprinted: bool,
    /// URL path prefixes (`/assets/`) whose files never change under the same name.
    pub prefixes: Vec<String>,
}

/// Headers `--header` may not add: framing (a wrong length or coding corrupts every
/// response), hop-by-hop ones (RFC 9110 §7.6.1: about one connection, not the content), and
/// those the server computes per representation.
pub const REFUSED_HEADERS: [&str; 13] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "content-range",
    "content-encoding",
    "etag",
    "last-modified",
    "date",
];

/// Headers that tell caches how long to keep a response. From `_headers` or `--header`
/// they describe the file a path serves, so they never go on an error (4xx, 5xx): a
/// `/assets/*` rule making assets immutable must not make the 404 of a missing asset a
/// year-long cache entry (the server's own `no-store` stays there).
pub const CACHING_HEADERS: [&str; 6] = [
    "cache-control",
    "expires",
    "pragma",
    "surrogate-control",
    "cdn-cache-control",
    "cloudflare-cdn-cache-control",
];

/// Whether `name` is one of [`CACHING_HEADERS`].
pub fn is_caching(name: &http::HeaderName) -> bool {
    CACHING_HEADERS.contains(&name.as_str())
}

/// `Cache-Control` of files that never change under their name.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) of `secs` since the epoch, formatted
/// on the stack: every response with a Last-Modified formats one, as storing a header value
/// per cache entry would cost more memory than this costs time.
pub fn http_date(secs: u64) -> HeaderValue {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    // HTTP dates have four-digit years.
    let secs = secs.min(253_402_300_799);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u64;
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |out: &mut [u8], at: usize, v: u64| {
        out[at] = b'0' + (v / 10) as u8;
        out[at + 1] = b'0' + (v % 10) as u8;
    };
    two(&mut out, 5, day);
    out[8..11].copy_from_slice(MONTHS[month - 1]);
    two(&mut out, 12, year / 100);
    two(&mut out, 14, year % 100);
    two(&mut out, 17, rem / 3600);
    two(&mut out, 20, rem / 60 % 60);
    two(&mut out, 23, rem % 60);
    HeaderValue::from_bytes(&out).expect("an HTTP date is header text")
}

/// `t` in whole seconds since the epoch (0 before it).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
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
    fn dates_match_httpdate() {
        for secs in [
            0u64,
            784_111_777,
            951_782_400,
            1_700_000_000,
            4_102_444_800,
            253_402_300_799,
        ] {
            let t = UNIX_EPOCH + std::time::Duration::from_secs(secs);
            assert_eq!(
                http_date(secs).to_str().unwrap(),
                httpdate::fmt_http_date(t),
                "{secs}"
            );
        }
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
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
