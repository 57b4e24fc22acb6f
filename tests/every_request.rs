//! Every request gets its answer and its log line: clients that half-close after sending
//! (`printf … | nc`, scripted health checks, proxies forwarding a FIN) are answered in full,
//! pipelined requests included, and requests hyper refuses while parsing them (400, 431)
//! are logged and counted like any other. Both runtimes.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

const RUNTIMES: [&str; 2] = ["1", "2"];

/// Sends `raw`, shuts the sending side, reads until the server closes.
fn half_closed(addr: std::net::SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("the server closes after answering");
    out
}

/// Splits `raw` into responses, each with its body by Content-Length (none for HEAD).
fn responses(raw: &[u8], heads: &[bool]) -> Vec<Response> {
    let mut out = Vec::new();
    let mut rest = raw;
    for &head_only in heads {
        let split = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete head");
        let mut r = parse_response(&rest[..split + 4]).unwrap();
        let len: usize = r.header("content-length").unwrap().parse().unwrap();
        let body_len = if head_only { 0 } else { len };
        r.body = rest[split + 4..split + 4 + body_len].to_vec();
        rest = &rest[split + 4 + body_len..];
        out.push(r);
    }
    assert!(
        rest.is_empty(),
        "{} bytes after the last response",
        rest.len()
    );
    out
}

#[test]
fn half_closed_requests_are_all_answered_byte_exact() {
    for workers in RUNTIMES {
        let site = demo_site();
        let big = pattern(1 << 20, 3);
        write(site.path(), "big.bin", &big);
        let s = Server::start(site.path(), &["--workers", workers]);
        let cases: [(&[u8], bool, &[u8]); 4] = [
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", false, b"ok"),
            (
                b"GET /notes.txt HTTP/1.0\r\n\r\n",
                false,
                b"0123456789abcdefghijklmnopqrstuvwxyz",
            ),
            (b"HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n", true, b""),
            (b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", false, &big),
        ];
        for i in 0..200 {
            let (raw, head, body) = cases[i % cases.len()];
            let got = half_closed(s.addr, raw);
            let r = &responses(&got, &[head])[0];
            assert_eq!(r.status, 200, "workers {workers}, request {i}");
            assert!(
                r.body == body,
                "workers {workers}, request {i}: body differs"
            );
        }
    }
}

#[test]
fn pipelined_requests_then_a_half_close_get_every_response() {
    for workers in RUNTIMES {
        let site = demo_site();
        let s = Server::start(site.path(), &["--workers", workers]);
        for _ in 0..20 {
            let got = half_closed(
                s.addr,
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
                  GET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\n\
                  HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\n",
            );
            let rs = responses(&got, &[false, false, true]);
            assert_eq!(rs[0].text(), "ok");
            assert_eq!(rs[1].text(), "0123456789abcdefghijklmnopqrstuvwxyz");
            assert_eq!(rs[2].status, 200);
        }
    }
}

/// A server on `workers` that writes JSON log lines and serves `/metrics`.
fn logged_and_metered(root: &std::path::Path, workers: &str) -> Server {
    Server::start(
        root,
        &[
            "--workers",
            workers,
            "--log-format",
            "json",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    )
}

/// The access lines (JSON) logged so far.
fn access_lines(s: &Server) -> Vec<String> {
    s.lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("\"target\":\"access\""))
        .cloned()
        .collect()
}

#[test]
fn requests_refused_while_parsing_are_logged_and_counted_once() {
    for workers in RUNTIMES {
        let site = demo_site();
        let s = logged_and_metered(site.path(), workers);
        let huge = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(20_000)
        );
        let cases: [(&[u8], u16, &str); 3] = [
            (b"BLAH\r\n\r\n", 400, "4xx"),
            (huge.as_bytes(), 431, "4xx"),
            (
                b"GET /%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                400,
                "4xx",
            ),
        ];
        for (raw, status, class) in cases {
            let before = access_lines(&s).len();
            let counted = |m: &str| {
                metric(
                    m,
                    &format!(
                        "tinyserve_http_requests_total{{method=\"OTHER\",status=\"{class}\"}}"
                    ),
                ) + metric(
                    m,
                    &format!("tinyserve_http_requests_total{{method=\"GET\",status=\"{class}\"}}"),
                )
            };
            let count_before = counted(&s.metrics());
            let got = send_raw(s.addr, raw);
            assert_eq!(parse_response(&got).unwrap().status, status);
            // The line is written when the connection ends: wait for it, then for any other.
            let deadline = Instant::now() + Duration::from_secs(5);
            while access_lines(&s).len() == before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(100));
            let lines = access_lines(&s);
            assert_eq!(
                lines.len(),
                before + 1,
                "workers {workers}, status {status}: {:?}",
                &lines[before..]
            );
            let line = &lines[before];
            assert!(line.contains(&format!("\"status\":{status}")), "{line}");
            assert!(line.contains("\"peer\":\"127.0.0.1:"), "{line}");
            assert_eq!(counted(&s.metrics()), count_before + 1.0, "{status}");
        }
    }
}

/// The kernel's queues of the IPv4 TCP socket from `local` to `remote` port: bytes sent
/// and not yet acknowledged, and bytes received and not yet read (`/proc/net/tcp`).
fn tcp_queues(local: u16, remote: u16) -> (u64, u64) {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    for row in table.lines().skip(1) {
        let f: Vec<&str> = row.split_whitespace().collect();
        let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next().unwrap(), 16).unwrap();
        if port(f[1]) == local && port(f[2]) == remote {
            let (tx, rx) = f[4].split_once(':').unwrap();
            return (
                u64::from_str_radix(tx, 16).unwrap(),
                u64::from_str_radix(rx, 16).unwrap(),
            );
        }
    }
    panic!("no socket {local} -> {remote} in /proc/net/tcp");
}

/// A JSON log line's field, as text.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + name.len()
        + 3;
    let end = line[start..].find([',', '}']).unwrap() + start;
    &line[start..end]
}

#[test]
fn an_aborted_download_is_logged_and_counted_with_the_bytes_that_left() {
    use std::os::fd::AsRawFd;
    let site = demo_site();
    let big = pattern(16 << 20, 5);
    write(site.path(), "big.bin", &big);
    for workers in RUNTIMES {
        let s = logged_and_metered(site.path(), workers);
        let bytes_before = metric(&s.metrics(), "tinyserve_http_response_body_bytes_total");
        let mut c = TcpStream::connect(s.addr).unwrap();
        // A small receive buffer, so the server's socket fills up soon.
        let small: libc::c_int = 4096;
        // SAFETY: a valid socket, and an int option of the size passed.
        let set = unsafe {
            libc::setsockopt(
                c.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &small as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0);
        let start = Instant::now();
        c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut read = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        while read < 256 * 1024 {
            read += c.read(&mut buf).unwrap() as u64;
        }
        // Let the server fill every buffer on the way; then what its socket took is what the
        // client read, what waits in the client's socket and what the server's holds.
        std::thread::sleep(Duration::from_millis(300));
        let client_port = c.local_addr().unwrap().port();
        let (_, unread) = tcp_queues(client_port, s.addr.port());
        let (in_flight, _) = tcp_queues(s.addr.port(), client_port);
        let left_the_server = read + unread + in_flight;
        let gone = start.elapsed();
        drop(c);

        let deadline = Instant::now() + Duration::from_secs(10);
        let line = loop {
            if let Some(l) = access_lines(&s)
                .into_iter()
                .find(|l| l.contains("/big.bin"))
            {
                break l;
            }
            assert!(Instant::now() < deadline, "no access line for the download");
            std::thread::sleep(Duration::from_millis(10));
        };
        let logged: u64 = field(&line, "bytes").parse().unwrap();
        assert_eq!(field(&line, "complete"), "false", "{line}");
        // The response head (under 300 bytes) went through the same socket.
        assert!(
            logged <= left_the_server && left_the_server - logged < 300,
            "workers {workers}: logged {logged} bytes, {left_the_server} left the server's \
             socket (the client read {read})"
        );
        let duration = Duration::from_micros(field(&line, "duration_us").parse().unwrap());
        assert!(
            duration + Duration::from_millis(10) >= gone,
            "workers {workers}: logged {duration:?}, the client stayed {gone:?}"
        );
        let counted = metric(&s.metrics(), "tinyserve_http_response_body_bytes_total");
        assert_eq!(counted - bytes_before, logged as f64, "workers {workers}");
    }
}

#[test]
fn a_parked_connection_serves_its_next_request_and_still_times_out() {
    let site = demo_site();
    for workers in RUNTIMES {
        // Ticks of 100 ms: a connection resting 100-200 ms is parked.
        let s = Server::start_env(
            site.path(),
            &[
                "--workers",
                workers,
                "--header-timeout",
                "400ms",
                "--idle-timeout",
                "2s",
            ],
            &[("RUST_LOG", "info,tinyserve::http::connection=debug")],
        );
        let mut c = TcpStream::connect(s.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = std::io::BufReader::new(c.try_clone().unwrap());
        let page = std::fs::read(site.path().join("index.html")).unwrap();
        for round in 0..4 {
            if round > 0 {
                // Past two ticks of rest: parked.
                std::thread::sleep(Duration::from_millis(600));
            }
            // Two pipelined requests, the second one's head split across a pause.
            c.write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\nGET /style.css HTTP/1.1\r\n")
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            c.write_all(b"Host: t\r\n\r\n").unwrap();
            let first = read_response(&mut reader, false);
            let second = read_response(&mut reader, false);
            assert_eq!(
                (first.status, second.status),
                (200, 200),
                "workers {workers}, round {round}"
            );
            assert_eq!(first.body, page);
            assert!(first.header("connection").is_none(), "no Connection: close");
        }
        let parked = s
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("parked"))
            .count();
        assert!(parked >= 3, "workers {workers}: parked {parked} times");
        // Parked, the idle timeout still closes it: 2-2.5 s without a byte.
        let start = Instant::now();
        let mut rest = Vec::new();
        assert_eq!(reader.read_to_end(&mut rest).unwrap(), 0);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1900) && took <= Duration::from_millis(2700),
            "workers {workers}: closed after {took:?}"
        );
    }
}
