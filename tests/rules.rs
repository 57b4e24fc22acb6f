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
        let site = demo_site();
        write(site.path(), file, text.as_bytes());
        let out = std::process::Command::new(BIN)
            .args(["--root", site.path().to_str().unwrap()])
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
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
        let t = Instant::now();
        while !s
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("keeping the previous rules"))
        {
            assert_eq!(s.get("/old").header("location"), Some("/newer"));
            assert!(t.elapsed() < Duration::from_secs(1), "{watch}: no log line");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(s
            .wait_for_line("keeping the previous rules")
            .contains("_redirects:1"));
        assert_eq!(s.get("/old").header("location"), Some("/newer"));
    }
}
