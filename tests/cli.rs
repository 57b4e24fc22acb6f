//! The command line: errors exit 2 naming flag, variable and value; bind failures exit 1;
//! help, version, the healthcheck subcommand, and the log formats.

mod common;

use common::*;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    // Any of these could otherwise start a server; a bounded wait keeps a bug from hanging.
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let guard = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(10));
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(id.to_string())
            .status();
    });
    let out = child.wait_with_output().unwrap();
    drop(guard);
    out
}

#[test]
fn bad_flags_and_env_values_exit_2_naming_them() {
    let site = demo_site();
    let root = site.path().to_str().unwrap();
    let notes = format!("{root}/notes.txt");
    // (arguments, environment, what the one-line error must name)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, [&'a str; 3]);
    let cases: Vec<Case> = vec![
        (
            vec!["--root", "/no/such/dir"],
            vec![],
            ["--root", "TINYSERVE_ROOT", "/no/such/dir"],
        ),
        (
            vec![],
            vec![("TINYSERVE_ROOT", "/no/such/dir")],
            ["--root", "TINYSERVE_ROOT", "/no/such/dir"],
        ),
        (
            vec!["--root", &notes],
            vec![],
            ["--root", "TINYSERVE_ROOT", "notes.txt"],
        ),
        (
            vec!["--root", root, "--listen", "nowhere:80"],
            vec![],
            ["--listen", "TINYSERVE_LISTEN", "nowhere:80"],
        ),
        (
            vec!["--root", root],
            vec![("TINYSERVE_LISTEN", "1.2.3.4")],
            ["--listen", "TINYSERVE_LISTEN", "1.2.3.4"],
        ),
        (
            vec!["--root", root, "--shutdown-delay", "5"],
            vec![],
            ["--shutdown-delay", "TINYSERVE_SHUTDOWN_DELAY", "\"5\""],
        ),
        (
            vec!["--root", root],
            vec![("TINYSERVE_DRAIN_TIMEOUT", "soon")],
            ["--drain-timeout", "TINYSERVE_DRAIN_TIMEOUT", "soon"],
        ),
        (
            vec!["--root", root, "--log-format", "xml"],
            vec![],
            ["--log-format", "TINYSERVE_LOG_FORMAT", "xml"],
        ),
        (
            vec!["--root", root],
            vec![("TINYSERVE_METRICS_LISTEN", "localhost")],
            ["--metrics-listen", "TINYSERVE_METRICS_LISTEN", "localhost"],
        ),
        (
            vec!["--root", root, "--fallback", "nope.html"],
            vec![],
            ["--fallback", "TINYSERVE_FALLBACK", "nope.html"],
        ),
        (
            vec!["--root", root, "--fallback", ".env"],
            vec![],
            ["--fallback", "TINYSERVE_FALLBACK", ".env"],
        ),
        (
            vec!["--root", root, "--header", "no colon"],
            vec![],
            ["--header", "TINYSERVE_HEADERS", "no colon"],
        ),
        (
            vec!["--root", root, "--max-header-size", "1KiB"],
            vec![],
            ["--max-header-size", "TINYSERVE_MAX_HEADER_SIZE", "1KiB"],
        ),
        (
            vec!["--root", root, "--max-connections", "0"],
            vec![],
            ["--max-connections", "TINYSERVE_MAX_CONNECTIONS", "\"0\""],
        ),
        (
            vec!["--root", root, "--header-timeout", "0s"],
            vec![],
            ["--header-timeout", "TINYSERVE_HEADER_TIMEOUT", "0s"],
        ),
        (
            vec!["--root", root, "--header", "Content-Length: 10"],
            vec![],
            ["--header", "TINYSERVE_HEADERS", "Content-Length: 10"],
        ),
        (
            vec!["--root", root],
            vec![("TINYSERVE_HEADERS", "X-Ok: 1\nTransfer-Encoding: chunked")],
            [
                "--header",
                "TINYSERVE_HEADERS",
                "Transfer-Encoding: chunked",
            ],
        ),
        (
            vec!["--root", root, "--header", "Connection: keep-alive"],
            vec![],
            ["--header", "TINYSERVE_HEADERS", "Connection"],
        ),
        (
            vec!["--root", root, "--basic-auth-file", &notes],
            vec![],
            [
                "--basic-auth-file",
                "TINYSERVE_BASIC_AUTH_FILE",
                "notes.txt",
            ],
        ),
        (
            vec!["--root", root],
            vec![("TINYSERVE_BASIC_AUTH_FILE", "/no/such/htpasswd")],
            [
                "--basic-auth-file",
                "TINYSERVE_BASIC_AUTH_FILE",
                "/no/such/htpasswd",
            ],
        ),
        (
            vec!["--root", root, "--cors-origins", "example.com"],
            vec![],
            ["--cors-origins", "TINYSERVE_CORS_ORIGINS", "example.com"],
        ),
        (
            vec!["--root", root, "--trusted-proxies", "10.0.0.0/8,nonsense"],
            vec![],
            ["--trusted-proxies", "TINYSERVE_TRUSTED_PROXIES", "nonsense"],
        ),
        (
            vec!["--root", root, "--watch", "sometimes"],
            vec![],
            ["--watch", "TINYSERVE_WATCH", "sometimes"],
        ),
        (
            vec!["--root", root],
            vec![("TINYSERVE_CACHE_ENTRIES", "many")],
            ["--cache-entries", "TINYSERVE_CACHE_ENTRIES", "many"],
        ),
        (
            vec!["--root", root, "--cache-open-files", "0"],
            vec![],
            ["--cache-open-files", "TINYSERVE_CACHE_OPEN_FILES", "\"0\""],
        ),
        (
            vec!["--root", root],
            vec![("TINYSERVE_IDLE_TIMEOUT", "1d")],
            ["--idle-timeout", "TINYSERVE_IDLE_TIMEOUT", "1d"],
        ),
        (
            vec!["--root", root, "--cache-max", "lots"],
            vec![],
            ["--cache-max", "TINYSERVE_CACHE_MAX", "lots"],
        ),
        (
            vec!["--root", root],
            vec![("TINYSERVE_ACCESS_LOG", "maybe")],
            ["--access-log", "TINYSERVE_ACCESS_LOG", "maybe"],
        ),
        (
            vec!["--root", root],
            vec![("TINYSERVE_IMMUTABLE", "assets")],
            ["--immutable", "TINYSERVE_IMMUTABLE", "assets"],
        ),
        (
            vec!["--root", root, "--workers", "none"],
            vec![],
            ["--workers", "TINYSERVE_WORKERS", "none"],
        ),
    ];
    for (args, env, needles) in cases {
        let out = run(&args, &env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("error: "), "{err}");
        for n in needles {
            assert!(err.contains(n), "{args:?} {env:?}: {err:?} lacks {n:?}");
        }
    }
    // Unknown flags and RUST_LOG nonsense are usage errors too.
    assert_eq!(run(&["--root", root, "--nope"], &[]).status.code(), Some(2));
    assert_eq!(
        run(&["--root", root, "--listen"], &[]).status.code(),
        Some(2)
    );
    let out = run(&["--root", root], &[("RUST_LOG", "info,=x=y")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn address_in_use_exits_1_naming_it() {
    let site = demo_site();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(
        &["--root", site.path().to_str().unwrap(), "--listen", &addr],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&addr) && err.contains("--listen"), "{err}");
    let out = run(
        &[
            "--root",
            site.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            &addr,
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&addr) && err.contains("--metrics-listen"),
        "{err}"
    );
}

#[test]
fn help_lists_every_option_with_env_and_default_in_a_terminal() {
    let out = run(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env, default) in [
        ("--root", "TINYSERVE_ROOT", "static"),
        ("--listen", "TINYSERVE_LISTEN", "[::]:8080"),
        ("--shutdown-delay", "TINYSERVE_SHUTDOWN_DELAY", "0s"),
        ("--drain-timeout", "TINYSERVE_DRAIN_TIMEOUT", "10s"),
        ("--log-format", "TINYSERVE_LOG_FORMAT", "text"),
        ("--metrics-listen", "TINYSERVE_METRICS_LISTEN", "unset"),
        ("--access-log", "TINYSERVE_ACCESS_LOG", "on"),
        ("--access-log-probes", "TINYSERVE_ACCESS_LOG_PROBES", "on"),
        ("--fallback", "TINYSERVE_FALLBACK", "unset"),
        ("--pretty-urls", "TINYSERVE_PRETTY_URLS", "off"),
        ("--maintenance", "TINYSERVE_MAINTENANCE", "unset"),
        ("--compress", "TINYSERVE_COMPRESS", "auto"),
        ("--cache-control", "TINYSERVE_CACHE_CONTROL", "no-cache"),
        ("--immutable", "TINYSERVE_IMMUTABLE", "fingerprint"),
        ("--header", "TINYSERVE_HEADERS", "unset"),
        ("--header-timeout", "TINYSERVE_HEADER_TIMEOUT", "10s"),
        ("--idle-timeout", "TINYSERVE_IDLE_TIMEOUT", "60s"),
        ("--max-header-size", "TINYSERVE_MAX_HEADER_SIZE", "16KiB"),
        ("--max-connections", "TINYSERVE_MAX_CONNECTIONS", "10000"),
        ("--cache-max", "TINYSERVE_CACHE_MAX", "64MiB"),
        ("--cache-file-max", "TINYSERVE_CACHE_FILE_MAX", "8KiB"),
        ("--workers", "TINYSERVE_WORKERS", "unset"),
        ("--cache-entries", "TINYSERVE_CACHE_ENTRIES", "65536"),
        ("--cache-open-files", "TINYSERVE_CACHE_OPEN_FILES", "unset"),
        ("--watch", "TINYSERVE_WATCH", "auto"),
        ("--trusted-proxies", "TINYSERVE_TRUSTED_PROXIES", "unset"),
        ("--cors-origins", "TINYSERVE_CORS_ORIGINS", "unset"),
        ("--basic-auth-file", "TINYSERVE_BASIC_AUTH_FILE", "unset"),
    ] {
        let line = help
            .split("\n  --")
            .find(|b| b.starts_with(&format!("{} ", &flag[2..])))
            .unwrap_or_else(|| panic!("{flag} missing"));
        // The variable is the flag's name by the rule the help states, or named beside it.
        let derived = format!("TINYSERVE_{}", flag[2..].to_uppercase().replace('-', "_"));
        assert!(
            env == derived || line.contains(&format!("(env {env})")),
            "{flag}: {line}"
        );
        if default != "unset" {
            assert!(line.contains(&format!("[{default}]")), "{flag}: {line}");
        }
    }
    assert!(help.contains("also the variable TINYSERVE_SOME_OPTION"));
    // It fits in a terminal, and says where the details are.
    assert!(help.lines().count() <= 50, "{} lines", help.lines().count());
    for line in help.lines() {
        assert!(line.chars().count() <= 80, "{} columns: {line}", line.len());
    }
    assert!(help.contains("docs/configuration.md"));
    assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/configuration.md")
        .is_file());
}

#[test]
fn version_names_the_commit() {
    let out = run(&["--version"], &[]);
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        v.starts_with(&format!("tinyserve {}", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let commit = v
        .split("commit ")
        .nth(1)
        .unwrap()
        .trim_end_matches([')', '\n']);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok();
    if let Some(h) = head.filter(|h| h.status.success()) {
        assert_eq!(commit, String::from_utf8_lossy(&h.stdout).trim(), "{v}");
    } else {
        assert!(!commit.is_empty(), "{v}");
    }
}

#[test]
fn healthcheck_subcommand_exits_0_on_200_and_1_otherwise() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    let port = s.addr.port().to_string();
    let out = run(
        &["healthcheck"],
        &[("TINYSERVE_LISTEN", &format!("0.0.0.0:{port}"))],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &["healthcheck", "--listen", &format!("127.0.0.1:{port}")],
        &[],
    );
    assert!(out.status.success());
    drop(s);
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let t = std::time::Instant::now();
    let out = run(&["healthcheck", "--listen", &free.to_string()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stderr.is_empty());
    // Something that accepts but never answers: fails within the 2 s budget.
    let mute = TcpListener::bind("127.0.0.1:0").unwrap();
    let t2 = std::time::Instant::now();
    let out = run(
        &[
            "healthcheck",
            "--listen",
            &mute.local_addr().unwrap().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        t2.elapsed() < Duration::from_millis(2900),
        "took {:?}",
        t2.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(6));
}

#[test]
fn json_logs_one_object_per_line_with_access_fields() {
    let site = demo_site();
    let mut s = Server::start(site.path(), &["--log-format", "json"]);
    request(s.addr, "GET", "/style.css", &[("User-Agent", "probe/1.0")]);
    let line = s.wait_for_line("probe/1.0");
    s.terminate();
    s.wait_exit(Duration::from_secs(5));
    s.wait_for_line("shutdown complete");
    for l in s.lines.lock().unwrap().iter() {
        assert!(
            l.starts_with('{') && l.ends_with('}'),
            "not one JSON object per line: {l}"
        );
    }
    for field in [
        "\"method\":\"GET\"",
        "\"path\":\"/style.css\"",
        "\"status\":200",
        "\"bytes\":37",
        "\"duration_us\":",
        "\"user_agent\":\"probe/1.0\"",
        "\"timestamp\":",
        "\"level\":\"INFO\"",
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    let first = s.lines.lock().unwrap()[0].clone();
    assert!(first.contains("listening on 127.0.0.1:"), "{first}");
    // The kernel's page, in which the cache's memory is charged.
    assert!(first.contains("\"page_size\":"), "{first}");
}

#[test]
fn text_access_log_can_be_turned_off_and_filtered() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    request(s.addr, "GET", "/notes.txt", &[("User-Agent", "textlog/2")]);
    let line = s.wait_for_line("textlog/2");
    for f in [
        "method=GET",
        "path=/notes.txt",
        "status=200",
        "bytes=36",
        "duration_us=",
        "user_agent=textlog/2",
    ] {
        assert!(line.contains(f), "{f} missing in {line}");
    }
    for (args, env) in [
        (vec!["--access-log", "off"], vec![]),
        (vec![], vec![("RUST_LOG", "info,access=off")]),
    ] {
        let mut s = Server::start_env(site.path(), &args, &env);
        request(s.addr, "GET", "/notes.txt", &[("User-Agent", "quiet/1")]);
        s.terminate();
        s.wait_exit(Duration::from_secs(5));
        s.wait_for_line("shutdown complete");
        assert!(
            !s.lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("quiet/1")),
            "{args:?} {env:?}"
        );
    }
}

#[test]
fn access_log_names_the_client_behind_trusted_proxies_only() {
    let site = demo_site();
    let forwarded = [("X-Forwarded-For", "203.0.113.7"), ("User-Agent", "who/1")];
    // The peer (127.0.0.1) is a trusted proxy: the header names the client.
    let s = Server::start(
        site.path(),
        &[
            "--log-format",
            "json",
            "--trusted-proxies",
            "127.0.0.0/8,::1",
        ],
    );
    request(s.addr, "GET", "/style.css", &forwarded);
    let line = s.wait_for_line("who/1");
    assert!(line.contains("\"client\":\"203.0.113.7\""), "{line}");
    assert!(line.contains("\"peer\":\"127.0.0.1:"), "{line}");
    drop(s);
    // Not trusted (none configured): the header is ignored, the client is the peer.
    let s = Server::start(site.path(), &["--log-format", "json"]);
    request(s.addr, "GET", "/style.css", &forwarded);
    let line = s.wait_for_line("who/1");
    assert!(line.contains("\"client\":\"127.0.0.1\""), "{line}");
}

#[test]
fn probes_can_be_left_out_of_the_access_log_and_still_counted() {
    let site = demo_site();
    for (args, probes_logged) in [
        (vec!["--metrics-listen", "127.0.0.1:0"], true),
        (
            vec![
                "--metrics-listen",
                "127.0.0.1:0",
                "--access-log-probes",
                "off",
            ],
            false,
        ),
    ] {
        let s = Server::start(site.path(), &args);
        for path in ["/healthz", "/readyz", "/readyz", "/notes.txt"] {
            assert_eq!(s.get(path).status, 200, "{path}");
        }
        // The file's line comes after the probes' (one connection each, in order).
        s.wait_for_line("path=/notes.txt");
        let lines = s.lines.lock().unwrap().clone();
        for probe in ["path=/healthz", "path=/readyz"] {
            assert_eq!(
                lines.iter().any(|l| l.contains(probe)),
                probes_logged,
                "{args:?}: {probe}"
            );
        }
        let m = s.metrics();
        assert_eq!(
            metric(
                &m,
                "tinyserve_http_requests_total{method=\"GET\",status=\"2xx\"}"
            ),
            4.0,
            "{args:?}: the probes are counted either way"
        );
    }
}
