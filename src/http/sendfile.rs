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
//!
//! The scheme rests on one assumption about hyper: over a writer that says it is vectored,
//! body chunks are queued by reference and written with `poll_write_vectored`. Were a chunk
//! ever copied (a layer that is not vectored makes hyper flatten its buffers; so might a
//! TLS or buffering layer, or another hyper version), clients would get the placeholder's
//! zeros under a valid ETag. So it is checked at run time, and a broken assumption ends the
//! connection, never sends wrong bytes:
//! - where each connection is built, [`require_vectored`] on the I/O handed to hyper;
//! - a placeholder must be exactly the rest of the chunk the front segment was given
//!   (address and length), and a placeholder with no segment is an error;
//! - a plain `poll_write` while a segment waits means hyper flattened (copied) its queue:
//!   the write is refused.

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

use crate::cache::file_id::FileId;
use crate::http::delivery::Delivery;

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

/// A body chunk handed to hyper, until the socket has taken all of it.
struct Queued {
    kind: Chunk,
    /// The chunk's length when it was handed over.
    chunk_len: u64,
    /// The response it belongs to, when that response is recorded.
    delivery: Option<Arc<Delivery>>,
}

enum Chunk {
    /// A placeholder for these file bytes; the segment's `len` is what is left.
    File(Segment),
    /// Bytes in memory, recognised by address; `left` of them are still to be written.
    Memory { start: usize, left: u64 },
}

impl Queued {
    /// Bytes of the chunk still to be written.
    fn left(&self) -> u64 {
        match &self.kind {
            Chunk::File(s) => s.len,
            Chunk::Memory { left, .. } => *left,
        }
    }

    /// Where the rest of the chunk starts: in the placeholder region for a file.
    fn next_address(&self) -> usize {
        let done = (self.chunk_len - self.left()) as usize;
        match &self.kind {
            Chunk::File(_) => placeholder().as_ptr() as usize + done,
            Chunk::Memory { start, .. } => start + done,
        }
    }

    /// Whether `buf` is exactly the part of this file chunk's placeholder still to go.
    fn expects_placeholder(&self, buf: &[u8]) -> bool {
        matches!(self.kind, Chunk::File(_))
            && buf.as_ptr() as usize == self.next_address()
            && buf.len() as u64 == self.left()
    }

    /// Records `n` bytes of the chunk written; true when none is left.
    fn wrote(&mut self, n: u64) -> bool {
        if let Some(d) = &self.delivery {
            d.wrote(n);
        }
        match &mut self.kind {
            Chunk::File(s) => {
                s.offset += n;
                s.len -= n;
            }
            Chunk::Memory { left, .. } => *left -= n,
        }
        self.left() == 0
    }
}

/// One connection's queue of body chunks (file placeholders, and memory chunks of recorded
/// responses), in the order hyper will write them.
#[derive(Default)]
pub struct Segments {
    queue: Mutex<VecDeque<Queued>>,
}

impl Segments {
    /// Records `segment` and returns the placeholder chunk hyper is to write for it.
    pub fn push(&self, segment: Segment, delivery: Option<Arc<Delivery>>) -> Bytes {
        assert!(
            segment.len > 0 && segment.len <= PLACEHOLDER_MAX as u64,
            "placeholder chunks are 1 byte to PLACEHOLDER_MAX"
        );
        let chunk = Bytes::from_static(&placeholder()[..segment.len as usize]);
        let chunk_len = segment.len;
        self.lock().push_back(Queued {
            kind: Chunk::File(segment),
            chunk_len,
            delivery,
        });
        chunk
    }

    /// Records a memory chunk of a recorded response, so that its bytes count once the
    /// socket takes them. hyper passes it by reference: its address identifies it.
    pub fn push_memory(&self, chunk: &Bytes, delivery: Arc<Delivery>) {
        if chunk.is_empty() {
            return;
        }
        self.lock().push_back(Queued {
            kind: Chunk::Memory {
                start: chunk.as_ptr() as usize,
                left: chunk.len() as u64,
            },
            chunk_len: chunk.len() as u64,
            delivery: Some(delivery),
        });
    }

    /// Counts what a write of `n` bytes from `bufs` took of the memory chunks at the front
    /// (the response heads between them are hyper's own bytes and count for nothing).
    fn wrote_memory(&self, bufs: &[IoSlice<'_>], mut n: usize) {
        let mut queue = self.lock();
        for buf in bufs {
            if n == 0 {
                break;
            }
            let taken = buf.len().min(n);
            n -= taken;
            let Some(front) = queue.front_mut() else {
                return;
            };
            if matches!(front.kind, Chunk::Memory { .. })
                && buf.as_ptr() as usize == front.next_address()
                && front.wrote(taken as u64)
            {
                queue.pop_front();
            }
        }
    }

    /// Whether no body chunk waits for the socket.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Queued>> {
        // A panic elsewhere cannot leave the queue half-changed: push and pop are single
        // calls. (panic=abort in release anyway.)
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A TCP stream that sends placeholder chunks with `sendfile`.
pub struct SendfileIo {
    stream: TcpStream,
    segments: Arc<Segments>,
    /// Bytes read from the socket but not used yet (by a connection that was parked), read
    /// again before the socket.
    unread: Bytes,
}

impl SendfileIo {
    /// Wraps `stream`; file bodies of this connection must use `segments`.
    pub fn new(stream: TcpStream, segments: Arc<Segments>) -> SendfileIo {
        SendfileIo {
            stream,
            segments,
            unread: Bytes::new(),
        }
    }

    /// Puts `bytes` back in front of what is still to be read.
    pub fn unread(&mut self, bytes: Bytes) {
        debug_assert!(self.unread.is_empty());
        self.unread = bytes;
    }

    /// Waits until the socket has bytes to read (or an error or EOF to report).
    pub async fn readable(&self) -> io::Result<()> {
        self.stream.readable().await
    }

    /// Sends the file bytes the placeholder `buf` stands for (some of them, as `write` may).
    fn poll_send_segment(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut queue = self.segments.lock();
        let Some(front) = queue.front_mut() else {
            // A placeholder with no segment: sending zeros would corrupt the response; end
            // the connection instead.
            return Poll::Ready(Err(io::Error::other("placeholder without a file segment")));
        };
        if !front.expects_placeholder(buf) {
            return Poll::Ready(Err(io::Error::other(
                "placeholder out of step with its file segment (a chunk was split, copied or \
                 reordered above the socket)",
            )));
        }
        let Chunk::File(segment) = &front.kind else {
            unreachable!("expects_placeholder checked it is a file chunk")
        };
        let count = buf.len();
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
                    if front.wrote(n as u64) {
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
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.remaining());
            buf.put_slice(&self.unread.split_to(n));
            return Poll::Ready(Ok(()));
        }
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
            return self.poll_send_segment(cx, buf);
        }
        if !self.segments.lock().is_empty() {
            // Over this writer hyper only writes vectored; a plain write with a file chunk
            // pending is a flattened copy: its zeros must not leave.
            return Poll::Ready(Err(io::Error::other(
                "plain write while a file chunk waits: a layer above is not vectored and \
                 hyper copied the placeholder",
            )));
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
        let real = match bufs.iter().position(|b| is_placeholder(b)) {
            Some(0) => return self.poll_send_segment(cx, &bufs[0]),
            Some(n) => &bufs[..n],
            None => bufs,
        };
        let written = if real.len() < bufs.len() {
            ready!(self.poll_write_more(cx, real))?
        } else {
            ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, real))?
        };
        self.segments.wrote_memory(real, written);
        Poll::Ready(Ok(written))
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

/// Checks, where a connection is built, that the I/O handed to hyper is vectored all the way
/// down to [`SendfileIo`], which is what makes hyper pass file chunks by reference.
pub fn require_vectored(io: &impl hyper::rt::Write) -> io::Result<()> {
    if io.is_write_vectored() {
        Ok(())
    } else {
        Err(io::Error::other(
            "the connection's I/O is not vectored: hyper would copy file placeholders",
        ))
    }
}

#[cfg(test)]
mod tests;
