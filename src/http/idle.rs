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

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// Ticks per timeout: a timeout fires between 1 and 1.25 times its value, never before.
const TICKS_PER_TIMEOUT: u32 = 4;

/// Quiet ticks after which a connection between requests may be parked (its HTTP state
/// dropped until the next request's first byte: see [`crate::http::connection`]).
const PARK_AFTER_TICKS: u32 = 1;

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
    /// Ticks after which the head in progress is too late: `header_ticks` for the first,
    /// which starts with the clock, one more for later ones, which start between two
    /// ticks (the first tick after them may be a moment away and cannot count as a whole).
    head_limit: u32,
    /// Told, at each quiet tick from [`PARK_AFTER_TICKS`] on, that the connection rests
    /// between requests.
    rest: Option<Arc<Notify>>,
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
            head_limit: ticks(timeouts.header),
            rest: None,
            sleep: Box::pin(tokio::time::sleep(tick)),
        }
    }

    /// Notifies `rest` whenever the connection has rested between requests (no byte moving,
    /// no request head begun) for a whole tick or more.
    pub fn notify_rest(&mut self, rest: Arc<Notify>) {
        self.rest = Some(rest);
    }

    /// How long the connection may still go without a byte moving.
    pub fn idle_left(&self) -> Duration {
        self.tick * self.idle_ticks.saturating_sub(self.quiet_ticks)
    }

    /// The wrapped I/O.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped I/O, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
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
                if self.quiet_ticks >= PARK_AFTER_TICKS && !self.in_head {
                    if let Some(rest) = &self.rest {
                        rest.notify_one();
                    }
                }
            }
            if self.in_head {
                self.head_ticks += 1;
                if self.head_ticks >= self.head_limit {
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
                        this.head_limit = this.header_ticks + 1;
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

#[cfg(test)]
mod tests {
    //! The bounds, on tokio's paused clock: time moves only when every task waits, straight
    //! to the next timer, so each case is exact and takes no real time.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const SECOND: Duration = Duration::from_secs(1);

    fn pair(header: Duration, idle: Duration) -> (DuplexStream, TimedIo<DuplexStream>) {
        let (client, server) = tokio::io::duplex(1 << 16);
        (client, TimedIo::new(server, Timeouts { header, idle }))
    }

    /// Reads until the timeout closes the connection; how long that took, and the error.
    async fn time_to_timeout(io: &mut TimedIo<DuplexStream>) -> (Duration, String) {
        let start = Instant::now();
        let mut buf = [0u8; 64];
        loop {
            match io.read(&mut buf).await {
                Ok(0) => panic!("closed without a timeout"),
                Ok(_) => continue,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
                    return (start.elapsed(), e.to_string());
                }
            }
        }
    }

    fn assert_within(took: Duration, limit: Duration) {
        assert!(
            took >= limit && took <= limit * 5 / 4,
            "fired after {took:?}, for a limit of {limit:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn first_head_times_out_at_the_header_timeout() {
        let (_client, mut io) = pair(SECOND, 60 * SECOND);
        let (took, why) = time_to_timeout(&mut io).await;
        assert_within(took, SECOND);
        assert!(why.contains("request head"), "{why}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_head_is_never_cut_early_whatever_the_tick_phase() {
        // Ticks are 250 ms apart; the next request starts at every phase between two.
        for phase_ms in [0, 1, 60, 125, 200, 249] {
            let (mut client, mut io) = pair(SECOND, 60 * SECOND);
            client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            let mut buf = [0u8; 64];
            assert!(io.read(&mut buf).await.unwrap() > 0);
            io.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            tokio::time::advance(Duration::from_millis(1000 + phase_ms)).await;
            client.write_all(b"G").await.unwrap();
            assert_eq!(io.read(&mut buf).await.unwrap(), 1);
            // No time passes on the paused clock until everything waits: the head's clock
            // started with that byte.
            let (took, why) = time_to_timeout(&mut io).await;
            assert_within(took, SECOND);
            assert!(why.contains("request head"), "phase {phase_ms} ms: {why}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_head_still_times_out() {
        let (mut client, mut io) = pair(SECOND, 60 * SECOND);
        let trickle = tokio::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if client.write_all(b"X").await.is_err() {
                    return;
                }
            }
        });
        let (took, why) = time_to_timeout(&mut io).await;
        assert_within(took, SECOND);
        assert!(why.contains("request head"), "{why}");
        trickle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connection_closes_within_its_bounds_and_a_moving_one_never() {
        for phase_ms in [0, 1, 300, 499] {
            let (mut client, mut io) = pair(SECOND, 2 * SECOND);
            client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            let mut buf = [0u8; 64];
            assert!(io.read(&mut buf).await.unwrap() > 0);
            tokio::time::advance(Duration::from_millis(phase_ms)).await;
            // The answer goes out: the head is over, and the last byte moved now.
            io.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            let (took, why) = time_to_timeout(&mut io).await;
            assert_within(took, 2 * SECOND);
            assert!(why.contains("idle"), "phase {phase_ms} ms: {why}");
        }

        // A slow download: a byte out every 1.5 s for 18 s under a 2 s idle timeout, while
        // the server also waits for the client's next request (as hyper does).
        let (mut client, mut io) = pair(SECOND, 2 * SECOND);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(io.read(&mut buf).await.unwrap() > 0);
        let (mut reader, mut writer) = tokio::io::split(io);
        let start = Instant::now();
        let last_write = tokio::spawn(async move {
            for _ in 0..13 {
                writer.write_all(b"x").await.unwrap();
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            Instant::now() - Duration::from_millis(1500)
        });
        let err = reader.read(&mut buf).await.unwrap_err();
        let closed = Instant::now();
        let last_write = last_write.await.unwrap();
        assert!(err.to_string().contains("idle"), "{err}");
        assert!(
            closed - start > Duration::from_secs(18),
            "closed during the download"
        );
        assert_within(closed - last_write, 2 * SECOND);
        drop(client);
    }
}
