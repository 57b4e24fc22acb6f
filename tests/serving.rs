//! Serving files: types, indexes, redirects, methods, errors, fallback, what is never served.

mod common;

use common::*;
use std::os::unix::fs::symlink;

#[test]
fn content_types_browsers_require() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    for (path, ty) in [
        ("/", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/plain.js", "text/javascript; charset=utf-8"),
        ("/mod.mjs", "text/javascript; charset=utf-8"),
        ("/m.wasm", "application/wasm"),
        ("/logo.svg", "image/svg+xml"),
        ("/site.webmanifest", "application/manifest+json"),
        ("/font.woff2", "font/woff2"),
        ("/data.json", "application/json"),
        ("/notes.txt", "text/plain; charset=utf-8"),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ty), "{path}");
    }
}

#[test]
fn directories_serve_index_and_redirect_permanently() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    assert_eq!(s.get("/").text(), "<!doctype html><title>home</title>");
    assert_eq!(s.get("/docs/").text(), "<title>docs</title>");
    assert_eq!(
        s.get("/index.html").text(),
        "<!doctype html><title>home</title>"
    );
    let r = s.get("/docs?x=1");
    assert!(r.status == 301 || r.status == 308, "{}", r.status);
    assert_eq!(r.header("location"), Some("/docs/?x=1"));
    // A directory with no index.html is not listed.
    assert_eq!(s.get("/empty/").status, 404);
    assert_eq!(s.get("/empty").status, 404);
    // Percent-encoded names work.
    assert_eq!(s.get("/caf%C3%A9.html").text(), "<title>cafe</title>");
}

#[test]
fn head_has_get_headers_and_no_body() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    let get = s.get("/style.css");
    let head = request(s.addr, "HEAD", "/style.css", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for h in [
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "cache-control",
        "accept-ranges",
    ] {
        assert_eq!(head.header(h), get.header(h), "{h}");
    }
    assert_eq!(
        get.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );
}

#[test]
fn other_methods_get_405_with_allow() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"] {
        for path in ["/", "/style.css", "/missing", "/healthz"] {
            let r = request(s.addr, method, path, &[("Content-Length", "0")]);
            assert_eq!(r.status, 405, "{method} {path}");
            assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {path}");
            assert!(!r.body.is_empty());
        }
    }
}

#[test]
fn not_found_uses_404_html_when_present() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    let r = s.get("/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    drop(s);

    write(site.path(), "404.html", b"<h1>custom not found</h1>");
    let s = Server::start(site.path(), &[]);
    for path in ["/nope", "/docs/nope.html", "/.env"] {
        let r = s.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.text(), "<h1>custom not found</h1>", "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    }
}

#[test]
fn spa_fallback_answers_unknown_paths_with_200() {
    let site = demo_site();
    let s = Server::start(site.path(), &["--fallback", "index.html"]);
    let r = s.get("/app/route/42");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "<!doctype html><title>home</title>");
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    // Real files still win, and hidden or escaping paths still get 404.
    assert_eq!(
        s.get("/style.css").text(),
        "body { color: black; } /* identity */"
    );
    assert_eq!(s.get("/.env").status, 404);
    assert_eq!(s.get("/../etc/passwd").status, 404);
}

#[test]
fn spa_fallback_answers_navigations_only_never_a_missing_asset() {
    let site = demo_site();
    let s = Server::start(
        site.path(),
        &[
            "--fallback",
            "index.html",
            "--immutable",
            "fingerprint,/static/",
        ],
    );
    let home = "<!doctype html><title>home</title>";
    // Navigations: no extension, or a browser asking for HTML.
    assert_eq!(s.get("/settings/profile").text(), home);
    let r = request(
        s.addr,
        "GET",
        "/old-page.html",
        &[("Accept", "text/html,*/*;q=0.8")],
    );
    assert_eq!((r.status, r.text().as_str()), (200, home));
    // Not a navigation: a missing script or image gets the 404, not HTML with 200.
    assert_eq!(s.get("/missing.js").status, 404);
    // The previous release's fingerprinted bundle, even asked for as HTML: 404, not stored.
    for accept in ["*/*", "text/html"] {
        let r = request(s.addr, "GET", "/app.0123abcd9.js", &[("Accept", accept)]);
        assert_eq!(r.status, 404, "{accept}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{accept}");
    }
    // An --immutable prefix likewise, extension or not.
    let r = s.get("/static/chunk");
    assert_eq!(
        (r.status, r.header("cache-control")),
        (404, Some("no-store"))
    );
}

#[test]
fn nothing_outside_the_root_and_nothing_hidden() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", b"outside secret");
    let site = demo_site();
    symlink(
        outside.path().join("secret.txt"),
        site.path().join("leak.txt"),
    )
    .unwrap();
    symlink(outside.path(), site.path().join("leakdir")).unwrap();
    symlink(site.path().join("notes.txt"), site.path().join("alias.txt")).unwrap();
    let s = Server::start(site.path(), &[]);
    for path in [
        "/leak.txt",
        "/leakdir/secret.txt",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/docs/..%2fstyle.css",
        "/docs%2fpage.html",
        "/docs%5cpage.html",
        "/docs\\page.html",
        "/notes.txt%00",
        "/notes.txt%00.html",
        "/.env",
        "/.git/config",
        "/.git/",
        "/docs/.hidden.html",
        "/%2eenv",
        "//etc/passwd",
        "/docs/./page.html",
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("secret"), "{path}");
    }
    // A symlink that stays inside the root is fine, and so is RFC 8615's .well-known.
    assert_eq!(
        s.get("/alias.txt").text(),
        "0123456789abcdefghijklmnopqrstuvwxyz"
    );
    assert_eq!(s.get("/.well-known/security.txt").status, 200);
    // Malformed percent-encoding is the client's error.
    assert_eq!(s.get("/bad%zzpath").status, 400);
}

#[test]
fn every_response_has_nosniff_and_configured_headers() {
    let site = demo_site();
    let s = Server::start_env(
        site.path(),
        &["--header", "Content-Security-Policy: default-src 'self'"],
        &[("TINYSERVE_HEADERS", "X-Ignored: because the flag wins")],
    );
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/style.css"),
        ("GET", "/nope"),
        ("POST", "/"),
        ("GET", "/healthz"),
        ("GET", "/docs"),
    ] {
        let r = request(s.addr, method, path, &[("Content-Length", "0")]);
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{method} {path}"
        );
        assert_eq!(
            r.header("content-security-policy"),
            Some("default-src 'self'"),
            "{method} {path}"
        );
        assert_eq!(r.header("x-ignored"), None);
    }
    drop(s);
    let s = Server::start_env(
        site.path(),
        &[],
        &[(
            "TINYSERVE_HEADERS",
            "Strict-Transport-Security: max-age=63072000\nReferrer-Policy: no-referrer",
        )],
    );
    let r = s.get("/");
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=63072000")
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
}

#[test]
fn health_and_readiness() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    let r = s.get("/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = s.get("/readyz");
    assert_eq!((r.status, r.text().as_str()), (200, "ready"));
    let r = request(s.addr, "HEAD", "/readyz", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

#[test]
fn large_files_stream_from_disk_byte_exact() {
    let site = demo_site();
    let big = pattern(3 << 20, 7);
    write(site.path(), "big.bin", &big);
    // Over --cache-file-max (8KiB), so sent from disk; a tiny memory budget too.
    let s = Server::start(site.path(), &["--cache-max", "1KiB"]);
    let r = s.get("/big.bin");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), big.len());
    assert!(r.body == big, "streamed body differs");
    let r = request(
        s.addr,
        "GET",
        "/big.bin",
        &[("Range", "bytes=1000000-1000099")],
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, big[1_000_000..1_000_100]);
    // Files over the memory budget still work.
    let r = s.get("/style.css");
    assert_eq!(r.text(), "body { color: black; } /* identity */");
}

#[test]
fn dual_stack_listen_serves_ipv4_and_ipv6_clients() {
    let site = demo_site();
    // The default listen is [::]:8080; port 0 here.
    let s = Server::start(site.path(), &["--listen", "[::]:0"]);
    assert!(s.addr.is_ipv6(), "{}", s.addr);
    for ip in ["127.0.0.1", "::1"] {
        let addr = std::net::SocketAddr::new(ip.parse().unwrap(), s.addr.port());
        let r = request(addr, "GET", "/style.css", &[]);
        assert_eq!(r.status, 200, "{ip}");
        assert_eq!(r.text(), "body { color: black; } /* identity */");
    }
}

#[test]
fn host_must_be_present_single_and_valid_on_http_1_1() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    let status = |raw: &str| {
        parse_response(&send_raw(s.addr, raw.as_bytes()))
            .unwrap()
            .status
    };
    // RFC 9112 §3.2: missing (HTTP/1.1), repeated or invalid Host: 400.
    assert_eq!(
        status("GET /style.css HTTP/1.1\r\nConnection: close\r\n\r\n"),
        400
    );
    assert_eq!(
        status("GET /style.css HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"),
        400
    );
    assert_eq!(
        status("GET /style.css HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n"),
        400
    );
    // HTTP/1.0 without Host stays allowed (simple health checkers), a valid Host is served.
    assert_eq!(status("GET /style.css HTTP/1.0\r\n\r\n"), 200);
    assert_eq!(
        status("GET /style.css HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n"),
        200
    );
}

#[test]
fn every_file_type_a_site_ships_gets_its_content_type() {
    let site = tempfile::tempdir().unwrap();
    let cases = [
        ("page.htm", "text/html; charset=utf-8"),
        ("notes.md", "text/markdown; charset=utf-8"),
        ("data.csv", "text/csv; charset=utf-8"),
        ("data.tsv", "text/tab-separated-values; charset=utf-8"),
        ("cal.ics", "text/calendar; charset=utf-8"),
        ("card.vcf", "text/vcard; charset=utf-8"),
        ("subs.vtt", "text/vtt; charset=utf-8"),
        ("lib.cjs", "text/javascript; charset=utf-8"),
        ("feed.rss", "application/rss+xml"),
        ("feed.atom", "application/atom+xml"),
        ("conf.yaml", "application/yaml"),
        ("conf.yml", "application/yaml"),
        ("conf.toml", "application/toml"),
        ("map.geojson", "application/geo+json"),
        ("doc.xhtml", "application/xhtml+xml"),
        ("subs.srt", "application/x-subrip"),
        ("pic.apng", "image/apng"),
        ("pic.avif", "image/avif"),
        ("pic.jxl", "image/jxl"),
        ("pic.heic", "image/heic"),
        ("pic.tiff", "image/tiff"),
        ("pic.bmp", "image/bmp"),
        ("font.otf", "font/otf"),
        ("font.ttf", "font/ttf"),
        ("font.eot", "application/vnd.ms-fontobject"),
        ("song.m4a", "audio/mp4"),
        ("song.aac", "audio/aac"),
        ("song.opus", "audio/ogg"),
        ("song.flac", "audio/flac"),
        ("song.weba", "audio/webm"),
        ("clip.mov", "video/quicktime"),
        ("clip.mkv", "video/x-matroska"),
        ("clip.m4v", "video/mp4"),
        ("clip.ogv", "video/ogg"),
        ("stream.mpd", "application/dash+xml"),
        ("stream.m3u8", "application/vnd.apple.mpegurl"),
        ("model.glb", "model/gltf-binary"),
        ("model.gltf", "model/gltf+json"),
        ("book.epub", "application/epub+zip"),
        (
            "report.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            "sheet.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "deck.pptx",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        ("text.odt", "application/vnd.oasis.opendocument.text"),
        ("pack.7z", "application/x-7z-compressed"),
        ("pack.xz", "application/x-xz"),
        ("pack.zst", "application/zstd"),
        ("pack.tgz", "application/gzip"),
        ("app.apk", "application/vnd.android.package-archive"),
        ("UPPER.PNG", "image/png"),
        ("no-extension", "application/octet-stream"),
    ];
    for (name, _) in cases {
        write(site.path(), name, b"x");
    }
    let s = Server::start(site.path(), &[]);
    for (name, ty) in cases {
        let r = s.get(&format!("/{name}"));
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("content-type"), Some(ty), "{name}");
    }
}

#[test]
fn cors_simple_and_preflight_requests_as_the_fetch_standard_says() {
    let site = demo_site();
    let s = Server::start(
        site.path(),
        &[
            "--cors-origins",
            "https://app.example,https://other.example",
        ],
    );
    let ok = "https://app.example";
    // A simple request from an allowed origin: allowed, validators exposed, varies by Origin.
    let r = request(s.addr, "GET", "/data.json", &[("Origin", ok)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(ok));
    assert!(r
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase()
        .contains("etag"));
    assert!(r
        .headers
        .iter()
        .any(|(n, v)| n == "vary" && v.to_ascii_lowercase().contains("origin")));
    // From another origin: served (a server cannot stop a browser from asking), but with
    // no permission for the page to read it.
    let r = request(
        s.addr,
        "GET",
        "/data.json",
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // A preflight for a fetch with a custom header: 200 with the permissions (tower-http's
    // CorsLayer answers it; no credentials needed).
    let preflight = |origin: &str, method: &str| {
        request(
            s.addr,
            "OPTIONS",
            "/data.json",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", method),
                ("Access-Control-Request-Headers", "x-requested-with, range"),
                ("Content-Length", "0"),
            ],
        )
    };
    let r = preflight(ok, "GET");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(ok));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET,HEAD"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("x-requested-with, range")
    );
    assert_eq!(r.header("access-control-max-age"), Some("86400"));
    // Refused: another origin gets no permission, a method a static server does not take
    // is not among those allowed, so the browser stops there.
    let r = preflight("https://evil.example", "GET");
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = preflight(ok, "PUT");
    assert!(!r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("PUT"));
    // Files cannot be posted to either way.
    let r = request(
        s.addr,
        "POST",
        "/data.json",
        &[("Origin", ok), ("Content-Length", "0")],
    );
    assert_eq!(r.status, 405);
    drop(s);

    // `*`: any origin, no Vary.
    let s = Server::start(site.path(), &["--cors-origins", "*"]);
    let r = request(
        s.addr,
        "GET",
        "/data.json",
        &[("Origin", "https://x.example")],
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(!r
        .headers
        .iter()
        .any(|(n, v)| n == "vary" && v.to_ascii_lowercase().contains("origin")));
    // Off by default: no CORS headers, OPTIONS 405.
    let s = Server::start(site.path(), &[]);
    let r = request(s.addr, "GET", "/data.json", &[("Origin", ok)]);
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[test]
fn basic_auth_guards_every_path_but_the_probes() {
    let site = demo_site();
    // What `htpasswd -B` writes for alice:s3cret (cost 4, so the test is quick).
    let hash = bcrypt::hash_with_salt("s3cret", 4, [7u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, format!("# previews\nalice:{hash}\n")).unwrap();
    let mut s = Server::start(
        site.path(),
        &[
            "--basic-auth-file",
            file.to_str().unwrap(),
            "--log-format",
            "json",
        ],
    );
    let auth = |v: &str| request(s.addr, "GET", "/style.css", &[("Authorization", v)]);
    // alice:s3cret, alice:wrong, bob:s3cret
    let (good, wrong, nobody) = (
        "Basic YWxpY2U6czNjcmV0",
        "Basic YWxpY2U6d3Jvbmc=",
        "Basic Ym9iOnMzY3JldA==",
    );
    let r = s.get("/style.css");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"tinyserve\", charset=\"UTF-8\"")
    );
    assert_eq!(auth(wrong).status, 401);
    assert_eq!(auth(wrong).status, 401, "a wrong password stays wrong");
    assert_eq!(auth(nobody).status, 401);
    assert_eq!(auth("Bearer abc").status, 401);
    let r = auth(good);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "body { color: black; } /* identity */");
    assert_eq!(auth(good).status, 200, "remembered");
    // Probes stay open: kubelets and load balancers have no credentials.
    assert_eq!(s.get("/healthz").status, 200);
    assert_eq!(s.get("/readyz").status, 200);
    // Credentials never reach the log.
    s.terminate();
    s.wait_exit(std::time::Duration::from_secs(5));
    let log = s.lines.lock().unwrap().join("\n");
    assert!(!log.contains("YWxpY2U") && !log.contains("s3cret"), "{log}");
}

#[test]
fn pretty_urls_serve_the_html_file_and_redirect_to_the_one_url() {
    let site = demo_site();
    write(site.path(), "about.html", b"<title>about</title>");
    write(site.path(), "blog/first post.html", b"<title>post</title>");
    write(site.path(), "docs/index.html", b"<title>docs</title>");
    write(site.path(), "team.html", b"<title>team page</title>");
    write(
        site.path(),
        "team/index.html",
        b"<title>team folder</title>",
    );
    // Off (the default): only the names on disk.
    let s = Server::start(site.path(), &[]);
    assert_eq!(s.get("/about").status, 404);
    assert_eq!(s.get("/about.html").status, 200);
    drop(s);

    let s = Server::start(site.path(), &["--pretty-urls", "on"]);
    let page = s.get("/about");
    assert_eq!(
        (page.status, page.text().as_str()),
        (200, "<title>about</title>")
    );
    assert!(page.header("etag").is_some());
    assert_eq!(request(s.addr, "HEAD", "/about", &[]).status, 200);
    let moved = |path: &str| {
        let r = s.get(path);
        (r.status, r.header("location").map(str::to_string))
    };
    let to = |l: &str| (308, Some(l.to_string()));
    assert_eq!(moved("/about.html?ref=nav"), to("/about?ref=nav"));
    assert_eq!(moved("/index.html"), to("/"));
    assert_eq!(moved("/docs/index.html"), to("/docs/"));
    assert_eq!(s.get("/docs/").text(), "<title>docs</title>");
    // Encoded names stay encoded on the way out.
    assert_eq!(moved("/blog/first%20post.html"), to("/blog/first%20post"));
    assert_eq!(s.get("/blog/first%20post").text(), "<title>post</title>");
    // A folder wins `/team`; its `.html` then keeps its own URL rather than loop.
    assert_eq!(moved("/team"), to("/team/"));
    assert_eq!(s.get("/team.html").text(), "<title>team page</title>");
    // Nothing else changes: a missing page is a 404, an asset is served as it is.
    assert_eq!(s.get("/nothing").status, 404);
    assert_eq!(s.get("/style.css").status, 200);
}

#[test]
fn a_404_gets_the_nearest_404_html_up_the_tree() {
    let site = demo_site();
    write(site.path(), "404.html", b"<p>root 404</p>");
    write(site.path(), "docs/404.html", b"<p>docs 404</p>");
    write(site.path(), "docs/guide/page.html", b"<p>page</p>");
    let s = Server::start(site.path(), &[]);
    for (path, body) in [
        ("/docs/guide/missing.html", "<p>docs 404</p>"),
        ("/docs/missing", "<p>docs 404</p>"),
        ("/docs/a/b/c/", "<p>docs 404</p>"),
        ("/missing", "<p>root 404</p>"),
        ("/other/deep/missing.css", "<p>root 404</p>"),
        ("/..%2f..%2fetc/passwd", "<p>root 404</p>"),
    ] {
        let r = s.get(path);
        assert_eq!((r.status, r.text().as_str()), (404, body), "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with("text/html"),
            "{path}"
        );
    }
    // A nested 404.html is itself a page of its folder.
    assert_eq!(s.get("/docs/404.html").status, 200);
}

#[test]
fn a_maintenance_file_takes_the_site_down_and_back_up_but_not_the_probes() {
    let site = demo_site();
    let s = Server::start(site.path(), &["--maintenance", "maintenance.html"]);
    assert_eq!(s.get("/").status, 200, "no file, no maintenance");
    write(site.path(), "maintenance.html", b"<p>back soon</p>");
    until(std::time::Duration::from_secs(2), "down", || {
        s.get("/").status == 503
    });
    for path in ["/", "/style.css", "/missing", "/maintenance.html"] {
        let r = s.get(path);
        assert_eq!(
            (r.status, r.text().as_str()),
            (503, "<p>back soon</p>"),
            "{path}"
        );
        assert_eq!(r.header("retry-after"), Some("120"), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
    assert_eq!(s.get("/healthz").status, 200);
    assert_eq!(s.get("/readyz").status, 200);
    std::fs::remove_file(site.path().join("maintenance.html")).unwrap();
    until(std::time::Duration::from_secs(2), "up again", || {
        s.get("/").status == 200
    });
    // A name that cannot be under the root is refused at startup.
    let out = std::process::Command::new(BIN)
        .args([
            "--root",
            site.path().to_str().unwrap(),
            "--maintenance",
            "../x.html",
        ])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--maintenance"));
}
