//! Connection timeouts, enforced in an I/O wrapper:
//!
//! - **header timeout**: a request head must arrive within it, counted from the connection's
//!   start or from the first byte of each later request (slowloris);
//! - **idle timeout**: no byte moving either way for this long closes the connection
//!   (keep-alive connections left open, clients that stall a download).
//!
//! hyper has a header timeout of its own, but it arms a fresh boxed timer for every request
//! and has no idle timeout at all. Here one timer per connection ticks four times per
//! (shorter) timeout, and I/O only sets flags: no clock read, no timer-wheel work and no
//! allocation per request. A request head is recognised without parsing: it is whatever
//! the client sends after the server last wrote (GET and HEAD have no body; anything else
//! is answered at once with 405).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Ticks per timeout: a timeout fires between 1 and 1.25 times its value.
const TICKS_PER_TIMEOUT: u32 = 4;

/// The two limits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Time allowed for a request head.
    pub header: Duration,
    /// Time a connection may go without a byte moving.
    pub idle: Duration,
}

/// `T` with the connection timeouts applied.
pub struct TimedIo<T> {
    inner: T,
    tick: Duration,
    header_ticks: u32,
    idle_ticks: u32,
    /// Whether any byte moved since the last tick.
    active: bool,
    quiet_ticks: u32,
    /// Whether a request head is being received: from the connection's start, and from the
    /// first byte read after each write, until the next write.
    in_head: bool,
    head_ticks: u32,
    sleep: Pin<Box<Sleep>>,
}

impl<T> TimedIo<T> {
    /// Wraps `inner`; the clocks start now, waiting for the first request head.
    pub fn new(inner: T, timeouts: Timeouts) -> TimedIo<T> {
        let shorter = timeouts.header.min(timeouts.idle);
        let tick = (shorter / TICKS_PER_TIMEOUT).max(Duration::from_millis(1));
        let ticks = |d: Duration| (d.as_nanos().div_ceil(tick.as_nanos()) as u32).max(1);
        TimedIo {
            inner,
            tick,
            header_ticks: ticks(timeouts.header),
            idle_ticks: ticks(timeouts.idle),
            active: false,
            quiet_ticks: 0,
            in_head: true,
            head_ticks: 0,
            sleep: Box::pin(tokio::time::sleep(tick)),
        }
    }

    /// Called while the inner I/O is pending: ready with an error once a limit is passed.
    fn poll_limits(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if std::mem::take(&mut self.active) {
                self.quiet_ticks = 0;
            } else {
                self.quiet_ticks += 1;
                if self.quiet_ticks >= self.idle_ticks {
                    return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle"));
                }
            }
            if self.in_head {
                self.head_ticks += 1;
                if self.head_ticks >= self.header_ticks {
                    return Poll::Ready(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request head not received in time",
                    ));
                }
            }
            let next = Instant::now() + self.tick;
            self.sleep.as_mut().reset(next);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.active = true;
                    if !this.in_head {
                        // The first byte of the next request: its head's clock starts.
                        this.in_head = true;
                        this.head_ticks = 0;
                    }
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_limits(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> TimedIo<T> {
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match poll {
            Poll::Ready(r) => {
                self.active = true;
                // The server answers only once the head is complete.
                self.in_head = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.poll_limits(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
