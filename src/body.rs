//! The response body: empty, bytes already in memory, or a file streamed from disk. One
//! enum rather than a boxed trait object, so the common in-memory response allocates
//! nothing. An optional hook runs when the body is dropped, with the bytes actually sent,
//! which is how the access log and metrics see the true end of a long download.

use std::future::Future;
use std::io::{self, Seek, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::task::JoinHandle;

/// Size of each read from a streamed file.
const CHUNK: u64 = 64 * 1024;

/// Called once when the body is dropped: bytes sent and whether the body was complete.
pub type OnComplete = Box<dyn FnOnce(u64, bool) + Send>;

/// A response body.
pub struct Body {
    kind: Kind,
    sent: u64,
    on_complete: Option<OnComplete>,
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
        }
    }

    /// A body already in memory.
    pub fn full(bytes: Bytes) -> Body {
        Body {
            kind: Kind::Full(Some(bytes)),
            sent: 0,
            on_complete: None,
        }
    }

    /// `len` bytes of the file at `path` from `offset`, read in a background thread.
    pub fn file(path: Arc<Path>, offset: u64, len: u64) -> Body {
        let stream = FileStream {
            state: FileState::Start { path, offset },
            remaining: len,
        };
        Body {
            kind: Kind::File(stream),
            sent: 0,
            on_complete: None,
        }
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
        if let Some(hook) = self.on_complete.take() {
            let done = match &self.kind {
                Kind::Empty => true,
                Kind::Full(b) => b.is_none(),
                Kind::File(f) => f.remaining == 0,
            };
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
        let chunk = match &mut this.kind {
            Kind::Empty => None,
            Kind::Full(b) => b.take(),
            Kind::File(f) => ready!(f.poll_chunk(cx)?),
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
    state: FileState,
    remaining: u64,
}

enum FileState {
    Start { path: Arc<Path>, offset: u64 },
    Opening(JoinHandle<io::Result<std::fs::File>>),
    Reading(tokio::fs::File),
}

impl FileStream {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        loop {
            if self.remaining == 0 {
                return Poll::Ready(Ok(None));
            }
            match &mut self.state {
                FileState::Start { path, offset } => {
                    let (path, offset) = (path.clone(), *offset);
                    // Opening can block on a slow disk: keep it off the runtime's threads.
                    self.state = FileState::Opening(tokio::task::spawn_blocking(move || {
                        let mut file = std::fs::File::open(&path)?;
                        file.seek(SeekFrom::Start(offset))?;
                        Ok(file)
                    }));
                }
                FileState::Opening(handle) => {
                    let file = ready!(Pin::new(handle).poll(cx)).map_err(io::Error::other)??;
                    self.state = FileState::Reading(tokio::fs::File::from_std(file));
                }
                FileState::Reading(file) => {
                    let want = self.remaining.min(CHUNK) as usize;
                    let mut buf = BytesMut::zeroed(want);
                    let mut read_buf = ReadBuf::new(&mut buf);
                    ready!(Pin::new(file).poll_read(cx, &mut read_buf))?;
                    let n = read_buf.filled().len();
                    if n == 0 {
                        // The file shrank since the index was built: end the response
                        // with an error rather than send a short body as if complete.
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                    buf.truncate(n);
                    self.remaining -= n as u64;
                    return Poll::Ready(Ok(Some(buf.freeze())));
                }
            }
        }
    }
}
