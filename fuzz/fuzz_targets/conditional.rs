//! RFC 9110 preconditions and ranges together: whatever the headers, a 206 covers bytes of
//! the representation, and a request without validators or Range is answered in full.
#![no_main]

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tinyserve::files::conditional::{evaluate, Outcome, Validators};

const NAMES: [header::HeaderName; 6] = [
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::RANGE,
    header::IF_RANGE,
];

fuzz_target!(|input: (u64, u32, bool, bool, Vec<(u8, Vec<u8>)>)| {
    let (len, modified, has_etag, is_get, fields) = input;
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            headers.append(NAMES[name as usize % NAMES.len()].clone(), v);
        }
    }
    let etag = b"\"0123456789abcdef0123456789abcdef\"";
    let v = Validators {
        etag: has_etag.then_some(&etag[..]),
        last_modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(modified as u64)),
        len,
    };
    let outcome = evaluate(&headers, is_get, &v);
    match &outcome {
        Outcome::Partial(r) => {
            assert!(is_get && headers.contains_key(header::RANGE));
            assert!(r.start < r.end && r.end <= len, "{r:?} of {len}");
        }
        Outcome::Full => {}
        _ => assert!(!headers.is_empty()),
    }
});
