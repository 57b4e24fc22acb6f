//! Binding the listeners. `[::]` means both IPv4 and IPv6: the socket is an IPv6 one with
//! `IPV6_V6ONLY` off, so IPv4 clients arrive as `::ffff:a.b.c.d` (IPv6-only and IPv6-first
//! clusters need the IPv6 side, everything else the IPv4 one). On a host with no IPv6 at all
//! the same address falls back to `0.0.0.0`, with a log line saying so.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use tokio::net::{TcpListener, TcpSocket};

/// Pending connections the kernel queues for `accept`.
const BACKLOG: u32 = 1024;

/// Binds `addr`; for `[::]`, dual-stack, or IPv4 only where the host has no IPv6. `what`
/// names the listener in the fallback's log line. Must run inside the Tokio runtime.
pub fn bind(addr: SocketAddr, what: &str) -> io::Result<TcpListener> {
    if addr.ip() != Ipv6Addr::UNSPECIFIED {
        return listen(addr);
    }
    match dual_stack(addr) {
        Ok(l) => Ok(l),
        Err(e) if no_ipv6(&e) => {
            let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
            tracing::warn!(
                listener = what,
                error = %e,
                "no IPv6 on this host: listening on {v4} (IPv4 only)"
            );
            listen(v4)
        }
        Err(e) => Err(e),
    }
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As std and tokio do: a restarted server can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

fn dual_stack(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v6()?;
    let off: libc::c_int = 0;
    // SAFETY: an open socket, and an int option of the size given.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            (&off as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Whether `e` says the host has no IPv6 (no kernel support, or disabled).
fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}
