//! When a response has really left: the access log and the metrics are written once the
//! last byte of its body is written to the socket (or the connection fails first), with the
//! bytes the socket took, not the bytes handed to hyper, which may sit in its queue or be
//! lost with the connection.
//!
//! A [`Delivery`] holds the record's hook. The body holds one reference, and every chunk it
//! has handed to the connection's queue ([`crate::http::sendfile::Segments`]) holds another until
//! the socket has taken all of that chunk. The hook runs when the last reference goes: the
//! body done with, and its last chunk written, or dropped unwritten with the connection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Called once at the end: bytes the socket took and whether that was the whole body.
pub type OnComplete = Box<dyn FnOnce(u64, bool) + Send>;

/// One response body's way to the socket.
pub struct Delivery {
    hook: Mutex<Option<OnComplete>>,
    /// The body's length.
    total: u64,
    /// Bytes the socket has taken.
    written: AtomicU64,
    /// Whether the body handed over all its bytes (it did not end with an error).
    handed_over: AtomicBool,
}

impl Delivery {
    /// A delivery of `total` bytes that calls `hook(written, complete)` at its end.
    pub fn new(hook: OnComplete, total: u64) -> Delivery {
        Delivery {
            hook: Mutex::new(Some(hook)),
            total,
            written: AtomicU64::new(0),
            handed_over: AtomicBool::new(false),
        }
    }

    /// `n` more bytes written to the socket.
    pub fn wrote(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }

    /// The body is done: `whole` if it handed over every byte.
    pub fn body_done(&self, whole: bool) {
        self.handed_over.store(whole, Ordering::Relaxed);
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let written = *self.written.get_mut();
        let complete = *self.handed_over.get_mut() && written == self.total;
        let hook = self
            .hook
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(hook) = hook {
            hook(written, complete);
        }
    }
}
