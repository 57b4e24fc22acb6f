//! What `_headers`, `_redirects` and basic auth must never do, tried as an attacker or a
//! careless site owner would, through the real binary: publish a password, cache an error
//! for a year, tell which users exist, let guesses lock others out, redirect off-site, or
//! serve the rule files under another name.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_netlify_basic_auth_line_is_refused_and_never_sent() {
    // At startup: exit 2, naming the file, the line and what to use instead.
    let site = demo_site();
    write(
        site.path(),
        "_headers",
        b"/*\n  X-Frame-Options: DENY\n  Basic-Auth: alice:secret123\n",
    );
    let out = Command::new(BIN)
        .env_clear()
        .args(["--root", site.path().to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("_headers:3") && err.contains("Basic-Auth"),
        "{err}"
    );
    assert!(err.contains("--basic-auth-file"), "{err}");
    assert!(
        !err.contains("secret123"),
        "the password is not repeated: {err}"
    );

    // On a later edit: a warning, and the last good rules stay.
    write(site.path(), "_headers", b"/*\n  X-Frame-Options: DENY\n");
    let s = Server::start(site.path(), &[]);
    assert_eq!(s.get("/").header("x-frame-options"), Some("DENY"));
    write(
        site.path(),
        "_headers",
        b"/*\n  X-Frame-Options: SAMEORIGIN\n  Basic-Auth: alice:secret123\n",
    );
    // Rules are read again by the first request after a change.
    let warning = s.until_logged("keeping the previous rules", Duration::from_secs(5), || {
        assert_eq!(s.get("/").header("x-frame-options"), Some("DENY"));
    });
    assert!(
        warning.contains("_headers:3") && warning.contains("--basic-auth-file"),
        "{warning}"
    );
    for path in ["/", "/style.css", "/missing"] {
        let r = s.get(path);
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("basic-auth"), None, "{path}");
        assert!(
            !r.headers.iter().any(|(_, v)| v.contains("secret123")),
            "{path}: {:?}",
            r.headers
        );
    }
}

#[test]
fn caching_headers_from_rules_never_land_on_an_error() {
    let site = demo_site();
    write(site.path(), "assets/site.css", b"body{}");
    write(
        site.path(),
        "_headers",
        b"/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n  \
          Expires: Thu, 31 Dec 2037 23:55:55 GMT\n  CDN-Cache-Control: max-age=31536000\n  \
          X-Team: assets\n",
    );
    let s = Server::start(
        site.path(),
        &["--header", "Cache-Control: public, max-age=600"],
    );
    // The file itself: the rule's caching.
    let r = s.get("/assets/site.css");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    // A missing fingerprinted asset during a rollout: the server's no-store, nothing a
    // cache would keep; the rule's other headers still apply.
    let r = s.get("/assets/app.3f9a2c1e.js");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("expires"), None);
    assert_eq!(r.header("cdn-cache-control"), None);
    assert_eq!(r.header("x-team"), Some("assets"));
    // Any other error under the rule: no caching header from rules or --header.
    for (method, path) in [("GET", "/assets/gone.css"), ("POST", "/assets/site.css")] {
        let r = request(s.addr, method, path, &[("Content-Length", "0")]);
        assert!(r.status >= 400, "{method} {path}: {}", r.status);
        let cc = r.header("cache-control").unwrap_or("");
        assert!(
            !cc.contains("max-age") && r.header("expires").is_none(),
            "{method} {path}: {:?}",
            r.headers
        );
    }
    // 404.html too.
    write(site.path(), "404.html", b"<title>not here</title>");
    let s = Server::start(site.path(), &["--watch", "off"]);
    let r = s.get("/assets/gone.css");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "<title>not here</title>")
    );
    assert_eq!(r.header("cache-control"), Some("no-cache"));
}

/// An htpasswd file with alice:s3cret and bob:hunter2 hashed at `cost`.
fn htpasswd(cost: u32) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for (user, password) in [("alice", "s3cret"), ("bob", "hunter2")] {
        let hash = bcrypt::hash_with_salt(password, cost, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        writeln!(f, "{user}:{hash}").unwrap();
    }
    f
}

fn basic(user_pass: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

/// One GET of `/` with `authorization`, from `source` (a loopback address of its own, so
/// the server sees different clients); its status and how long it took.
fn get_from(source: IpAddr, addr: SocketAddr, authorization: &str) -> (u16, Duration) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
    let start = Instant::now();
    socket.connect(&addr.into()).unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: {authorization}\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let took = start.elapsed();
    (parse_response(&out).map_or(0, |r| r.status), took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[test]
fn an_unknown_user_costs_what_a_wrong_password_does() {
    let file = htpasswd(8);
    let site = demo_site();
    let s = Server::start(
        site.path(),
        &["--basic-auth-file", file.path().to_str().unwrap()],
    );
    // Fresh credentials every time, so no remembered verdict answers.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..9 {
        let (status, took) = get_from(LOOPBACK, s.addr, &basic(&format!("alice:wrong{i}")));
        assert_eq!(status, 401);
        known.push(took);
        let (status, took) = get_from(LOOPBACK, s.addr, &basic(&format!("mallory{i}:wrong{i}")));
        assert_eq!(status, 401);
        unknown.push(took);
    }
    let (known, unknown) = (median(known), median(unknown));
    eprintln!("wrong password for alice: {known:?}, unknown user: {unknown:?}");
    assert!(
        unknown * 2 >= known && unknown <= known * 2,
        "alice {known:?}, unknown {unknown:?}: which users exist shows in the timing"
    );
}

#[test]
fn password_spraying_neither_locks_out_nor_queues_other_clients() {
    let file = htpasswd(8);
    let site = demo_site();
    let s = Server::start(
        site.path(),
        &["--basic-auth-file", file.path().to_str().unwrap()],
    );
    let addr = s.addr;
    let good = basic("alice:s3cret");
    // alice logs in from her own address; one login alone takes one bcrypt.
    let alice: IpAddr = "127.0.0.2".parse().unwrap();
    let (status, alone) = get_from(alice, addr, &good);
    assert_eq!(status, 200);

    // A client sprays guesses over 60 connections at once.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sprayers: Vec<_> = (0..60)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let guess = basic(&format!("alice:guess-{t}-{i}"));
                    let status = get_from(LOOPBACK, addr, &guess).0;
                    statuses.push(status);
                    if status == 429 {
                        // As its Retry-After asks (less sharply): the test is about the
                        // queue, not about this machine's two cores spent on refusals.
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    i += 1;
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // alice, logged in, is answered at once; bob's first login (another client) waits
    // behind a few guesses at most, not behind the whole spray.
    let (status, logged_in) = get_from(alice, addr, &good);
    assert_eq!(status, 200);
    let bob: IpAddr = "127.0.0.3".parse().unwrap();
    let (status, first_login) = get_from(bob, addr, &basic("bob:hunter2"));
    assert_eq!(status, 200);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses: Vec<u16> = sprayers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let busy = statuses.iter().filter(|&&s| s == 429).count();
    eprintln!(
        "one login alone {alone:?}; during the spray: logged in {logged_in:?}, a first \
         login {first_login:?}; {} guesses, {busy} of them 429",
        statuses.len()
    );
    assert!(
        statuses.iter().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(busy > 0, "the spray was never bounded");
    assert!(logged_in < alone, "a logged-in user waited: {logged_in:?}");
    assert!(
        first_login < alone * 12,
        "a first login waited {first_login:?} behind the spray (one alone: {alone:?})"
    );
}

#[test]
fn splats_go_back_encoded_and_never_off_site() {
    let site = demo_site();
    write(
        site.path(),
        "_redirects",
        b"/go/*      /target/:splat   302\n\
          /u/:id     /profile?id=:id  302\n\
          /*         /:splat          301\n",
    );
    let s = Server::start(site.path(), &[]);
    let location = |path: &str| {
        let r = s.get(path);
        assert!((300..400).contains(&r.status), "{path}: {}", r.status);
        r.header("location").unwrap().to_string()
    };
    assert_eq!(location("/go/a%3Fb%23c"), "/target/a%3Fb%23c");
    assert_eq!(location("/go/a%20b/c"), "/target/a%20b/c");
    assert_eq!(location("/go/caf%C3%A9"), "/target/caf%C3%A9");
    assert_eq!(location("/go/100%25"), "/target/100%25");
    let r = s.get("/go/a%0d%0aSet-Cookie:%20x=1");
    assert_eq!(
        r.header("location"),
        Some("/target/a%0D%0ASet-Cookie:%20x%3D1")
    );
    assert_eq!(r.header("set-cookie"), None);
    assert_eq!(location("/u/7%26admin%3D1"), "/profile?id=7%26admin%3D1");
    // An encoded slash is never a path separator: no redirect at all.
    assert_eq!(s.get("/go/a%2Fb").status, 404);
    // Nothing sends the browser to another host (the serve-static / echo class).
    for target in [
        "//evil.example/%2e%2e",
        "//evil.example/",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/\\evil.example",
        "/%09/evil.example",
        "/go/%2F%2Fevil.example",
    ] {
        let raw = send_raw(
            s.addr,
            format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let r = parse_response(&raw).unwrap();
        if let Some(l) = r.header("location") {
            assert!(
                l.starts_with('/') && !l[1..].starts_with(['/', '\\']),
                "{target} -> {} {l}",
                r.status
            );
        }
    }
}

#[test]
fn the_rule_files_are_hidden_under_any_name_that_opens_them() {
    let site = demo_site();
    let root = site.path();
    write(root, "_headers", b"/*\n  X-Team: all\n");
    write(root, "_redirects", b"/old /new\n");
    // What a case-insensitive mount (Docker Desktop's shares) hands out for another
    // spelling is the same file: hard links are exactly that, on any file system.
    for (name, target) in [
        ("_Headers", "_headers"),
        ("_HEADERS", "_headers"),
        ("_headerſ", "_headers"),
        ("_Redirects", "_redirects"),
        ("docs/copy.txt", "_headers"),
    ] {
        std::fs::hard_link(root.join(target), root.join(name)).unwrap();
    }
    std::os::unix::fs::symlink("_redirects", root.join("rules.txt")).unwrap();
    std::fs::create_dir(root.join("r")).unwrap();
    std::os::unix::fs::symlink("../_headers", root.join("r/index.html")).unwrap();
    let s = Server::start(root, &[]);
    for path in [
        "/_headers",
        "/_redirects",
        "/_Headers",
        "/_HEADERS",
        "/_header%C5%BF",
        "/_Redirects",
        "/docs/copy.txt",
        "/rules.txt",
        "/r/",
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("X-Team"), "{path}");
    }
    // The rules still work, and other files are served.
    assert_eq!(s.get("/").header("x-team"), Some("all"));
    assert_eq!(s.get("/docs/page.html").status, 200);
}
