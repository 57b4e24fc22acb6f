//! `Range` against a representation length: a satisfiable range is never empty and never
//! reaches past the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyserve::files::conditional::{parse_range, RangeSpec};

fuzz_target!(|input: (u64, &[u8])| {
    let (len, value) = input;
    if let RangeSpec::Single(r) = parse_range(value, len) {
        assert!(r.start < r.end && r.end <= len, "{value:?} on {len}: {r:?}");
    }
});
