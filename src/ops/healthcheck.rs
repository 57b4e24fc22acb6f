//! `tinyserve healthcheck`: the image's HEALTHCHECK. A scratch image has no shell or curl, so
//! the binary probes itself with a minimal HTTP/1.1 request using only the standard library.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The whole check must finish within this time.
const BUDGET: Duration = Duration::from_secs(2);

/// Sends `GET /healthz` to the server configured to listen on `listen`; `Ok` on a 200.
pub fn check(listen: SocketAddr) -> Result<(), String> {
    // A wildcard bind is reached on loopback; a specific address only on itself.
    let ip = match listen.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let target = SocketAddr::new(ip, listen.port());
    let deadline = Instant::now() + BUDGET;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut stream = TcpStream::connect_timeout(&target, BUDGET)
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    stream
        .set_write_timeout(Some(left()))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tinyserve-healthcheck\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send to {target}: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        stream
            .set_read_timeout(Some(left()))
            .map_err(|e| e.to_string())?;
        let n = stream
            .read(&mut buf)
            .map_err(|e| format!("no answer from {target}: {e}"))?;
        if n == 0 || head.len() > 4096 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let status_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!("{target}/healthz answered {status_line:?}")),
    }
}
