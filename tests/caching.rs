//! HTTP caching (RFC 9110): content ETags, the conditional matrix, ranges with If-Range,
//! Cache-Control rules and precompressed sidecars.

mod common;

use common::*;
use std::time::{Duration, SystemTime};

fn set_mtime(path: &std::path::Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn etag_comes_from_content_not_mtime() {
    let a = demo_site();
    let b = demo_site();
    // Same bytes, different modification times: as two replicas built from two checkouts.
    set_mtime(
        &b.path().join("style.css"),
        SystemTime::now() - Duration::from_secs(86_400 * 30),
    );
    let sa = Server::start(a.path(), &[]);
    let sb = Server::start(b.path(), &[]);
    let (ra, rb) = (sa.get("/style.css"), sb.get("/style.css"));
    assert_ne!(ra.header("last-modified"), rb.header("last-modified"));
    let etag = ra.header("etag").unwrap();
    assert_eq!(Some(etag), rb.header("etag"));
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong etag: {etag}"
    );
    // Different content, different tag.
    assert_ne!(sa.get("/plain.js").header("etag"), Some(etag));
}

#[test]
fn conditional_requests_follow_rfc_9110_precedence() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    let r = s.get("/notes.txt");
    let etag = r.header("etag").unwrap().to_string();
    let lm = r.header("last-modified").unwrap().to_string();
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(86_400 * 365));
    let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(86_400));
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {etag}");
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![("If-None-Match", &etag)], 304),
        (vec![("If-None-Match", &weak)], 304),
        (vec![("If-None-Match", "\"other\", \"x\"")], 200),
        (vec![("If-None-Match", &listed)], 304),
        (vec![("If-None-Match", "*")], 304),
        (vec![("If-Modified-Since", &lm)], 304),
        (vec![("If-Modified-Since", &future)], 304),
        (vec![("If-Modified-Since", &past)], 200),
        (vec![("If-Modified-Since", "not a date")], 200),
        // If-None-Match wins over If-Modified-Since, both ways.
        (
            vec![
                ("If-None-Match", "\"other\""),
                ("If-Modified-Since", &future),
            ],
            200,
        ),
        (
            vec![("If-None-Match", &etag), ("If-Modified-Since", &past)],
            304,
        ),
        (vec![("If-Match", &etag)], 200),
        (vec![("If-Match", "*")], 200),
        (vec![("If-Match", "\"other\"")], 412),
        (vec![("If-Match", &weak)], 412),
        (vec![("If-Unmodified-Since", &past)], 412),
        (vec![("If-Unmodified-Since", &lm)], 200),
        // If-Match wins over If-Unmodified-Since.
        (
            vec![("If-Match", &etag), ("If-Unmodified-Since", &past)],
            200,
        ),
        // A failed If-Match is 412 even when If-None-Match would give 304.
        (
            vec![("If-Match", "\"other\""), ("If-None-Match", &etag)],
            412,
        ),
    ];
    for (headers, want) in cases {
        for method in ["GET", "HEAD"] {
            let r = request(s.addr, method, "/notes.txt", &headers);
            assert_eq!(r.status, want, "{method} {headers:?}");
            if want == 304 {
                assert!(r.body.is_empty());
                assert_eq!(
                    r.header("etag"),
                    Some(etag.as_str()),
                    "304 carries the ETag"
                );
                assert_eq!(
                    r.header("cache-control"),
                    Some("no-cache"),
                    "304 carries Cache-Control"
                );
            }
        }
    }
}

#[test]
fn ranges_and_if_range() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    let full = s.get("/notes.txt");
    let body = full.body.clone();
    let len = body.len();
    let etag = full.header("etag").unwrap().to_string();
    let lm = full.header("last-modified").unwrap().to_string();
    assert_eq!(full.header("accept-ranges"), Some("bytes"));

    let partial = |headers: &[(&str, &str)]| request(s.addr, "GET", "/notes.txt", headers);
    let r = partial(&[("Range", "bytes=0-9")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &body[0..10]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-9/{len}").as_str())
    );
    assert_eq!(r.header("content-length"), Some("10"));
    let r = partial(&[("Range", "bytes=-5")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &body[len - 5..]));
    let r = partial(&[("Range", "bytes=30-")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &body[30..]));
    let r = partial(&[("Range", "bytes=30-1000")]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 30-{}/{len}", len - 1).as_str())
    );

    let r = partial(&[("Range", &format!("bytes={len}-"))]);
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    assert_eq!(partial(&[("Range", "bytes=-0")]).status, 416);

    // Several ranges: the full 200 (no multipart). Junk and other units: ignored.
    for junk in [
        "bytes=0-1,5-6",
        "bytes=5-1",
        "bytes=abc",
        "lines=0-1",
        "bytes 0-1",
    ] {
        let r = partial(&[("Range", junk)]);
        assert_eq!((r.status, r.body.len()), (200, len), "{junk}");
    }

    // If-Range: a matching validator gets the range, a stale one the full body.
    let r = partial(&[("Range", "bytes=0-9"), ("If-Range", &etag)]);
    assert_eq!(r.status, 206);
    let r = partial(&[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")]);
    assert_eq!((r.status, r.body.len()), (200, len));
    let r = partial(&[("Range", "bytes=0-9"), ("If-Range", &format!("W/{etag}"))]);
    assert_eq!(r.status, 200, "weak validators never satisfy If-Range");
    let r = partial(&[("Range", "bytes=0-9"), ("If-Range", &lm)]);
    assert_eq!(r.status, 206);
    let old = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(86_400 * 365));
    let r = partial(&[("Range", "bytes=0-9"), ("If-Range", &old)]);
    assert_eq!(r.status, 200);

    // HEAD ignores Range; a 304 beats a Range.
    assert_eq!(
        request(s.addr, "HEAD", "/notes.txt", &[("Range", "bytes=0-9")]).status,
        200
    );
    assert_eq!(
        partial(&[("Range", "bytes=0-9"), ("If-None-Match", &etag)]).status,
        304
    );
}

#[test]
fn cache_control_html_revalidates_fingerprints_are_immutable() {
    let site = demo_site();
    write(site.path(), "assets/logo.png", b"png");
    let s = Server::start(site.path(), &[]);
    assert_eq!(s.get("/").header("cache-control"), Some("no-cache"));
    assert_eq!(s.get("/plain.js").header("cache-control"), Some("no-cache"));
    assert_eq!(
        s.get("/app.3f9a2c1e.js").header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        s.get("/assets/logo.png").header("cache-control"),
        Some("no-cache")
    );
    drop(s);

    let s = Server::start(
        site.path(),
        &[
            "--immutable",
            "/assets/",
            "--cache-control",
            "public, max-age=300",
        ],
    );
    assert_eq!(
        s.get("/assets/logo.png").header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        s.get("/app.3f9a2c1e.js").header("cache-control"),
        Some("public, max-age=300"),
        "fingerprint rule off"
    );
    assert_eq!(
        s.get("/").header("cache-control"),
        Some("public, max-age=300")
    );
}

#[test]
fn precompressed_sidecars_follow_accept_encoding() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    let get = |ae: Option<&str>| {
        let headers: Vec<(&str, &str)> =
            ae.map(|v| vec![("Accept-Encoding", v)]).unwrap_or_default();
        request(s.addr, "GET", "/style.css", &headers)
    };
    let identity = get(None);
    assert_eq!(identity.text(), "body { color: black; } /* identity */");
    assert_eq!(identity.header("content-encoding"), None);
    assert_eq!(identity.header("vary"), Some("accept-encoding"));

    let br = get(Some("gzip, deflate, br"));
    assert_eq!(
        (br.text().as_str(), br.header("content-encoding")),
        ("BROTLI-BYTES", Some("br"))
    );
    assert_eq!(br.header("content-length"), Some("12"));
    assert_eq!(br.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(br.header("vary"), Some("accept-encoding"));

    let gz = get(Some("gzip"));
    assert_eq!(
        (gz.text().as_str(), gz.header("content-encoding")),
        ("GZIP-BYTES!", Some("gzip"))
    );
    assert_eq!(
        get(Some("br;q=0.5, gzip")).header("content-encoding"),
        Some("gzip")
    );
    assert_eq!(
        get(Some("br;q=0, gzip;q=0")).header("content-encoding"),
        None
    );
    assert_eq!(get(Some("identity")).header("content-encoding"), None);
    assert_eq!(get(Some("deflate")).header("content-encoding"), None);
    assert_eq!(get(Some("*")).header("content-encoding"), Some("br"));
    // zstd (Chrome, Firefox): after brotli, before gzip.
    let zst = get(Some("gzip, zstd"));
    assert_eq!(
        (zst.text().as_str(), zst.header("content-encoding")),
        ("ZSTD-BYTES", Some("zstd"))
    );
    assert_eq!(
        get(Some("gzip, deflate, br, zstd")).header("content-encoding"),
        Some("br")
    );
    assert_eq!(
        get(Some("zstd;q=0.5, gzip")).header("content-encoding"),
        Some("gzip")
    );

    // One ETag per representation, and a 304 only for the one the client holds.
    let tags = [
        identity.header("etag"),
        br.header("etag"),
        gz.header("etag"),
        zst.header("etag"),
    ];
    for (i, a) in tags.iter().enumerate() {
        for b in &tags[i + 1..] {
            assert!(a.is_some() && a != b, "{tags:?}");
        }
    }
    let r = request(
        s.addr,
        "GET",
        "/style.css",
        &[
            ("Accept-Encoding", "br"),
            ("If-None-Match", br.header("etag").unwrap()),
        ],
    );
    assert_eq!(r.status, 304);
    assert_eq!(r.header("vary"), Some("accept-encoding"));
    let r = request(
        s.addr,
        "GET",
        "/style.css",
        &[("If-None-Match", br.header("etag").unwrap())],
    );
    assert_eq!(r.status, 200);

    // Sidecars are representations, not pages of their own; files without them send no Vary.
    assert_eq!(s.get("/style.css.br").status, 404);
    assert_eq!(s.get("/style.css.zst").status, 404);
    assert_eq!(s.get("/plain.js").header("vary"), None);
}
