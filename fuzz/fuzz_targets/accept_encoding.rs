//! `Accept-Encoding`: qualities stay within 0..=1000, the chosen sidecar is one that exists
//! and that the client accepts (q > 0), and no other accepted one has a higher q.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyserve::files::negotiate::{choose, AcceptEncoding, Encoding};

fuzz_target!(|input: (&str, u8)| {
    let (header, mask) = input;
    let accept = AcceptEncoding::parse(header);
    let available: Vec<Encoding> = Encoding::SIDECARS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, (e, _))| *e)
        .collect();
    for (e, _) in Encoding::SIDECARS {
        assert!(accept.quality(e) <= 1000);
    }
    if let Some(i) = choose(available.iter().copied(), Some(header)) {
        let q = accept.quality(available[i]);
        assert!(q > 0, "{header:?} chose {:?} at q=0", available[i]);
        assert!(available.iter().all(|e| accept.quality(*e) <= q));
    }
});
