//! The response body: empty, bytes already in memory, or a file on disk. One enum rather
//! than a boxed trait object, so the common in-memory response allocates nothing. An
//! optional hook runs with the bytes the socket took, once the last one was written or the
//! connection failed ([`crate::delivery`]): that is how the access log and metrics see the
//! true end of a download.
//!
//! A file body has two modes. On a server connection it yields placeholders that the
//! connection sends with `sendfile` ([`crate::sendfile`]); anywhere else (the tower service
//! used on its own) it reads the file in chunks on the blocking pool.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::task::JoinHandle;

use crate::delivery::Delivery;
use crate::file_id::FileId;
use crate::sendfile::{Segment, Segments, PLACEHOLDER_MAX};

/// Size of each read in the reading mode. With one chunk read ahead and one or two being
/// written, a download holds at most about three chunks (768 KiB).
const CHUNK: u64 = 256 * 1024;

/// Called once at the end: bytes the socket took and whether that was the whole body.
pub type OnComplete = Box<dyn FnOnce(u64, bool) + Send>;

/// A response body.
pub struct Body {
    kind: Kind,
    /// Bytes handed to hyper.
    sent: u64,
    on_complete: Option<OnComplete>,
    /// The connection's queue, once [`Body::deliver_through`] named it.
    outbox: Option<Arc<Segments>>,
    /// The hook on its way to the socket: made at the first chunk of a recorded body.
    delivery: Option<Arc<Delivery>>,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    File(FileStream),
}

impl Body {
    /// No body.
    pub fn empty() -> Body {
        Body {
            kind: Kind::Empty,
            sent: 0,
            on_complete: None,
            outbox: None,
            delivery: None,
        }
    }

    /// A body already in memory.
    pub fn full(bytes: Bytes) -> Body {
        if bytes.is_empty() {
            // hyper never polls a body it knows is empty: as `Empty`, it is still logged
            // as complete.
            return Body::empty();
        }
        Body {
            kind: Kind::Full(Some(bytes)),
            sent: 0,
            on_complete: None,
            outbox: None,
            delivery: None,
        }
    }

    /// `len` bytes of `file` from `offset`: read in a background thread, or sent with
    /// `sendfile` after [`Body::use_sendfile`]. The file must keep identity `id` until the
    /// last byte is sent; if it changes, the body ends with an error (the connection is cut)
    /// rather than mix two versions.
    pub fn file(file: Arc<File>, id: FileId, offset: u64, len: u64) -> Body {
        Body {
            kind: Kind::File(FileStream::new(file, id, offset, len)),
            sent: 0,
            on_complete: None,
            outbox: None,
            delivery: None,
        }
    }

    /// Sends the body on the connection that owns `segments` (see [`crate::sendfile`]): a
    /// file with `sendfile`, and a recorded body's end known by what the socket took.
    /// Only that connection's [`crate::sendfile::SendfileIo`] may write the body afterwards.
    pub fn deliver_through(&mut self, segments: &Arc<Segments>) {
        // Only before the first chunk: switching mid-body would reorder bytes.
        if self.sent > 0 {
            return;
        }
        if let Kind::File(f) = &mut self.kind {
            if f.reading.is_some() {
                return;
            }
            f.sendfile = Some(segments.clone());
        }
        self.outbox = Some(segments.clone());
    }

    /// The delivery the next chunk travels with: made from the hook at the first chunk,
    /// when the body is recorded and sent through a connection's queue.
    fn delivery(&mut self) -> Option<Arc<Delivery>> {
        if self.delivery.is_none() && self.outbox.is_some() {
            let total = self.len();
            self.delivery = self
                .on_complete
                .take()
                .map(|h| Arc::new(Delivery::new(h, total)));
        }
        self.delivery.clone()
    }

    /// Runs `hook` when the body is dropped.
    pub fn on_complete(&mut self, hook: OnComplete) {
        self.on_complete = Some(hook);
    }

    /// The body's exact length.
    pub fn len(&self) -> u64 {
        match &self.kind {
            Kind::Empty => 0,
            Kind::Full(b) => b.as_ref().map_or(0, |b| b.len() as u64),
            Kind::File(f) => f.remaining,
        }
    }

    /// Whether the body has no bytes left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let done = match &self.kind {
            Kind::Empty => true,
            Kind::Full(b) => b.is_none(),
            Kind::File(f) => f.remaining == 0,
        };
        if let Some(delivery) = self.delivery.take() {
            // The hook runs when the socket has taken the chunks still queued, or at once.
            delivery.body_done(done);
        } else if let Some(hook) = self.on_complete.take() {
            // Nothing was handed over (an empty body, or none was asked for), or the body
            // went out without a connection's queue.
            hook(self.sent, done);
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let delivery = this.delivery();
        let chunk = match &mut this.kind {
            Kind::Empty => None,
            Kind::Full(b) => {
                let chunk = b.take();
                if let (Some(c), Some(d), Some(outbox)) = (&chunk, &delivery, &this.outbox) {
                    outbox.push_memory(c, d.clone());
                }
                chunk
            }
            Kind::File(f) => ready!(f.poll_chunk(cx, delivery)?),
        };
        if let Some(c) = &chunk {
            this.sent += c.len() as u64;
        }
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(b) => b.is_none(),
            Kind::File(f) => f.remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len())
    }
}

struct FileStream {
    file: Arc<File>,
    /// The identity the file must keep.
    id: FileId,
    /// Where the next chunk starts.
    offset: u64,
    /// Bytes not yet handed to hyper.
    remaining: u64,
    /// A read in flight on the blocking pool.
    reading: Option<ReadTask>,
    /// Set when the connection sends files with `sendfile`: chunks are then placeholders.
    sendfile: Option<Arc<Segments>>,
    /// Buffers of earlier chunks, oldest first. Once hyper has written and dropped a
    /// chunk, its buffer is reused in place: a fresh 256 KiB buffer per chunk would be a
    /// fresh mmap with musl's allocator (page faults and zeroing on every chunk, an munmap
    /// after it), which measured 3-4 times slower than nginx on a 100 MB download.
    spare: VecDeque<BytesMut>,
}

/// A chunk being read on the blocking pool: the filled buffer.
type ReadTask = JoinHandle<io::Result<BytesMut>>;

/// Buffers kept per download. Hyper may hold two chunks in its write queue while the next
/// one is read, so three buffers usually leave one free to reuse.
const SPARE: usize = 3;

/// Reads exactly `len` bytes at `offset` into `buf`, off the runtime's threads.
/// Positioned reads (`pread`), so one descriptor can serve many responses at once. A file
/// that has shrunk is an `UnexpectedEof` error, one that changed otherwise is an error too:
/// the response then ends with an error rather than a short or mixed body passed off as
/// complete.
fn read_chunk(file: Arc<File>, id: FileId, offset: u64, len: u64, mut buf: BytesMut) -> ReadTask {
    tokio::task::spawn_blocking(move || {
        // One read of the whole chunk: `read_to_end` would start at 8 KiB and double, six
        // reads per chunk.
        buf.clear();
        buf.resize(len as usize, 0);
        file.read_exact_at(&mut buf, offset)?;
        if !id.same_bytes(&file)? {
            return Err(FileId::changed());
        }
        Ok(buf)
    })
}

impl FileStream {
    fn new(file: Arc<File>, id: FileId, offset: u64, len: u64) -> FileStream {
        FileStream {
            file,
            id,
            offset,
            remaining: len,
            reading: None,
            sendfile: None,
            spare: VecDeque::new(),
        }
    }

    /// Starts reading the next chunk, into a spare buffer that no chunk points into any
    /// more if there is one, else into a new one.
    fn start_read(&mut self) {
        let len = self.remaining.min(CHUNK);
        let free = self
            .spare
            .iter_mut()
            .position(|b| b.try_reclaim(len as usize));
        let buf = match free.and_then(|i| self.spare.remove(i)) {
            Some(buf) => buf,
            None => BytesMut::with_capacity(len as usize),
        };
        let file = self.file.clone();
        self.reading = Some(read_chunk(file, self.id, self.offset, len, buf));
    }

    /// The next placeholder chunk, recorded in `segments` for the connection to send.
    fn next_placeholder(&mut self, segments: &Segments, delivery: Option<Arc<Delivery>>) -> Bytes {
        let len = self.remaining.min(PLACEHOLDER_MAX as u64);
        let segment = Segment {
            file: self.file.clone(),
            id: self.id,
            offset: self.offset,
            len,
        };
        self.offset += len;
        self.remaining -= len;
        segments.push(segment, delivery)
    }

    /// The next chunk: a placeholder on a connection that sends files with `sendfile`,
    /// else bytes read from the file.
    fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
        delivery: Option<Arc<Delivery>>,
    ) -> Poll<io::Result<Option<Bytes>>> {
        if let Some(segments) = self.sendfile.clone() {
            if self.remaining == 0 {
                return Poll::Ready(Ok(None));
            }
            return Poll::Ready(Ok(Some(self.next_placeholder(&segments, delivery))));
        }
        let Some(handle) = &mut self.reading else {
            if self.remaining == 0 {
                return Poll::Ready(Ok(None));
            }
            self.start_read();
            return self.poll_chunk(cx, delivery);
        };
        let result = ready!(Pin::new(handle).poll(cx)).map_err(io::Error::other);
        self.reading = None;
        let mut filled = match result.and_then(|r| r) {
            Ok(read) => read,
            Err(e) => {
                self.remaining = 0;
                return Poll::Ready(Err(e));
            }
        };
        let chunk = filled.split().freeze();
        if self.spare.len() == SPARE {
            self.spare.pop_front();
        }
        self.spare.push_back(filled);
        self.offset += chunk.len() as u64;
        self.remaining -= chunk.len() as u64;
        // Read ahead: the next chunk comes off the disk while hyper writes this one.
        if self.remaining > 0 {
            self.start_read();
        }
        Poll::Ready(Ok(Some(chunk)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::future::poll_fn;
    use std::io::Write;

    fn pattern(len: usize) -> Vec<u8> {
        // Distinct bytes in every chunk, so a reused buffer shows up as a mismatch.
        (0..len).map(|i| (i * 31 + i / 4093) as u8).collect()
    }

    /// A temporary file with `bytes`, open, and its identity.
    fn file_of(bytes: &[u8]) -> (tempfile::NamedTempFile, Arc<File>, FileId) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let file = File::open(f.path()).unwrap();
        let id = FileId::of(&file.metadata().unwrap());
        (f, Arc::new(file), id)
    }

    async fn next(body: &mut Body) -> Option<io::Result<Bytes>> {
        let frame = poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        Some(frame.map(|f| f.into_data().expect("data frame")))
    }

    #[tokio::test]
    async fn chunks_held_by_the_writer_are_never_overwritten() {
        let data = pattern(9 * CHUNK as usize + 1234);
        let (_f, file, id) = file_of(&data);
        let mut body = Body::file(file, id, 100, data.len() as u64 - 100);
        // Keep every chunk alive, as a slow socket would: no buffer may be reused.
        let mut held = Vec::new();
        while let Some(chunk) = next(&mut body).await {
            held.push(chunk.unwrap());
        }
        assert_eq!(held.len(), 10);
        assert!(
            held.concat() == data[100..],
            "held chunks changed under the writer"
        );
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn buffers_are_reused_once_chunks_are_dropped() {
        let data = pattern(12 * CHUNK as usize);
        let (_f, file, id) = file_of(&data);
        let mut body = Body::file(file, id, 0, data.len() as u64);
        let mut seen = Vec::new();
        let mut addresses = std::collections::HashSet::new();
        while let Some(chunk) = next(&mut body).await {
            let chunk = chunk.unwrap();
            addresses.insert(chunk.as_ptr() as usize);
            seen.extend_from_slice(&chunk);
        }
        assert!(seen == data);
        // The next read starts while the chunk just returned is still out, and this reader
        // drops each chunk before asking for the next: two buffers, taking turns.
        assert_eq!(
            addresses.len(),
            2,
            "twelve chunks in {} buffers",
            addresses.len()
        );
    }

    #[tokio::test]
    async fn a_file_that_shrank_ends_with_an_error_not_a_short_body() {
        let data = pattern(3 * CHUNK as usize);
        let (f, file, id) = file_of(&data);
        let mut body = Body::file(file, id, 0, data.len() as u64 + 10);
        let mut sent = 0;
        let err = loop {
            match next(&mut body).await {
                Some(Ok(chunk)) => sent += chunk.len(),
                Some(Err(e)) => break e,
                None => panic!("body ended without an error after {sent} bytes"),
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // Whole chunks that were still there went out; the missing tail is the error.
        assert_eq!(sent, data.len());
        assert!(next(&mut body).await.is_none(), "no frame after the error");
        drop(f);
    }
}
