//! Prometheus metrics: on the metrics listener only, never on the public port.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn metrics_count_requests_only_on_the_metrics_port() {
    let site = demo_site();
    let s = Server::start(site.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let maddr = address_after(&s.wait_for_line("metrics on "), "metrics on ").unwrap();
    assert_ne!(maddr.port(), s.addr.port());

    // The public port does not expose them.
    assert_eq!(s.get("/metrics").status, 404);

    for _ in 0..3 {
        assert_eq!(s.get("/style.css").status, 200);
    }
    assert_eq!(s.get("/nope").status, 404);
    assert_eq!(request(s.addr, "HEAD", "/", &[]).status, 200);
    assert_eq!(request(s.addr, "DELETE", "/", &[]).status, 405);

    // Counts are recorded when each response body is dropped; poll briefly for the last.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let r = request(maddr, "GET", "/metrics", &[]);
        assert_eq!(r.status, 200);
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text"));
        let text = r.text();
        if text.contains("tinyserve_http_requests_total{method=\"OTHER\",status=\"4xx\"} 1")
            || Instant::now() > deadline
        {
            break text;
        }
    };
    assert_eq!(
        metric(
            &text,
            "tinyserve_http_requests_total{method=\"GET\",status=\"2xx\"}"
        ),
        3.0
    );
    // The /metrics probe on the public port was a 404 too.
    assert_eq!(
        metric(
            &text,
            "tinyserve_http_requests_total{method=\"GET\",status=\"4xx\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "tinyserve_http_requests_total{method=\"HEAD\",status=\"2xx\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "tinyserve_http_requests_total{method=\"OTHER\",status=\"4xx\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "tinyserve_http_requests_total{method=\"GET\",status=\"5xx\"}"
        ),
        0.0
    );
    let body_bytes = 3 * 37 + 2 * "not found\n".len() + "method not allowed\n".len();
    assert_eq!(
        metric(&text, "tinyserve_http_response_body_bytes_total"),
        body_bytes as f64
    );
    assert_eq!(
        metric(&text, "tinyserve_http_request_duration_seconds_count"),
        7.0
    );
    assert!(text.contains("tinyserve_http_requests_in_flight"));
    assert!(text.contains(&format!(
        "tinyserve_build_info{{version=\"{}\",commit=\"",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(text.trim_end().ends_with("# EOF"));

    assert_eq!(request(maddr, "GET", "/", &[]).status, 404);
}

#[test]
fn no_metrics_listener_unless_configured() {
    let site = demo_site();
    let mut s = Server::start(site.path(), &[]);
    assert_eq!(s.get("/metrics").status, 404);
    s.terminate();
    s.wait_exit(Duration::from_secs(5));
    assert!(!s
        .lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("metrics on")));
}
