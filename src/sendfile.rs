//! Zero-copy file bodies: the kernel sends file pages straight to the socket (`sendfile`)
//! instead of the server reading them into memory and writing them back out.
//!
//! hyper writes whatever bytes a body yields, so the body and the socket agree on a
//! stand-in. A file body, once given its connection's [`Segments`], yields *placeholder*
//! chunks: slices of a private static region that no real data ever points into, each
//! recorded as a [`Segment`] (file, offset, length) in the connection's queue. hyper queues
//! body chunks by reference (its write strategy for vectored sockets) and writes them in
//! order, so when [`SendfileIo`] is asked to write a slice of that region, the front segment
//! says which file bytes it stands for, and `sendfile` sends exactly those. Partial writes
//! stay in step because hyper advances the placeholder by what was reported written.
//!
//! Measured on a 1 MB file (server pinned to one core, wrk -c8): reading into memory and
//! writing out cost one more copy per byte than nginx's `sendfile`, 0.8-0.9× its rate.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use crate::file_id::FileId;

/// Largest placeholder chunk.
pub const PLACEHOLDER_MAX: usize = 1 << 20;

/// The placeholder region. Allocated zeroed at first use rather than a `static` array, which
/// would sit in the binary's read-only data (a megabyte of it). Nothing ever reads or writes
/// it, so its pages are never touched: address space only, no RSS.
fn placeholder() -> &'static [u8] {
    static REGION: OnceLock<&'static [u8]> = OnceLock::new();
    REGION.get_or_init(|| vec![0; PLACEHOLDER_MAX].leak())
}

/// Whether `slice` lies in the placeholder region.
fn is_placeholder(slice: &[u8]) -> bool {
    let start = placeholder().as_ptr() as usize;
    let p = slice.as_ptr() as usize;
    !slice.is_empty() && p >= start && p < start + PLACEHOLDER_MAX
}

/// The file bytes one placeholder chunk stands for.
pub struct Segment {
    /// The open file, shared by the chunks of one response.
    pub file: Arc<File>,
    /// The identity it must keep: checked after every `sendfile`, so a file rewritten in
    /// place cuts the response instead of mixing versions under one ETag.
    pub id: FileId,
    /// Where the next byte to send is.
    pub offset: u64,
    /// Bytes left to send.
    pub len: u64,
}

/// One connection's queue of segments, in the order hyper will write them.
#[derive(Default)]
pub struct Segments {
    queue: Mutex<VecDeque<Segment>>,
}

impl Segments {
    /// Records `segment` and returns the placeholder chunk hyper is to write for it.
    pub fn push(&self, segment: Segment) -> Bytes {
        assert!(
            segment.len > 0 && segment.len <= PLACEHOLDER_MAX as u64,
            "placeholder chunks are 1 byte to PLACEHOLDER_MAX"
        );
        let chunk = Bytes::from_static(&placeholder()[..segment.len as usize]);
        self.lock().push_back(segment);
        chunk
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Segment>> {
        // A panic elsewhere cannot leave the queue half-changed: push and pop are single
        // calls. (panic=abort in release anyway.)
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A TCP stream that sends placeholder chunks with `sendfile`.
pub struct SendfileIo {
    stream: TcpStream,
    segments: Arc<Segments>,
}

impl SendfileIo {
    /// Wraps `stream`; file bodies of this connection must use `segments`.
    pub fn new(stream: TcpStream, segments: Arc<Segments>) -> SendfileIo {
        SendfileIo { stream, segments }
    }

    /// Sends up to `max` bytes of the front segment.
    fn poll_send_segment(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<usize>> {
        let mut queue = self.segments.lock();
        let Some(segment) = queue.front_mut() else {
            // A placeholder with no segment: a bug, and sending zeros would corrupt the
            // response; end the connection instead.
            return Poll::Ready(Err(io::Error::other("placeholder without a file segment")));
        };
        let count = (segment.len as usize).min(max);
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            let socket = self.stream.as_raw_fd();
            let file = segment.file.as_raw_fd();
            let mut offset = segment.offset as libc::off_t;
            let sent = self.stream.try_io(Interest::WRITABLE, || {
                // SAFETY: both descriptors are open for the duration of the call (the
                // stream and the Arc<File> are borrowed), and `offset` is a valid off_t
                // the kernel updates; sendfile does not touch the file's own position.
                let n = unsafe { libc::sendfile(socket, file, &mut offset, count) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match sent {
                Ok(0) => {
                    // The file ends before the length announced in Content-Length: it
                    // shrank since it was looked up. Cut the connection, never pad.
                    return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(n) => {
                    // After every send: a file changed in place, before or during it, cuts
                    // the response short (its bytes may be mixed, but never passed off as
                    // complete under the old headers).
                    if !segment.id.same_bytes(&segment.file)? {
                        return Poll::Ready(Err(FileId::changed()));
                    }
                    segment.offset += n as u64;
                    segment.len -= n as u64;
                    if segment.len == 0 {
                        queue.pop_front();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl SendfileIo {
    /// Writes `bufs` with `MSG_MORE`: the file data follows at once, so the kernel holds the
    /// response head back to share a packet with it instead of sending it on its own.
    fn poll_write_more(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            let socket = self.stream.as_raw_fd();
            let sent = self.stream.try_io(Interest::WRITABLE, || {
                // SAFETY: IoSlice is ABI-compatible with iovec on Unix (documented), the
                // slices outlive the call, and the header is fully initialised.
                let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
                msg.msg_iovlen = bufs.len() as _;
                let n = unsafe { libc::sendmsg(socket, &msg, libc::MSG_MORE | libc::MSG_NOSIGNAL) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for SendfileIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if is_placeholder(buf) {
            return self.poll_send_segment(cx, buf.len());
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Real bytes up to the first placeholder go out in one writev; a placeholder at the
        // front goes out by sendfile. hyper calls again for whatever is left.
        match bufs.iter().position(|b| is_placeholder(b)) {
            Some(0) => self.poll_send_segment(cx, bufs[0].len()),
            Some(n) => self.poll_write_more(cx, &bufs[..n]),
            None => Pin::new(&mut self.stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        // Must stay true: it makes hyper queue body chunks by reference instead of copying
        // them into its own buffer, which would turn placeholders into zeros.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
