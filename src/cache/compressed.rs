//! gzip for sites without precompressed files (`--compress auto`): a compressible file is
//! compressed once per content ETag, on a thread of its own, and the result is kept, within
//! its share of `--cache-max`, with an ETag of its own bytes. Until it is ready the file
//! goes out as it is: never a chunked stream compressed on the way, which would have no
//! length, no ranges and no stable ETag. What the results hold is held back from the
//! files' budget, so together they stay within `--cache-max`.
//!
//! What is kept is checked, not assumed: the bytes compressed are hashed again and must be
//! the ETag the request saw, so a file edited meanwhile never gets another version's gzip.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use bytes::Bytes;

use crate::cache::entry::Asset;
use crate::cache::mapped::PageSize;
use crate::cache::{Cache, Content};
use crate::files::resolve::{self, Etag};

/// Smallest file worth compressing: below it the gzip header and a round trip's worth of
/// bytes save nothing.
pub const MIN_LEN: u64 = 512;

/// Largest file compressed: 2 MiB, so one job holds the thread for about 20 ms at most.
pub const MAX_LEN: u64 = 2 << 20;

/// What each kept result costs beyond its bytes (map slot, queue slot, ETag).
const ENTRY_BYTES: u64 = 128;

/// The most of `--cache-max` compressed bytes may use, as a divisor (an eighth).
pub const SHARE: u64 = 8;

/// Whether a file of `content_type` is worth compressing: text and the textual formats
/// sites ship; never images, fonts in compressed containers, archives or media.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/ld+json"
                | "application/manifest+json"
                | "application/xml"
                | "application/rss+xml"
                | "application/atom+xml"
                | "application/wasm"
                | "application/x-javascript"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "font/ttf"
                | "font/otf"
        )
}

/// One file's gzip, or the finding that it does not pay.
enum Kept {
    Gzip { bytes: Bytes, etag: Etag },
    NotWorth,
}

struct Inner {
    /// By the identity's ETag.
    kept: HashMap<Etag, Kept>,
    /// Oldest first: what goes when the share is full.
    order: VecDeque<Etag>,
    used: u64,
    /// ETags being compressed, so a burst of requests queues one job.
    pending: HashSet<Etag>,
}

/// The compressed representations, and the thread that makes them.
pub struct Compressed {
    inner: Mutex<Inner>,
    limit: u64,
    page: PageSize,
    worker: OnceLock<Sender<Job>>,
}

struct Job {
    asset: Arc<Asset>,
    etag: Etag,
}

impl Compressed {
    /// Results held to `limit` bytes, charged in pages of `page`.
    pub fn new(limit: u64, page: PageSize) -> Compressed {
        Compressed {
            inner: Mutex::new(Inner {
                kept: HashMap::new(),
                order: VecDeque::new(),
                used: 0,
                pending: HashSet::new(),
            }),
            limit,
            page,
            worker: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change is made whole under the lock.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gzip of the file whose identity has ETag `etag`, and its own ETag, if ready;
    /// otherwise queues it (once) on `cache`'s behalf and answers `None`.
    pub fn get_or_queue(
        &self,
        cache: &Weak<Cache>,
        asset: &Arc<Asset>,
        etag: Etag,
    ) -> Option<(Bytes, Etag)> {
        let mut inner = self.lock();
        match inner.kept.get(&etag) {
            Some(Kept::Gzip { bytes, etag }) => return Some((bytes.clone(), *etag)),
            Some(Kept::NotWorth) => return None,
            None => {}
        }
        if !inner.pending.insert(etag) {
            return None;
        }
        drop(inner);
        let tx = self.worker.get_or_init(|| {
            let (tx, rx) = channel::<Job>();
            let cache = cache.clone();
            std::thread::Builder::new()
                .name("tinyserve-gzip".into())
                .spawn(move || {
                    for job in rx {
                        let Some(cache) = cache.upgrade() else { return };
                        if let Some(c) = cache.compressed() {
                            c.run(&cache, job);
                        }
                    }
                })
                .expect("spawn the compression thread");
            tx
        });
        // The thread lives as long as the cache: sending cannot fail.
        let _ = tx.send(Job {
            asset: asset.clone(),
            etag,
        });
        None
    }

    /// Compresses one file, if its bytes still are the ones `job.etag` names.
    fn run(&self, cache: &Cache, job: Job) {
        let outcome = self.compress(cache, &job);
        let mut inner = self.lock();
        inner.pending.remove(&job.etag);
        let Some(kept) = outcome else { return };
        let cost = self.cost(&kept);
        if cost > self.limit {
            return;
        }
        while inner.used + cost > self.limit {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(k) = inner.kept.remove(&old) {
                inner.used -= self.cost(&k);
            }
        }
        inner.used += cost;
        inner.order.push_back(job.etag);
        inner.kept.insert(job.etag, kept);
        let used = inner.used;
        drop(inner);
        // Taken from the files' budget (after this lock is let go: the store's lock is
        // never taken inside this one).
        cache.reserve(used);
    }

    /// What `kept` is charged: its bytes in pages, and the entry.
    fn cost(&self, kept: &Kept) -> u64 {
        match kept {
            Kept::Gzip { bytes, .. } => self.page.footprint(bytes.len() as u64) + ENTRY_BYTES,
            Kept::NotWorth => ENTRY_BYTES,
        }
    }

    fn compress(&self, cache: &Cache, job: &Job) -> Option<Kept> {
        let variant = &job.asset.variants[0];
        let bytes = match cache.content(&job.asset, 0).ok()? {
            Content::Memory(b) => b,
            Content::File(file, id) => resolve::read_verified(&file, id, None).ok()??,
        };
        // The bytes must be the version the ETag names: a file edited since its lookup
        // is left for its next request to queue again.
        if Etag::of(resolve::hash(&bytes)) != job.etag || bytes.len() as u64 != variant.len() {
            return None;
        }
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(bytes.len() / 3),
            flate2::Compression::new(6),
        );
        gz.write_all(&bytes).ok()?;
        let gz = gz.finish().ok()?;
        // Not worth a second representation unless it saves a tenth.
        if gz.len() as u64 * 10 > bytes.len() as u64 * 9 {
            return Some(Kept::NotWorth);
        }
        let etag = Etag::of(resolve::hash(&gz));
        Some(Kept::Gzip {
            bytes: Bytes::from(gz),
            etag,
        })
    }

    /// Memory the results hold, as charged against `--cache-max`.
    pub fn used(&self) -> u64 {
        self.lock().used
    }
}
