//! SIGTERM: readiness fails at once, serving goes on through the delay with
//! `Connection: close`, in-flight downloads finish byte-exact, exit 0, port closed.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Polls `/readyz` until it answers 503, failing after `limit`.
fn wait_until_draining(addr: std::net::SocketAddr, limit: Duration) -> Response {
    let deadline = Instant::now() + limit;
    loop {
        let r = request(addr, "GET", "/readyz", &[]);
        if r.status == 503 {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "readiness still {} after {limit:?}",
            r.status
        );
    }
}

#[test]
fn sigterm_drains_a_slow_download_then_exits_zero() {
    let site = demo_site();
    let big = pattern(24 << 20, 11);
    write(site.path(), "big.bin", &big);
    let mut s = Server::start(
        site.path(),
        &["--shutdown-delay", "1s", "--drain-timeout", "30s"],
    );
    let addr = s.addr;

    let (started_tx, started_rx) = mpsc::channel();
    let downloader = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut told = false;
        let begun = Instant::now();
        loop {
            let n = c.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if !told && got.len() > 1 << 20 {
                started_tx.send(()).unwrap();
                told = true;
            }
            // A slow client: about 8 MB/s, so the download outlives the shutdown delay.
            std::thread::sleep(Duration::from_millis(8));
        }
        (got, begun.elapsed())
    });
    started_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    s.terminate();

    // Readiness flips at once, while other requests are still served, asking to close.
    let ready = wait_until_draining(addr, Duration::from_millis(500));
    assert_eq!(ready.text(), "draining");
    let r = s.get("/style.css");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));

    let status = s.wait_exit(Duration::from_secs(40));
    assert!(status.success(), "exit status {status:?}");
    let (raw, took) = downloader.join().unwrap();
    assert!(
        took > Duration::from_secs(1),
        "the download should outlive the shutdown delay ({took:?})"
    );
    let r = parse_response(&raw).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), big.len());
    assert!(r.body == big, "download is not byte-exact");
    assert!(
        TcpStream::connect(addr).is_err(),
        "port still accepts after exit"
    );
    s.wait_for_line("shutdown complete");
}

#[test]
fn keep_alive_connections_are_told_to_close_during_the_delay() {
    let site = demo_site();
    let s = Server::start(site.path(), &["--shutdown-delay", "2s"]);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ask = |c: &mut TcpStream| {
        c.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase()
    };
    let before = ask(&mut c);
    assert!(
        before.starts_with("http/1.1 200") && !before.contains("connection: close"),
        "{before}"
    );
    s.terminate();
    wait_until_draining(s.addr, Duration::from_millis(500));
    let during = ask(&mut c);
    assert!(
        during.starts_with("http/1.1 200") && during.contains("connection: close"),
        "{during}"
    );
    // And the server then closes that connection.
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).unwrap_or(0), 0);
}

#[test]
fn idle_server_exits_zero_quickly_on_sigterm_and_sigint() {
    for sig in ["TERM", "INT"] {
        let site = demo_site();
        let mut s = Server::start(site.path(), &[]);
        let _idle_keepalive = TcpStream::connect(s.addr).unwrap();
        let t = Instant::now();
        signal(s.child.id(), sig);
        let status = s.wait_exit(Duration::from_secs(5));
        assert!(status.success(), "SIG{sig}: {status:?}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "SIG{sig} took {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn drain_timeout_bounds_the_wait() {
    let site = demo_site();
    write(site.path(), "big.bin", &pattern(16 << 20, 3));
    let mut s = Server::start(site.path(), &["--drain-timeout", "500ms"]);
    // A client that starts a large download and stops reading.
    let mut stuck = TcpStream::connect(s.addr).unwrap();
    stuck
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1024];
    stuck.read_exact(&mut first).unwrap();
    let t = Instant::now();
    s.terminate();
    let status = s.wait_exit(Duration::from_secs(10));
    assert!(status.success());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    s.wait_for_line("drain timeout reached");
}
