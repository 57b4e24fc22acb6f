//! Limits against abuse: slowloris, idle connections, oversized heads, a connection cap,
//! and a flood of malformed requests that must leave the server healthy.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// Reads until EOF or error; returns what arrived and when the connection ended.
fn read_until_closed(c: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    c.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                panic!("connection still open after {limit:?}")
            }
            Err(_) => break,
        }
    }
    (got, t.elapsed())
}

/// Sends a request head that never ends, one byte per 100 ms, until the server closes the
/// connection; returns how long that took. Fails if it is still open after `limit`.
fn trickle_until_closed(c: &mut TcpStream, limit: Duration) -> Duration {
    c.set_nodelay(true).unwrap();
    let t = Instant::now();
    let head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    for b in head.iter().chain(std::iter::repeat(&b'a')) {
        // After the server closes, a write fails (EPIPE/ECONNRESET) or a read returns.
        if c.write_all(&[*b]).is_err() {
            return t.elapsed();
        }
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 512];
        match c.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            _ => return t.elapsed(),
        }
        assert!(
            t.elapsed() < limit,
            "slow client still connected after {limit:?}"
        );
    }
    unreachable!("the head never ends")
}

#[test]
fn slowloris_is_cut_off_after_the_header_timeout() {
    let site = demo_site();
    let s = Server::start(site.path(), &["--header-timeout", "1s"]);
    let mut c = TcpStream::connect(s.addr).unwrap();
    let after = trickle_until_closed(&mut c, Duration::from_secs(5));
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "closed after {after:?}"
    );
    assert_eq!(s.get("/healthz").status, 200);
}

#[test]
fn silent_and_idle_connections_are_closed() {
    let site = demo_site();
    let s = Server::start(
        site.path(),
        &["--header-timeout", "1s", "--idle-timeout", "1500ms"],
    );
    // Connects and never says anything.
    let mut silent = TcpStream::connect(s.addr).unwrap();
    let (_, after) = read_until_closed(&mut silent, Duration::from_secs(5));
    assert!(
        after >= Duration::from_millis(900),
        "closed too early: {after:?}"
    );

    // One request, then idle on keep-alive.
    let mut idle = TcpStream::connect(s.addr).unwrap();
    idle.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (got, after) = read_until_closed(&mut idle, Duration::from_secs(6));
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        after >= Duration::from_millis(900),
        "closed too early: {after:?}"
    );
}

#[test]
fn oversized_request_heads_get_431() {
    let site = demo_site();
    let s = Server::start(site.path(), &[]);
    for size in [20_000usize, 200_000, 2_000_000] {
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        );
        let got = send_raw(s.addr, raw.as_bytes());
        let r =
            parse_response(&got).unwrap_or_else(|| panic!("no response for a {size}-byte header"));
        assert_eq!(r.status, 431, "{size}-byte header");
    }
    // Under the default 16KiB limit is fine.
    let raw = format!(
        "GET /notes.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Ok: {}\r\n\r\n",
        "a".repeat(8_000)
    );
    assert_eq!(
        parse_response(&send_raw(s.addr, raw.as_bytes()))
            .unwrap()
            .status,
        200
    );
    assert_eq!(s.get("/healthz").status, 200);
}

#[test]
fn connection_cap_queues_the_excess() {
    let site = demo_site();
    let s = Server::start(site.path(), &["--max-connections", "2"]);
    let keepalive = |c: &mut TcpStream| {
        c.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        c.set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        let mut buf = [0u8; 1024];
        c.read(&mut buf).map(|n| n > 0)
    };
    let mut a = TcpStream::connect(s.addr).unwrap();
    let mut b = TcpStream::connect(s.addr).unwrap();
    assert!(keepalive(&mut a).unwrap());
    assert!(keepalive(&mut b).unwrap());
    let mut c = TcpStream::connect(s.addr).unwrap(); // Completes in the kernel backlog.
    let third = keepalive(&mut c);
    assert!(
        third.is_err(),
        "a third connection was served past the cap of 2"
    );
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "queued connection not served once a slot freed"
    );
}

#[test]
fn ten_thousand_malformed_requests_leave_the_server_healthy() {
    let site = demo_site();
    let mut s = Server::start(
        site.path(),
        &["--access-log", "off", "--header-timeout", "2s"],
    );
    let addr = s.addr;
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut statuses = [0usize; 6];
                for i in 0..2500u64 {
                    let seed = t * 10_000 + i;
                    let raw = malformed(seed);
                    let mut c = TcpStream::connect(addr).expect("server stopped accepting");
                    let _ = c.write_all(&raw);
                    let _ = c.shutdown(Shutdown::Write);
                    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut out = Vec::new();
                    let _ = c.read_to_end(&mut out);
                    if let Some(r) = parse_response(&out) {
                        statuses[(r.status / 100) as usize] += 1;
                    }
                }
                statuses
            })
        })
        .collect();
    let mut total = [0usize; 6];
    for t in threads {
        for (i, n) in t.join().unwrap().iter().enumerate() {
            total[i] += n;
        }
    }
    assert_eq!(total[5], 0, "malformed input caused 5xx: {total:?}");
    assert!(total[4] > 1000, "expected many 4xx answers: {total:?}");
    assert!(s.child.try_wait().unwrap().is_none(), "server died");
    let r = s.get("/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    println!("status classes (index = first digit): {total:?}");
}

/// Request number `seed` of the flood: one of several kinds of broken input.
fn malformed(seed: u64) -> Vec<u8> {
    let noise = pattern(1 + (seed % 700) as usize, seed);
    match seed % 10 {
        0 => noise,
        1 => format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Huge: {}\r\n\r\n",
            "h".repeat(20_000 + (seed % 5000) as usize)
        )
        .into_bytes(),
        2 => {
            let methods = [
                "G\0ET", "GE T", "😀", "get", "CONNECT", "\x7f\x7f", "GET\tGET",
            ];
            format!(
                "{} / HTTP/1.1\r\nHost: t\r\n\r\n",
                methods[(seed / 10 % 7) as usize]
            )
            .into_bytes()
        }
        3 => {
            let uris = [
                "/%",
                "/%zz",
                "/%e0%80",
                "/a b",
                "http://[::1",
                "*",
                "/\u{7f}",
                "//..//..",
                "/%c0%ae%c0%ae/etc/passwd",
                "/%ff%fe",
            ];
            format!(
                "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
                uris[(seed / 10 % 10) as usize]
            )
            .into_bytes()
        }
        4 => b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        5 => b"GET / HTTP/1.1\r\nContent-Length: -1\r\nHost: t\r\n\r\n".to_vec(),
        6 => b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nzz\r\n"
            .to_vec(),
        7 => {
            let mut v = b"GET / HTTP/1.1\r\n".to_vec();
            v.extend_from_slice(&noise);
            v.extend_from_slice(b"\r\n\r\n");
            v
        }
        8 => format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(200)).into_bytes(),
        _ => b"GET /\r\n\r\n".to_vec(),
    }
}

#[test]
fn header_timeout_covers_each_request_but_not_idle_keep_alive() {
    let site = demo_site();
    let s = Server::start(
        site.path(),
        &["--header-timeout", "1s", "--idle-timeout", "4s"],
    );
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let ask = |c: &mut TcpStream| {
        c.write_all(b"GET /notes.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    };
    ask(&mut c);
    // Idle between requests for longer than the header timeout: still open.
    std::thread::sleep(Duration::from_millis(1800));
    ask(&mut c);
    // Now the next head trickles in: cut after the header timeout, long before the idle one.
    let after = trickle_until_closed(&mut c, Duration::from_millis(3500));
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_millis(2500),
        "cut after {after:?}"
    );
}

#[test]
fn the_metrics_listener_cuts_slow_clients_too() {
    let site = demo_site();
    let s = Server::start(
        site.path(),
        &["--metrics-listen", "127.0.0.1:0", "--header-timeout", "1s"],
    );
    let maddr = address_after(&s.wait_for_line("metrics on "), "metrics on ").unwrap();
    let mut c = TcpStream::connect(maddr).unwrap();
    let took = trickle_until_closed(&mut c, Duration::from_secs(5));
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before the header timeout"
    );
    // Still serving.
    assert!(s.metrics().contains("tinyserve_build_info"));
}
