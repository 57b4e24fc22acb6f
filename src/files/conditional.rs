//! Conditional and range requests, evaluated as RFC 9110 §13.2.2 orders them:
//! If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, then Range with If-Range.

use std::ops::Range;
use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderValue};

/// What to send for a request on an existing representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with the whole representation.
    Full,
    /// 206 with these bytes.
    Partial(Range<u64>),
    /// 304.
    NotModified,
    /// 412.
    PreconditionFailed,
    /// 416.
    RangeNotSatisfiable,
}

/// The validators of the representation the request is about.
pub struct Validators<'a> {
    /// Its strong ETag, quoted; `None` while it is not known yet (only `*` then matches).
    pub etag: Option<&'a [u8]>,
    /// Its modification time in whole seconds.
    pub last_modified: Option<SystemTime>,
    /// Its length.
    pub len: u64,
}

/// Evaluates the preconditions and `Range` of a GET (`is_get`) or HEAD request.
pub fn evaluate(headers: &HeaderMap, is_get: bool, v: &Validators) -> Outcome {
    let etag = v.etag;
    // Step 1 and 2: If-Match, else If-Unmodified-Since.
    if let Some(im) = headers.get(header::IF_MATCH) {
        if !etag_list_matches(im.as_bytes(), etag, true) {
            return Outcome::PreconditionFailed;
        }
    } else if let (Some(ius), Some(lm)) =
        (date(headers, header::IF_UNMODIFIED_SINCE), v.last_modified)
    {
        if lm > ius {
            return Outcome::PreconditionFailed;
        }
    }
    // Step 3 and 4: If-None-Match, else If-Modified-Since. Only GET and HEAD reach here.
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        if etag_list_matches(inm.as_bytes(), etag, false) {
            return Outcome::NotModified;
        }
    } else if let (Some(ims), Some(lm)) =
        (date(headers, header::IF_MODIFIED_SINCE), v.last_modified)
    {
        if lm <= ims {
            return Outcome::NotModified;
        }
    }
    // Step 5: Range, only for GET, only while If-Range (if any) still holds.
    if !is_get {
        return Outcome::Full;
    }
    let Some(range) = headers.get(header::RANGE) else {
        return Outcome::Full;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        if !if_range_holds(if_range, etag, v.last_modified) {
            return Outcome::Full;
        }
    }
    match parse_range(range.as_bytes(), v.len) {
        RangeSpec::Single(r) => Outcome::Partial(r),
        RangeSpec::Unsatisfiable => Outcome::RangeNotSatisfiable,
        RangeSpec::Ignore => Outcome::Full,
    }
}

fn date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    let value = headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(value).ok()
}

/// If-Range holds when its entity-tag strongly matches, or its date equals Last-Modified
/// exactly (RFC 9110 §13.1.5). A weak tag never holds.
fn if_range_holds(
    value: &HeaderValue,
    etag: Option<&[u8]>,
    last_modified: Option<SystemTime>,
) -> bool {
    let bytes = value.as_bytes();
    if bytes.starts_with(b"\"") {
        return Some(bytes) == etag;
    }
    if bytes.starts_with(b"W/") {
        return false;
    }
    match (
        value
            .to_str()
            .ok()
            .and_then(|s| httpdate::parse_http_date(s).ok()),
        last_modified,
    ) {
        (Some(d), Some(lm)) => d == lm,
        _ => false,
    }
}

/// Whether an If-Match / If-None-Match list names `etag` (or is `*`, which any existing
/// representation matches). Strong comparison treats weak tags as never matching; weak
/// comparison ignores the `W/` prefix.
fn etag_list_matches(list: &[u8], etag: Option<&[u8]>, strong: bool) -> bool {
    let trimmed = list.trim_ascii();
    if trimmed == b"*" {
        return true;
    }
    let Some(etag) = etag else {
        return false;
    };
    let mut rest = trimmed;
    loop {
        rest = rest.trim_ascii_start();
        while let Some(r) = rest.strip_prefix(b",") {
            rest = r.trim_ascii_start();
        }
        if rest.is_empty() {
            return false;
        }
        let weak = rest.starts_with(b"W/");
        if weak {
            rest = &rest[2..];
        }
        if !rest.starts_with(b"\"") {
            return false; // Malformed list: match nothing rather than guess.
        }
        let Some(end) = rest[1..].iter().position(|&b| b == b'"') else {
            return false;
        };
        let tag = &rest[..end + 2];
        if tag == etag && !(strong && weak) {
            return true;
        }
        rest = &rest[end + 2..];
    }
}

/// A parsed `Range` header against a representation of a known length.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// One satisfiable range, as a half-open byte range.
    Single(Range<u64>),
    /// Syntactically valid, but no byte of it lies in the representation.
    Unsatisfiable,
    /// Another unit, a syntax error or several ranges: send the whole representation,
    /// which RFC 9110 §14.2 allows and which no client can misread.
    Ignore,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`.
pub fn parse_range(value: &[u8], len: u64) -> RangeSpec {
    let Ok(s) = std::str::from_utf8(value) else {
        return RangeSpec::Ignore;
    };
    let Some((unit, set)) = s.split_once('=') else {
        return RangeSpec::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            // Absurdly long numbers saturate: still a valid range, just past the end.
            Some(s.parse().unwrap_or(u64::MAX))
        }
    };
    match (first.is_empty(), num(first), num(last)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Single(len.saturating_sub(n)..len)
            }
        }
        // bytes=a- and bytes=a-b.
        (false, Some(a), b) if last.is_empty() || b.is_some() => {
            if let Some(b) = b {
                if b < a {
                    return RangeSpec::Ignore;
                }
            }
            if a >= len {
                return RangeSpec::Unsatisfiable;
            }
            let end = b.map_or(len, |b| b.saturating_add(1).min(len));
            RangeSpec::Single(a..end)
        }
        _ => RangeSpec::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(b"bytes=0-9", 100), RangeSpec::Single(0..10));
        assert_eq!(parse_range(b"bytes=90-", 100), RangeSpec::Single(90..100));
        assert_eq!(parse_range(b"bytes=-10", 100), RangeSpec::Single(90..100));
        assert_eq!(parse_range(b"bytes=-200", 100), RangeSpec::Single(0..100));
        assert_eq!(
            parse_range(b"bytes=50-500", 100),
            RangeSpec::Single(50..100)
        );
        assert_eq!(parse_range(b"bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-0", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-1,5-6", 100), RangeSpec::Ignore);
        assert_eq!(parse_range(b"bytes=9-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range(b"items=0-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range(b"bytes=x-1", 100), RangeSpec::Ignore);
        assert_eq!(
            parse_range(b"bytes=0-99999999999999999999999", 100),
            RangeSpec::Single(0..100)
        );
    }

    #[test]
    fn etag_lists() {
        let e = Some(&b"\"abc\""[..]);
        assert!(etag_list_matches(b"\"abc\"", e, true));
        assert!(etag_list_matches(b"\"x\", \"abc\"", e, true));
        assert!(etag_list_matches(b"W/\"abc\"", e, false));
        assert!(!etag_list_matches(b"W/\"abc\"", e, true));
        assert!(etag_list_matches(b"*", e, true));
        assert!(!etag_list_matches(b"\"ab\"", e, false));
        assert!(!etag_list_matches(b"abc", e, false));
        assert!(!etag_list_matches(b"\"abc", e, false));
        assert!(etag_list_matches(b"*", None, true));
        assert!(!etag_list_matches(b"\"abc\"", None, false));
    }
}
