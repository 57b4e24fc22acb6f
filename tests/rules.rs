//! `_headers` and `_redirects` at the root, as Netlify and Cloudflare Pages read them: the
//! matrices through the real binary, errors at startup, and live changes.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn site_with(headers: &str, redirects: &str) -> tempfile::TempDir {
    let site = demo_site();
    write(site.path(), "_headers", headers.as_bytes());
    write(site.path(), "_redirects", redirects.as_bytes());
    write(site.path(), "posts/hello.html", b"<title>hello</title>");
    write(site.path(), "profile.html", b"<title>profile</title>");
    site
}

const REDIRECTS: &str = "\
# comments and blank lines are fine

/old                 /new
/blog/*              /posts/:splat        302
/u/:id/:tab          /profile?id=:id&tab=:tab 307
/me                  /profile.html        200
/style.css           /plain.js            301
/notes.txt           /data.json           301!
/spa/*               /index.html          200
/chat                https://chat.example.com/ 308
";

#[test]
fn redirects_and_rewrites_match_as_netlify_documents() {
    let site = site_with("", REDIRECTS);
    let s = Server::start(site.path(), &[]);
    let r = s.get("/old?ref=x");
    assert_eq!((r.status, r.header("location")), (301, Some("/new?ref=x")));
    let r = s.get("/blog/2024/hello");
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("/posts/2024/hello"))
    );
    let r = s.get("/u/7/likes");
    assert_eq!(
        (r.status, r.header("location")),
        (307, Some("/profile?id=7&tab=likes"))
    );
    let r = s.get("/chat");
    assert_eq!(
        (r.status, r.header("location")),
        (308, Some("https://chat.example.com/"))
    );
    // 200: a rewrite, the URL stays.
    let r = s.get("/me");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "<title>profile</title>")
    );
    assert_eq!(
        s.get("/spa/settings/a").text(),
        "<!doctype html><title>home</title>"
    );
    // A file at the path wins over its rule (shadowing) unless the rule is forced with `!`.
    assert_eq!(s.get("/style.css").status, 200);
    let r = s.get("/notes.txt");
    assert_eq!((r.status, r.header("location")), (301, Some("/data.json")));
    // No rule: as before.
    assert_eq!(s.get("/nothing/here").status, 404);
    // The rule files themselves are never served.
    assert_eq!(s.get("/_redirects").status, 404);
    assert_eq!(s.get("/_headers").status, 404);
}

#[test]
fn headers_match_patterns_merge_in_order_and_override_the_defaults() {
    let site = site_with(
        "/*\n  X-Frame-Options: DENY\n  X-Team: all\n\
         /docs/*\n  X-Team: docs\n  Cache-Control: public, max-age=600\n\
         /:page.html\n  X-Page: yes\n",
        "",
    );
    let s = Server::start(site.path(), &[]);
    let r = s.get("/docs/page.html");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-team"), Some("docs"), "later blocks win");
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=600"),
        "over no-cache"
    );
    let r = s.get("/style.css");
    assert_eq!(r.header("x-team"), Some("all"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(s.get("/profile.html").header("x-page"), Some("yes"));
    // Probes are the server's own.
    assert_eq!(s.get("/healthz").header("x-frame-options"), None);
}

/// Starts the binary on the demo site with `file` holding `text`; it must exit 2. Its
/// error message.
fn refused_at_start(file: &str, text: &str) -> String {
    let site = demo_site();
    write(site.path(), file, text.as_bytes());
    let out = std::process::Command::new(BIN)
        .args(["--root", site.path().to_str().unwrap()])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{file}: {text}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_error_in_a_rule_file_stops_the_start_naming_file_line_and_problem() {
    for (file, text, want) in [
        ("_redirects", "/a /b\n/c /d 418\n", "_redirects:2: status"),
        (
            "_headers",
            "/a\n  Content-Length: 3\n",
            "_headers:2: content-length",
        ),
    ] {
        let err = refused_at_start(file, text);
        assert!(err.contains(want) && err.contains("--root"), "{err}");
    }
}

#[test]
fn rule_files_are_read_again_when_they_change_keeping_the_last_good_ones() {
    for watch in ["inotify", "poll"] {
        let site = site_with("", "/old /new\n");
        let s = Server::start(site.path(), &["--watch", watch]);
        assert_eq!(s.get("/old").header("location"), Some("/new"));
        // A new rule is followed within a second.
        let t = Instant::now();
        write(site.path(), "_redirects", b"/old /newer 302\n");
        loop {
            let r = s.get("/old");
            if r.header("location") == Some("/newer") {
                assert_eq!(r.status, 302);
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "{watch}: not reloaded"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // A broken edit keeps the last good rules, and says why in the log.
        write(site.path(), "_redirects", b"/old /broken 999\n");
        let line = s.until_logged("keeping the previous rules", Duration::from_secs(1), || {
            assert_eq!(s.get("/old").header("location"), Some("/newer"));
        });
        assert!(line.contains("_redirects:1"), "{watch}: {line}");
        assert_eq!(s.get("/old").header("location"), Some("/newer"));
    }
}

/// `_headers` written as Netlify's and Cloudflare Pages' syntax pages describe it (cases
/// made from their rules): every block that matches adds its headers.
const PLATFORM_HEADERS: &str = "\
# a page of its own
/secure/page
  X-Frame-Options: DENY
  Referrer-Policy: no-referrer
# everything under a folder
/static/*
  X-Robots-Tag: nosnippet
# a kind of file anywhere: the hashed-asset rules sites carry
/*.css
  Cache-Control: public, max-age=31536000, immutable
/assets/*.js
  Cache-Control: public, max-age=31536000, immutable
  X-Asset: js
# a file name in any folder
/*/index.html
  X-Index: yes
# a placeholder segment
/:lang/docs/*
  X-Docs: localized
# a header of several values, one per line
/data/*
  Cache-Control: max-age=0
  Cache-Control: no-cache
  Cache-Control: must-revalidate
";

#[test]
fn headers_patterns_as_the_platforms_write_them_apply() {
    let site = site_with(PLATFORM_HEADERS, "");
    for (path, body) in [
        ("secure/page", "secure"),
        ("static/a/b.txt", "static"),
        ("app.css", "body{}"),
        ("theme/dark.css", "body{}"),
        ("assets/app.js", "1"),
        ("assets/chunks/c1.js", "2"),
        ("assets/app.json", "{}"),
        ("app.js", "3"),
        ("docs/index.html", "<p>docs</p>"),
        ("en/docs/start.html", "<p>start</p>"),
        ("data/feed.json", "[]"),
    ] {
        write(site.path(), path, body.as_bytes());
    }
    let s = Server::start(site.path(), &[]);
    let immutable = Some("public, max-age=31536000, immutable");
    let h = |path: &str, name: &str| s.get(path).header(name).map(str::to_string);
    assert_eq!(
        h("/secure/page", "x-frame-options").as_deref(),
        Some("DENY")
    );
    assert_eq!(
        h("/secure/page", "referrer-policy").as_deref(),
        Some("no-referrer")
    );
    assert_eq!(
        h("/static/a/b.txt", "x-robots-tag").as_deref(),
        Some("nosnippet")
    );
    assert_eq!(h("/app.css", "cache-control").as_deref(), immutable);
    assert_eq!(h("/theme/dark.css", "cache-control").as_deref(), immutable);
    assert_eq!(h("/assets/app.js", "cache-control").as_deref(), immutable);
    assert_eq!(h("/assets/chunks/c1.js", "x-asset").as_deref(), Some("js"));
    assert_eq!(h("/assets/app.json", "x-asset"), None);
    assert_eq!(h("/app.js", "x-asset"), None);
    assert_eq!(h("/app.js", "cache-control").as_deref(), Some("no-cache"));
    assert_eq!(h("/docs/index.html", "x-index").as_deref(), Some("yes"));
    // Matched against the request's path, as on Netlify: `/docs/` is not `/docs/index.html`.
    assert_eq!(h("/docs/", "x-index"), None);
    assert_eq!(
        h("/en/docs/start.html", "x-docs").as_deref(),
        Some("localized")
    );
    assert_eq!(h("/style.css", "cache-control").as_deref(), immutable);
    assert_eq!(h("/index.html", "x-docs"), None);
    assert_eq!(
        h("/data/feed.json", "cache-control").as_deref(),
        Some("max-age=0, no-cache, must-revalidate")
    );
}

/// `_redirects` as the platforms' syntax pages describe it (cases made from their rules).
const PLATFORM_REDIRECTS: &str = "\
/home                   /                        301
/home-temp              /                        302
/query                  /?query=string           301
/trailing               /trailing/               301
/page/                  /page2/#part             301
/news/*                 /blog/:splat             301
/products/:code/:name   /products?code=:code&name=:name 302
/twitch                 https://twitch.example/  302
/app/*                  /index.html              200
";

#[test]
fn redirects_as_the_platforms_write_them_apply() {
    let site = site_with("", PLATFORM_REDIRECTS);
    let s = Server::start(site.path(), &[]);
    let r = |path: &str| {
        let r = s.get(path);
        (r.status, r.header("location").map(str::to_string))
    };
    let to = |status, l: &str| (status, Some(l.to_string()));
    assert_eq!(r("/home"), to(301, "/"));
    assert_eq!(r("/home-temp"), to(302, "/"));
    assert_eq!(r("/query"), to(301, "/?query=string"));
    assert_eq!(r("/trailing"), to(301, "/trailing/"));
    assert_eq!(
        r("/trailing/").0,
        404,
        "no loop: the rule does not send a path to itself"
    );
    assert_eq!(r("/page"), to(301, "/page2/#part"));
    assert_eq!(
        r("/page/?a=1"),
        to(301, "/page2/?a=1#part"),
        "the query before the fragment"
    );
    assert_eq!(r("/news/2024/a"), to(301, "/blog/2024/a"));
    assert_eq!(r("/products/42/mug"), to(302, "/products?code=42&name=mug"));
    assert_eq!(r("/twitch"), to(302, "https://twitch.example/"));
    let spa = s.get("/app/settings/profile");
    assert_eq!(
        (spa.status, spa.text().as_str()),
        (200, "<!doctype html><title>home</title>")
    );
}

#[test]
fn an_unsupported_pattern_is_refused_with_its_line_at_startup_and_on_an_edit() {
    for (file, text, want) in [
        (
            "_headers",
            "/*.css\n  X-A: 1\nhttps://example.com/*\n  X-B: 1\n",
            "_headers:3: \"https://example.com/*\": rules for a whole URL",
        ),
        (
            "_headers",
            "/ok\n  X-A: 1\n/p/:9\n  X-B: 1\n",
            "_headers:3: \"/p/:9\": placeholder",
        ),
        (
            "_redirects",
            "/a /b\n/x/*/y/* /z\n",
            "_redirects:2: \"/x/*/y/*\" has 2 *",
        ),
        (
            "_redirects",
            "/search?q=:q /find/:q\n",
            "_redirects:1: \"/search?q=:q\": a query",
        ),
    ] {
        let err = refused_at_start(file, text);
        assert!(err.contains(want), "{want} in {err}");
    }
    // On a later edit: a warning naming the line, and the last good rules stay.
    let site = site_with("/*.css\n  X-A: 1\n", "");
    let s = Server::start(site.path(), &[]);
    assert_eq!(s.get("/style.css").header("x-a"), Some("1"));
    write(
        site.path(),
        "_headers",
        b"/*.css\n  X-A: 2\nhttps://example.com/*\n  X-B: 1\n",
    );
    let line = s.until_logged("keeping the previous rules", Duration::from_secs(2), || {
        assert_eq!(s.get("/style.css").header("x-a"), Some("1"));
    });
    assert!(line.contains("_headers:3"), "{line}");
    assert_eq!(s.get("/style.css").header("x-a"), Some("1"));
}
