//! `tinyserve check`, the real binary over a fixture site with every class of problem it
//! reports, over a site rule files break, and over the demo site (clean).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::write;

fn check(root: &Path, args: &[&str]) -> (Output, String) {
    let out = Command::new(common::BIN)
        .env_clear()
        .arg("check")
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

/// A gzip member of `data` in one stored (uncompressed) deflate block.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1];
    let len = data.len() as u16;
    out.extend(len.to_le_bytes());
    out.extend((!len).to_le_bytes());
    out.extend(data);
    // The check's own CRC-32, itself tested against the standard check value.
    out.extend(tinyserve::check::sidecar::crc32(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// A zstd frame of `data` (under 256 bytes) in one raw block, with size and checksum.
fn zstd(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x24, data.len() as u8];
    let header = ((data.len() as u32) << 3) | 1;
    out.extend(&header.to_le_bytes()[..3]);
    out.extend(data);
    out.extend((xxhash_rust::xxh64::xxh64(data, 0) as u32).to_le_bytes());
    out
}

fn set_old(path: &Path) {
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
}

#[test]
fn every_class_of_problem_is_reported_with_its_place() {
    let site = tempfile::tempdir().unwrap();
    let root = site.path();
    write(
        root,
        "index.html",
        b"<!doctype html>\n<link rel=stylesheet href=/style.css>\n\
          <script src=\"/assets/app.3f9a2c1e.js\"></script>\n\
          <img src=logo.png srcset=\"logo.png 1x, logo@2x.png 2x\">\n\
          <a href=/about>about</a> <a href=\"/about/\">about</a> <a href=/blog/>blog</a>\n\
          <a href=\"https://example.com/x.png\">out</a> <a href=\"/.env\">env</a>\n\
          <a href=/old>old</a> <a href=/healthz>health</a> <a href=/gone data-proofer-ignore>x</a>\n\
          <a href=\"#top\">top</a> <img src=\"data:image/png;base64,AA\">",
    );
    write(root, "logo.png", b"\x89PNG");
    write(
        root,
        "about/index.html",
        b"<p>about <a href=../index.html>home</a></p>",
    );
    write(
        root,
        "style.css",
        b"@import \"theme.css\";\nbody { background: url(/img/bg.png) }\n",
    );
    write(root, "theme.css", b"a { color: red }");
    // Sidecars: a stale gzip, a fresh zstd, a broken zstd, an old brotli, a larger gzip.
    let app = b"console.log('new version of the app, a little longer than before');";
    write(root, "app.js", app);
    write(root, "app.js.gz", &gzip(b"console.log('old version');"));
    write(root, "app.js.zst", &zstd(app));
    write(root, "theme.css.zst", b"\x28\xb5\x2f\xfd\x24");
    write(root, "app.js.br", b"(brotli bytes)");
    set_old(&root.join("app.js.br"));
    write(root, "logo.png.gz", &gzip(b"\x89PNG"));
    // Never served, or served oddly.
    write(root, ".env", b"SECRET=1");
    write(root, "LICENSE", b"MIT");
    let elsewhere = tempfile::tempdir().unwrap();
    write(elsewhere.path(), "secret.txt", b"not for the web");
    std::os::unix::fs::symlink(
        elsewhere.path().join("secret.txt"),
        root.join("outside.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink("app.js", root.join("inside.js")).unwrap();
    use std::os::unix::ffi::OsStrExt;
    std::fs::write(root.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")), b"x").unwrap();
    let fifo = std::ffi::CString::new(root.join("pipe").as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    write(
        root,
        "_redirects",
        b"/old /index.html 301\n/typo /nwe 301\n/ext https://example.com/ 302\n",
    );
    write(
        root,
        "_headers",
        b"/assets/*\n  Cache-Control: public, max-age=60\n",
    );

    let (out, text) = check(root, &["--fallback", "app.html"]);
    println!("{text}");
    assert_eq!(out.status.code(), Some(1), "errors exit 1");
    let expected_errors = [
        "error: index.html:3: /assets/app.3f9a2c1e.js is not in the site",
        "error: index.html:4: logo@2x.png is not in the site",
        "error: index.html:6: /.env is a path the server never serves",
        "error: style.css:2: /img/bg.png is not in the site",
        "error: app.js.gz: holds other bytes than app.js",
        "error: theme.css.zst: not a valid zstd stream",
        "error: _redirects:2: /nwe is not in the site",
        "error: the fallback \"app.html\" (--fallback) is not a servable file",
    ];
    for e in expected_errors {
        assert!(text.contains(e), "missing {e:?}");
    }
    // A navigation to a missing folder is an error too, without a fallback (below).
    assert!(
        !text.contains("/blog/ is not in the site"),
        "the fallback answers navigations"
    );
    let expected_warnings = [
        "warning: app.js.br: older than app.js",
        "warning: logo.png.gz: ",
        "warning: .env: never served (a dotfile)",
        "warning: outside.txt: a symlink to ",
        "warning: app.js.zst: ",
        "warning: caf\u{fffd}.txt: the name is not UTF-8",
        "warning: pipe: not a regular file",
        "warning: LICENSE: served as application/octet-stream",
    ];
    for w in expected_warnings {
        assert!(text.contains(w), "missing {w:?}");
    }
    let errors = text.lines().filter(|l| l.starts_with("error: ")).count();
    assert_eq!(errors, expected_errors.len(), "nothing else is an error");
    for fine in [
        "/about",
        "/old",
        "/healthz",
        "/gone",
        "example.com",
        "inside.js",
    ] {
        assert!(
            !text
                .lines()
                .any(|l| l.contains(fine) && !l.starts_with("  ")),
            "{fine} is fine"
        );
    }
    // The summary: counts and which files get which Cache-Control.
    assert!(text.contains("sidecars: 1 .br, 2 .zst, 2 .gz; 2 match their source's checksum and length, 1 compared by date"), "{text}");
    assert!(text.contains("Cache-Control no-cache: "));
    assert!(text.contains("fallback: app.html"));
    assert!(text.ends_with(&format!("{} errors, 8 warnings\n", expected_errors.len())));

    // Without a fallback, a link to a missing folder is an error like any other.
    let (_, text) = check(root, &[]);
    assert!(
        text.contains("error: index.html:5: /blog/ is not in the site"),
        "{text}"
    );
}

#[test]
fn rule_file_errors_name_file_and_line() {
    let site = tempfile::tempdir().unwrap();
    write(site.path(), "index.html", b"<p>hi</p>");
    write(
        site.path(),
        "_headers",
        b"/*\n  X-Frame-Options: DENY\n  Content-Length: 3\n",
    );
    let (out, text) = check(site.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("error: _headers:3: content-length is set by the server"),
        "{text}"
    );
}

#[test]
fn the_demo_site_is_clean_and_the_summary_names_immutable_files() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let (out, text) = check(&demo, &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.ends_with("0 errors, 0 warnings\n"), "{text}");

    let site = tempfile::tempdir().unwrap();
    write(
        site.path(),
        "index.html",
        b"<script src=/app.3f9a2c1e.js></script><img src=/a/b.png>",
    );
    write(site.path(), "app.3f9a2c1e.js", b"1");
    write(site.path(), "a/b.png", b"png");
    let (out, text) = check(site.path(), &["--immutable", "fingerprint,/a/"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "Cache-Control public, max-age=31536000, immutable: 2 files (/a/b.png, /app.3f9a2c1e.js)"
        ),
        "{text}"
    );
    assert!(
        text.contains("Cache-Control no-cache: 1 files (/index.html)"),
        "{text}"
    );
}

#[test]
fn options_that_do_not_apply_are_refused_and_a_missing_root_exits_2() {
    let site = tempfile::tempdir().unwrap();
    let (out, _) = check(site.path(), &["--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen does not apply"));
    let (out, _) = check(Path::new("/no/such/site"), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/site"));
}

#[test]
fn with_pretty_urls_a_link_to_a_page_without_html_is_not_broken() {
    let site = tempfile::tempdir().unwrap();
    common::write(site.path(), "index.html", b"<a href=\"/about\">about</a>");
    common::write(site.path(), "about.html", b"<title>about</title>");
    let (out, text) = check(site.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("/about is not in the site"), "{text}");
    let (out, text) = check(site.path(), &["--pretty-urls", "on"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
}
