//! The response body: empty, bytes already in memory, or a file on disk. One enum rather
//! than a boxed trait object, so the common in-memory response allocates nothing. An
//! optional hook runs with the bytes the socket took, once the last one was written or the
//! connection failed ([`crate::http::delivery`]): that is how the access log and metrics see the
//! true end of a download.
//!
//! A file body yields placeholders that its connection sends with `sendfile`
//! ([`crate::http::sendfile`]): it must be given that connection's queue
//! ([`Body::deliver_through`]) before hyper polls it; polled without one it fails, as no
//! bytes of the file could go out.

use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

pub use crate::http::delivery::OnComplete;

use crate::cache::file_id::FileId;
use crate::http::delivery::Delivery;
use crate::http::sendfile::{Segment, Segments, PLACEHOLDER_MAX};

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

impl Default for Body {
    /// No body (what tower-http's CORS layer answers a preflight with).
    fn default() -> Body {
        Body::empty()
    }
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

    /// `len` bytes of `file` from `offset`, sent with `sendfile` by the connection named in
    /// [`Body::deliver_through`]. The file must keep identity `id` until the last byte is
    /// sent; if it changes, the connection is cut rather than mix two versions.
    pub fn file(file: Arc<File>, id: FileId, offset: u64, len: u64) -> Body {
        Body {
            kind: Kind::File(FileStream::new(file, id, offset, len)),
            sent: 0,
            on_complete: None,
            outbox: None,
            delivery: None,
        }
    }

    /// Sends the body on the connection that owns `segments` (see [`crate::http::sendfile`]): a
    /// file with `sendfile`, and a recorded body's end known by what the socket took.
    /// Only that connection's [`crate::http::sendfile::SendfileIo`] may write the body afterwards.
    pub fn deliver_through(&mut self, segments: &Arc<Segments>) {
        // Only before the first chunk: switching mid-body would reorder bytes.
        if self.sent > 0 {
            return;
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
        _cx: &mut Context<'_>,
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
            Kind::File(f) => match &this.outbox {
                Some(outbox) => f.next_placeholder(outbox, delivery),
                None => {
                    return Poll::Ready(Some(Err(io::Error::other(
                        "a file body polled without its connection's queue",
                    ))))
                }
            },
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
}

impl FileStream {
    fn new(file: Arc<File>, id: FileId, offset: u64, len: u64) -> FileStream {
        FileStream {
            file,
            id,
            offset,
            remaining: len,
        }
    }

    /// The next placeholder chunk, recorded in `segments` for the connection to send;
    /// `None` at the end.
    fn next_placeholder(
        &mut self,
        segments: &Segments,
        delivery: Option<Arc<Delivery>>,
    ) -> Option<Bytes> {
        if self.remaining == 0 {
            return None;
        }
        let len = self.remaining.min(PLACEHOLDER_MAX as u64);
        let segment = Segment {
            file: self.file.clone(),
            id: self.id,
            offset: self.offset,
            len,
        };
        self.offset += len;
        self.remaining -= len;
        Some(segments.push(segment, delivery))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn poll(body: &mut Body) -> Option<io::Result<Bytes>> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match Pin::new(body).poll_frame(&mut cx) {
            Poll::Ready(frame) => frame.map(|f| f.map(|f| f.into_data().expect("data"))),
            Poll::Pending => panic!("bodies never wait"),
        }
    }

    fn file_body(len: u64) -> Body {
        let f = tempfile::tempfile().unwrap();
        f.set_len(len).unwrap();
        let id = FileId::of(&f.metadata().unwrap());
        Body::file(Arc::new(f), id, 0, len)
    }

    #[test]
    fn a_file_body_needs_its_connection() {
        let mut body = file_body(10);
        assert!(
            poll(&mut body).unwrap().is_err(),
            "no bytes can go out without one"
        );
    }

    #[test]
    fn a_file_body_goes_out_in_placeholders_of_at_most_a_mebibyte() {
        let len = 2 * PLACEHOLDER_MAX as u64 + 12345;
        let mut body = file_body(len);
        let segments = Arc::new(Segments::default());
        body.deliver_through(&segments);
        let mut sizes = Vec::new();
        while let Some(chunk) = poll(&mut body) {
            sizes.push(chunk.unwrap().len() as u64);
        }
        assert_eq!(
            sizes,
            [PLACEHOLDER_MAX as u64, PLACEHOLDER_MAX as u64, 12345]
        );
        assert!(body.is_end_stream());
    }

    #[test]
    fn an_unsent_recorded_body_reports_nothing_sent_when_its_connection_goes() {
        let ended = Arc::new(AtomicBool::new(false));
        let seen = ended.clone();
        let mut body = Body::full(Bytes::from_static(b"0123456789"));
        body.on_complete(Box::new(move |bytes, complete| {
            assert_eq!((bytes, complete), (0, false));
            seen.store(true, Ordering::SeqCst);
        }));
        let segments = Arc::new(Segments::default());
        body.deliver_through(&segments);
        let chunk = poll(&mut body).unwrap().unwrap();
        drop(body);
        assert!(
            !ended.load(Ordering::SeqCst),
            "the chunk is still queued for the socket"
        );
        drop(chunk);
        drop(segments);
        assert!(
            ended.load(Ordering::SeqCst),
            "the connection is gone: recorded"
        );
    }
}
