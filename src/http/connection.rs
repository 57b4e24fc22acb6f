//! One client connection, from accept to close: hyper serves its requests over the
//! timeout ([`crate::http::idle`]) and sendfile ([`crate::http::sendfile`]) layers, and between
//! requests the connection is *parked*.
//!
//! Parking: hyper keeps an 8 KiB read buffer and an 8 KiB buffer for response heads for as
//! long as its connection lives (measured 15.7 KiB per idle keep-alive connection), and its
//! only way to let go of a keep-alive connection without announcing `Connection: close` is
//! to end it while it is idle. So once a connection has rested a whole tick of its timers
//! (no byte moving, no request begun, nothing queued for the socket), its hyper connection
//! is shut down gracefully *without* closing the socket (`poll_without_shutdown`), its
//! buffers are freed, and the task waits for the socket to become readable, for at most
//! what is left of the idle timeout. The next request's first byte starts a new hyper
//! connection on the same socket; bytes hyper had read but not used are put back in front.
//! Nothing is sent to the client either way.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::StatusCode;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};

use crate::http::idle::{TimedIo, Timeouts};
use crate::http::observe::Recorder;
use crate::http::sendfile::{require_vectored, Segments, SendfileIo};
use crate::http::serve_tower::ServeTower;
use crate::http::stack::Stack;

/// What every connection shares.
pub struct Shared {
    /// hyper's settings.
    pub http: http1::Builder,
    /// The request path ([`crate::http::stack`]).
    pub stack: Stack,
    /// For requests hyper refuses before the service sees them.
    pub recorder: Arc<Recorder>,
    /// Header and idle timeouts.
    pub timeouts: Timeouts,
}

/// Serves `stream` until the client leaves, a timeout closes it, or `stop` turns true
/// (then the request in progress is finished and the connection closed).
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let segments = Arc::new(Segments::default());
    let timed = TimedIo::new(SendfileIo::new(stream, segments.clone()), shared.timeouts);
    let mut io = TokioIo::new(timed);
    // File bodies are placeholders that only a vectored writer passes on by reference.
    if let Err(e) = require_vectored(&io) {
        tracing::error!(%peer, error = %e, "connection refused");
        return;
    }
    loop {
        // A fresh signal per hyper connection: a rest noticed before the last park must not
        // end the next connection before it has read its request.
        let rest = Arc::new(Notify::new());
        io.inner_mut().notify_rest(rest.clone());
        // Boxed, so that a parked connection's task holds none of hyper's state.
        let mut conn = Box::new(shared.http.serve_connection(
            io,
            ServeTower::new(shared.stack.for_connection(peer, segments.clone())),
        ));
        let (mut parking, mut stopping) = (false, false);
        let ended = loop {
            tokio::select! {
                r = poll_fn(|cx| conn.poll_without_shutdown(cx)) => break r,
                _ = rest.notified(), if !parking && !stopping => {
                    if segments.is_empty() {
                        Pin::new(&mut *conn).graceful_shutdown();
                        parking = true;
                    }
                }
                _ = stop.wait_for(|stop| *stop), if !stopping => {
                    Pin::new(&mut *conn).graceful_shutdown();
                    stopping = true;
                }
            }
        };
        if let Err(e) = ended {
            // A request hyper refused while parsing it was answered by hyper itself,
            // before the service saw it: record that answer here.
            if let Some(status) = rejection_status(&e) {
                shared.recorder.rejected(peer, status);
            }
            tracing::debug!(%peer, error = %e, "connection ended with an error");
            return;
        }
        let http1::Parts {
            io: rest, read_buf, ..
        } = conn.into_parts();
        io = rest;
        if !parking || stopping {
            // The client is done (or the server is): close as hyper would have.
            let _ = poll_fn(|cx| hyper::rt::Write::poll_shutdown(Pin::new(&mut io), cx)).await;
            return;
        }
        if !read_buf.is_empty() {
            // A request began as hyper let go: serve it at once.
            io.inner_mut().inner_mut().unread(read_buf);
            continue;
        }
        // hyper's read buffer, frozen: empty, it still holds its whole allocation (8 KiB),
        // which the park is there to give back.
        drop(read_buf);
        let idle_left = io.inner().idle_left();
        tracing::debug!(%peer, "parked");
        tokio::select! {
            readable = tokio::time::timeout(idle_left, io.inner().inner().readable()) => {
                if !matches!(readable, Ok(Ok(()))) {
                    return; // idle timeout, or a socket error
                }
            }
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// The status hyper answered a request it could not parse with (its automatic response),
/// or `None` if it sent none (an HTTP/2 preface, a connection closed mid-head, a timeout).
fn rejection_status(e: &hyper::Error) -> Option<StatusCode> {
    if e.is_parse_too_large() {
        // The one parse error hyper describes this way is a URI over its own limit.
        return Some(if e.to_string().contains("URI too long") {
            StatusCode::URI_TOO_LONG
        } else {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        });
    }
    (e.is_parse() && !e.is_parse_version_h2()).then_some(StatusCode::BAD_REQUEST)
}
