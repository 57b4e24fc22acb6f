//! An I/O wrapper that fails a connection once no byte has moved either way for the idle
//! timeout. hyper bounds how long a request head may take, but not how long a keep-alive
//! connection may sit between requests or a client may stall a download; this does both.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How many quiet ticks make a connection idle: the timeout is checked in quarters, so a
/// connection closes between 1 and 1.25 times the timeout after its last byte.
const TICKS: u8 = 4;

/// `T` with an inactivity deadline.
pub struct IdleTimeout<T> {
    inner: T,
    tick: Duration,
    /// Whether any byte moved since the last tick. Activity only sets this flag: the hot
    /// path reads no clock and touches no timer.
    active: bool,
    quiet_ticks: u8,
    sleep: Pin<Box<Sleep>>,
}

impl<T> IdleTimeout<T> {
    /// Wraps `inner`; the clock starts now.
    pub fn new(inner: T, timeout: Duration) -> IdleTimeout<T> {
        let tick = (timeout / TICKS as u32).max(Duration::from_millis(1));
        IdleTimeout {
            inner,
            tick,
            active: false,
            quiet_ticks: 0,
            sleep: Box::pin(tokio::time::sleep(tick)),
        }
    }

    /// Ready with an error once the connection has been quiet for `TICKS` ticks.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if std::mem::take(&mut self.active) {
                self.quiet_ticks = 0;
            } else {
                self.quiet_ticks += 1;
                if self.quiet_ticks >= TICKS {
                    return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle"));
                }
            }
            let next = Instant::now() + self.tick;
            self.sleep.as_mut().reset(next);
        }
    }

    fn track<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Ready(r) => {
                self.active = true;
                Poll::Ready(r)
            }
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.track(cx, poll)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.track(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.track(cx, poll)
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
