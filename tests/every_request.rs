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
        let s = Server::start(
            site.path(),
            &[
                "--workers",
                workers,
                "--log-format",
                "json",
                "--metrics-listen",
                "127.0.0.1:0",
            ],
        );
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
