//! The response body: empty, bytes already in memory, or a file streamed from disk. One
//! enum rather than a boxed trait object, so the common in-memory response allocates
//! nothing. An optional hook runs when the body is dropped, with the bytes actually sent,
//! which is how the access log and metrics see the true end of a long download.

use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::task::JoinHandle;

/// Size of each read from a streamed file. With one chunk read ahead and one being written,
/// a download holds at most about three chunks (768 KiB). Measured on a 100 MB file: 64 KiB
/// reads through tokio::fs gave ~0.9 GB/s, 256 KiB with read-ahead ~1.2-1.5 GB/s, 512 KiB
/// little more for twice the memory.
const CHUNK: u64 = 256 * 1024;

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
    /// Bytes not yet handed to hyper.
    remaining: u64,
}

enum FileState {
    Start {
        path: Arc<Path>,
        offset: u64,
    },
    /// A read on the blocking pool: it opens the file on the first call, and hands the file
    /// back with the chunk so the next read can continue where it stopped.
    Reading(JoinHandle<io::Result<(std::fs::File, Bytes)>>),
    Done,
}

/// Where the next chunk comes from.
enum Source {
    /// The first read: open this path and seek to this offset.
    Path(Arc<Path>, u64),
    /// Later reads: the open file, positioned after the last chunk.
    File(std::fs::File),
}

/// Reads up to `len` bytes from `source`, off the runtime's threads.
fn read_chunk(source: Source, len: u64) -> JoinHandle<io::Result<(std::fs::File, Bytes)>> {
    tokio::task::spawn_blocking(move || {
        let mut file = match source {
            Source::File(f) => f,
            Source::Path(path, offset) => {
                let mut f = std::fs::File::open(&path)?;
                f.seek(SeekFrom::Start(offset))?;
                f
            }
        };
        let mut buf = Vec::with_capacity(len as usize);
        (&mut file).take(len).read_to_end(&mut buf)?;
        Ok((file, Bytes::from(buf)))
    })
}

impl FileStream {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        loop {
            match &mut self.state {
                FileState::Done => return Poll::Ready(Ok(None)),
                FileState::Start { .. } if self.remaining == 0 => self.state = FileState::Done,
                FileState::Start { path, offset } => {
                    let source = Source::Path(path.clone(), *offset);
                    let handle = read_chunk(source, self.remaining.min(CHUNK));
                    self.state = FileState::Reading(handle);
                }
                FileState::Reading(handle) => {
                    let (file, chunk) =
                        ready!(Pin::new(handle).poll(cx)).map_err(io::Error::other)??;
                    if chunk.is_empty() {
                        // The file shrank since the index was built: end the response
                        // with an error rather than send a short body as if complete.
                        self.state = FileState::Done;
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                    self.remaining -= chunk.len() as u64;
                    // Read ahead: the next chunk comes off the disk while hyper writes
                    // this one to the socket.
                    self.state = if self.remaining > 0 {
                        FileState::Reading(read_chunk(
                            Source::File(file),
                            self.remaining.min(CHUNK),
                        ))
                    } else {
                        FileState::Done
                    };
                    return Poll::Ready(Ok(Some(chunk)));
                }
            }
        }
    }
}
