//! `--compress auto`: a site without precompressed files still goes out gzipped, once the
//! server has compressed each file (in the background, once per content ETag), and HTTP's
//! rules hold for the new representation: `Vary`, its own ETag, 304 on it, ranges on the
//! file as it is, HEAD as GET.

mod common;

use common::*;
use std::io::Read;
use std::time::{Duration, Instant};

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Text that compresses, of about `len` bytes.
fn page(len: usize) -> Vec<u8> {
    let mut out = b"<!doctype html><title>page</title>\n".to_vec();
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(format!("<p>paragraph {i} of the page, repeated</p>\n").as_bytes());
        i += 1;
    }
    out
}

const GZIP: (&str, &str) = ("Accept-Encoding", "gzip, deflate, br");

/// Asks for `path` with gzip accepted until the answer is gzipped (the first ones are not).
fn until_gzipped(s: &Server, path: &str) -> Response {
    let started = Instant::now();
    loop {
        let r = request(s.addr, "GET", path, &[GZIP]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("vary"), Some("accept-encoding"), "{path}");
        if r.header("content-encoding") == Some("gzip") {
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path} never gzipped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn text_without_sidecars_is_gzipped_once_ready_with_its_own_etag() {
    let site = demo_site();
    let small = page(6 << 10); // kept in memory
    let large = page(300 << 10); // sent by sendfile, hashed in the background
    write(site.path(), "docs/page.html", &small);
    write(site.path(), "docs/large.html", &large);
    let s = Server::start(site.path(), &["--metrics-listen", "127.0.0.1:0"]);

    let identity = request(s.addr, "GET", "/docs/page.html", &[]);
    assert_eq!(identity.header("content-encoding"), None);
    assert_eq!(identity.header("vary"), Some("accept-encoding"));
    let gz = until_gzipped(&s, "/docs/page.html");
    assert_eq!(gunzip(&gz.body), small);
    assert!(gz.body.len() * 4 < small.len(), "{} bytes", gz.body.len());
    let etag = gz.header("etag").unwrap().to_string();
    assert_ne!(
        Some(etag.as_str()),
        identity.header("etag"),
        "an ETag of its own"
    );
    assert!(etag.starts_with('"'), "strong: {etag}");
    assert_eq!(gz.header("content-type"), identity.header("content-type"));

    // 304 on the gzip's ETag; the identity's ETag still validates the identity.
    let not_modified = request(
        s.addr,
        "GET",
        "/docs/page.html",
        &[GZIP, ("If-None-Match", &etag)],
    );
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    assert_eq!(not_modified.header("vary"), Some("accept-encoding"));
    let id_etag = identity.header("etag").unwrap();
    let plain_304 = request(
        s.addr,
        "GET",
        "/docs/page.html",
        &[("If-None-Match", id_etag)],
    );
    assert_eq!(plain_304.status, 304);

    // A range is of the file as it is.
    let part = request(
        s.addr,
        "GET",
        "/docs/page.html",
        &[GZIP, ("Range", "bytes=0-9")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-encoding"), None);
    assert_eq!(part.body, &small[..10]);

    // HEAD says what GET sends.
    let head = request(s.addr, "HEAD", "/docs/page.html", &[GZIP]);
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    assert_eq!(
        head.header("content-length").unwrap(),
        gz.body.len().to_string()
    );
    assert!(head.body.is_empty());

    // Without gzip accepted, or refused with q=0: the file as it is.
    for accept in [None, Some("br"), Some("gzip;q=0")] {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
        let r = request(s.addr, "GET", "/docs/page.html", &headers);
        assert_eq!(r.header("content-encoding"), None, "{accept:?}");
        assert_eq!(r.body, small, "{accept:?}");
    }

    // A large file too, once its background hash gives it an ETag.
    let gz = until_gzipped(&s, "/docs/large.html");
    assert_eq!(gunzip(&gz.body), large);

    // The compressed bytes count against --cache-max.
    let m = s.metrics();
    assert!(metric(&m, "tinyserve_cache_memory_bytes ") <= 64.0 * 1048576.0);
}

#[test]
fn an_edit_gets_a_new_gzip_and_never_the_old_one() {
    let site = demo_site();
    let first = page(8000);
    write(site.path(), "page.html", &first);
    let s = Server::start(site.path(), &[]);
    let old = until_gzipped(&s, "/page.html");
    assert_eq!(gunzip(&old.body), first);
    let second = page(9000);
    write(site.path(), "page.html", &second);
    let started = Instant::now();
    loop {
        let r = request(s.addr, "GET", "/page.html", &[GZIP]);
        let body = if r.header("content-encoding") == Some("gzip") {
            gunzip(&r.body)
        } else {
            r.body.clone()
        };
        // Old bytes only until the change is seen; never the old gzip after new bytes.
        if body == second && r.header("content-encoding") == Some("gzip") {
            assert_ne!(r.header("etag"), old.header("etag"));
            break;
        }
        assert!(body == first || body == second, "bytes of neither version");
        assert!(started.elapsed() < Duration::from_secs(3), "no new gzip");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sidecars_win_images_are_never_compressed_and_off_means_off() {
    let site = demo_site();
    let text = page(8000);
    write(site.path(), "app.js", &text);
    // A sidecar of its own: sent as it is, never replaced by the server's gzip.
    let sidecar = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, &text).unwrap();
        e.finish().unwrap()
    };
    write(site.path(), "app.js.gz", &sidecar);
    write(site.path(), "photo.png", &page(8000));
    write(site.path(), "plain.html", &text);
    let s = Server::start(site.path(), &[]);
    for _ in 0..20 {
        let r = request(s.addr, "GET", "/app.js", &[GZIP]);
        assert_eq!(r.body, sidecar);
        let r = request(s.addr, "GET", "/photo.png", &[GZIP]);
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.header("vary"), None, "an image has one representation");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(s);
    let s = Server::start(site.path(), &["--compress", "off"]);
    for _ in 0..20 {
        let r = request(s.addr, "GET", "/plain.html", &[GZIP]);
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.header("vary"), None);
        std::thread::sleep(Duration::from_millis(5));
    }
}
