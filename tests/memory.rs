//! Memory per idle keep-alive connection: once a connection is parked between requests,
//! hyper's buffers (8 KiB to read, 8 KiB for response heads) go back, and what it keeps is
//! its task, its socket's registration and its timer (docs/performance.md, "Memory per connection").
//! Measured as the server's resident memory with many idle connections open, each after one
//! request, on both runtimes, with the release build for musl: what users run, and whose
//! allocator gives freed memory back (this test build's glibc keeps it, so its RSS would
//! not show a buffer let go).

mod common;

use common::*;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The shipped binary, built once.
fn shipped() -> &'static std::path::Path {
    static BUILT: OnceLock<std::path::PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| release_binary("x86_64-unknown-linux-musl"))
}

/// Connections opened at once: under the 1 024 descriptors a test process may have.
const CONNECTIONS: usize = 800;

/// The server's resident memory, in KiB.
fn rss_kib(server: &Server) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// How many times the server has logged a parked connection.
fn parked(server: &Server) -> usize {
    let lines = server.lines.lock().unwrap();
    lines.iter().filter(|l| l.contains("parked")).count()
}

#[test]
#[ignore = "needs the x86_64-unknown-linux-musl target"]
fn a_parked_connection_keeps_under_five_kib() {
    let site = demo_site();
    for workers in ["1", "2"] {
        // Ticks of 500 ms: a connection resting 0.5-1 s is parked, well after all of them
        // have had their answer (so the busy figure below sees every hyper buffer).
        let s = Server::start_program(
            Command::new(shipped()),
            site.path(),
            &[
                "--workers",
                workers,
                "--header-timeout",
                "2s",
                "--idle-timeout",
                "60s",
                "--access-log",
                "off",
            ],
            &[("RUST_LOG", "info,tinyserve::http::connection=debug")],
        );
        let before = rss_kib(&s);
        let mut conns: Vec<BufReader<TcpStream>> = (0..CONNECTIONS)
            .map(|_| {
                let mut c = TcpStream::connect(s.addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                c.write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
                    .unwrap();
                BufReader::new(c)
            })
            .collect();
        for c in &mut conns {
            assert_eq!(read_response(c, false).status, 200, "workers {workers}");
        }
        let busy = rss_kib(&s);
        let deadline = Instant::now() + Duration::from_secs(10);
        while parked(&s) < CONNECTIONS {
            assert!(
                Instant::now() < deadline,
                "workers {workers}: {} of {CONNECTIONS} parked",
                parked(&s)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let idle = rss_kib(&s);
        let per = |kib: f64| (kib - before) / CONNECTIONS as f64;
        // The measure can tell: before parking, hyper's buffers are there to see.
        assert!(
            per(busy) >= 10.0,
            "workers {workers}: {:.1} KiB per busy connection",
            per(busy)
        );
        // Measured 3.2 KiB (14.0 KiB when an empty read buffer still held hyper's 8 KiB).
        assert!(
            per(idle) <= 5.0,
            "workers {workers}: {:.1} KiB per parked connection ({before} -> {busy} -> {idle} KiB)",
            per(idle)
        );
        // Still open and serving after the park.
        let mut first = conns.swap_remove(0);
        first
            .get_mut()
            .write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut first, false).status, 200);
    }
}
