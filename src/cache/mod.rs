//! The file cache: what request paths name, loaded on first use and kept within bounds
//! ([`crate::cache::store`] keeps the entries and their budgets; [`crate::cache::entry`] says what an
//! entry is).
//!
//! Nothing is read at startup. A request path missing from the cache is resolved on the
//! spot ([`crate::files::resolve`]: an `openat2` and an `fstat` or three, and for a small file one
//! read, which also gives its ETag), and the result is kept: a file with its
//! representations, a redirect, or "no such file".
//!
//! Freshness: each entry records the [`Watch`] generation it was checked at. A hit at the
//! current generation is served as it is; an older one is checked again (its files'
//! identities compared afresh) and reloaded only if they changed.
//!
//! ETags: a file up to `HASH_INLINE_MAX` is hashed as it is first read, so it never goes
//! out without one. A larger file is hashed in the background by one thread; until that
//! finishes its responses carry no ETag (Last-Modified still validates), so no 200 ever
//! carries an ETag that does not describe its bytes, and the first request does not wait
//! for a gigabyte to be read.

pub mod compressed;
pub mod entry;
pub mod file_id;
pub mod mapped;
pub mod s3fifo;
pub mod store;
pub mod watch;

use std::fs::File;
use std::io;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use bytes::Bytes;
use http::HeaderValue;

use crate::cache::compressed::Compressed;
pub use crate::cache::entry::{Asset, Found, Resident, Variant};
use crate::cache::file_id::FileId;
pub use crate::cache::store::{Limits, Stats, ENTRY_BYTES};
use crate::cache::store::{Store, Unhashed};
use crate::cache::watch::Watch;
use crate::files::headers;
use crate::files::headers::{ImmutableRule, REFUSED_HEADERS};
use crate::files::mime;
use crate::files::negotiate::Encoding;
use crate::files::resolve::{self, Etag, Probe, Probed, Root};
use crate::files::rules::Rules;
use crate::ops::config::Config;

/// How many files stay open by default: a quarter of the descriptor limit, at most 16384
/// (a container's usual limit of 1048576 gives 16384; a shell's 1024 gives 256), so open
/// files cannot take the descriptors connections need. Each costs the kernel about 0.3 KiB.
pub fn default_open_files() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let soft = if ok { limit.rlim_cur } else { 1024 };
    (soft / 4).clamp(16, 16384) as usize
}

/// The identities of the root's rule files (`None` where missing).
fn rule_ids(root: &std::path::Path) -> [Option<FileId>; 2] {
    crate::files::rules::FILES.map(|name| {
        std::fs::metadata(root.join(name))
            .ok()
            .map(|m| FileId::of(&m))
    })
}

/// Files up to this size are hashed when they are first looked up, on the request's own
/// thread (a 256 KiB read and hash from the page cache: about 50 µs); larger ones in the
/// background, so a first request never waits for a large file to be read.
const HASH_INLINE_MAX: u64 = 256 << 10;

/// The bytes to send for a representation.
pub enum Content {
    /// In memory.
    Memory(Bytes),
    /// In this open file, which must keep this identity while it is sent.
    File(Arc<File>, FileId),
}

/// The file changed between its lookup and its reading: look it up again.
#[derive(Debug)]
pub struct Stale;

/// The cache; shared by every connection.
pub struct Cache {
    root: Root,
    limits: Limits,
    immutable: ImmutableRule,
    cache_control: HeaderValue,
    watch: Arc<Watch>,
    state: Mutex<Store>,
    /// `_headers` and `_redirects`: the last good ones, the generation they were checked
    /// at and the identities of the files they came from.
    rules: Mutex<(u64, [Option<FileId>; 2], Arc<Rules>)>,
    /// Where large files go to be hashed; the thread starts with the first.
    hasher: OnceLock<Sender<HashJob>>,
    /// gzip of compressible files without sidecars (`--compress auto`).
    compressed: Option<Compressed>,
    me: Weak<Cache>,
}

struct HashJob {
    key: Arc<str>,
    variant: usize,
    encoding: Encoding,
    id: FileId,
}

impl Cache {
    /// A cache of `config.root` whose entries `watch` keeps fresh. Fails if the root
    /// cannot be opened.
    pub fn new(config: &Config, limits: Limits, watch: Arc<Watch>) -> io::Result<Arc<Cache>> {
        let root = Root::open(&config.root)?;
        // The root's own changes (the rule files, a ConfigMap swap) from the start.
        watch.watch_folders(root.path(), [std::path::Path::new("")]);
        // Compressed representations may take up to an eighth of --cache-max; what they hold
        // is held back from the files' budget (`Store::reserve`), so the two together stay
        // within --cache-max, and a site nobody asks gzip of keeps all of it for files.
        let share = limits.memory / compressed::SHARE;
        Ok(Arc::new_cyclic(|me: &Weak<Cache>| Cache {
            root,
            limits,
            immutable: config.immutable.clone(),
            cache_control: headers::forever(&config.cache_control),
            watch,
            state: Mutex::new(Store::new(limits)),
            rules: Mutex::new((0, rule_ids(&config.root), config.rules.clone())),
            hasher: OnceLock::new(),
            compressed: config.compress.then(|| Compressed::new(share, limits.page)),
            me: me.clone(),
        }))
    }

    /// Queues `job` for the hashing thread, started with the first job: a site with no
    /// large file never has one.
    fn hash_later(&self, job: HashJob) {
        let tx = self.hasher.get_or_init(|| {
            let (tx, rx) = channel::<HashJob>();
            let me = self.me.clone();
            std::thread::Builder::new()
                .name("tinyserve-hash".into())
                .spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    for job in rx {
                        let Some(cache) = me.upgrade() else { return };
                        cache.hash_in_background(job, &mut buf);
                    }
                })
                .expect("spawn the hashing thread");
            tx
        });
        // The thread lives as long as the cache: sending cannot fail.
        let _ = tx.send(job);
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // Every change to the state is completed before the lock is released (panic=abort
        // in release builds anyway), so a poisoned lock still guards consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the decoded, safe request `path` names now. A path ending in `/` names that
    /// directory's `index.html`.
    pub fn lookup(&self, path: &str) -> Found {
        let owned;
        let key = if path.ends_with('/') {
            owned = format!("{path}index.html");
            owned.as_str()
        } else {
            path
        };
        let generation = self.watch.generation();
        if let Some(found) = self.lock().hit(key, generation) {
            return found;
        }
        self.refresh(key, generation)
    }

    /// Looks `key` up on disk and brings its entry up to date.
    fn refresh(&self, key: &str, generation: u64) -> Found {
        // Watched before it is looked at: a change after this point moves the generation.
        self.watch
            .watch_folders(self.root.path(), resolve::folders(key));
        // The rule files as the last look at them found them (each request's first look
        // at a new generation, in `rules`): never served under any name.
        let hidden: Vec<FileId> = self.lock_rules().1.iter().flatten().copied().collect();
        for _ in 0..3 {
            let probe = resolve::probe(&self.root, key, &hidden);
            if let Some(found) = self.lock().revalidate(key, generation, &probe) {
                return found;
            }
            if let Some(first) = probe.files().first().filter(|f| f.via_symlink) {
                if let Some(real) = resolve::real_folder(&self.root, key, &first.file) {
                    // Where a symlink led: changes there count too. A watch added only now
                    // may have missed a change since the probe, so look again.
                    if self.watch.watch_folders(self.root.path(), [real.as_path()]) {
                        continue;
                    }
                }
            }
            if let Some(found) = self.load(key, probe) {
                return self.keep(key, found, generation);
            }
            // It changed while being read: look again.
        }
        tracing::warn!(
            path = key,
            "file keeps changing while being read; not serving it now"
        );
        Found::Missing
    }

    /// Builds the entry for `probe`, reading small files (their hash is the ETag) and
    /// opening large ones. `None` if a file changed meanwhile.
    fn load(&self, key: &str, probe: Probe) -> Option<Found> {
        let files = match probe {
            Probe::Missing => return Some(Found::Missing),
            Probe::Redirect => return Some(Found::Redirect),
            Probe::Files(files) => files,
        };
        let mut variants = Vec::with_capacity(files.len());
        for Probed {
            encoding, id, file, ..
        } in files
        {
            let (etag, resident) = if id.len <= self.limits.file_max.max(HASH_INLINE_MAX) {
                // Hashed now, so even the first response has its ETag; a small file's bytes
                // are kept, a larger one's descriptor.
                let keep = id.len <= self.limits.file_max;
                let page = keep.then_some(self.limits.page);
                let data = resolve::read_verified(&file, id, page).ok()??;
                let etag = Etag::of(resolve::hash(&data));
                let resident = if keep {
                    Resident::Memory(data)
                } else {
                    Resident::Open(Arc::new(file))
                };
                (Some(etag), resident)
            } else {
                (None, Resident::Open(Arc::new(file)))
            };
            variants.push(Variant {
                encoding,
                id,
                etag,
                resident,
            });
        }
        let name = key.rsplit('/').next().unwrap_or(key);
        let content_type = mime::content_type(name);
        let gzippable = self.compressed.is_some()
            && variants.len() == 1
            && (compressed::MIN_LEN..=compressed::MAX_LEN).contains(&variants[0].id.len)
            && compressed::is_compressible(content_type);
        Some(Found::File(Arc::new(Asset {
            key: key.into(),
            modified: variants[0].id.modified_secs(),
            variants: variants.into(),
            content_type,
            immutable: headers::is_immutable(&self.immutable, key),
            gzippable,
        })))
    }

    /// Stores `found` under `key`, within the budgets, and queues the hashing of large
    /// files. Returns what was stored (contents over a budget dropped).
    fn keep(&self, key: &str, found: Found, generation: u64) -> Found {
        let (stored, work) = self.lock().keep(key, found, generation);
        for Unhashed {
            variant,
            encoding,
            id,
        } in work
        {
            self.hash_later(HashJob {
                key: key.into(),
                variant,
                encoding,
                id,
            });
        }
        stored
    }

    /// The bytes of `asset`'s representation `variant`: from memory or an open descriptor
    /// if the cache holds them, else read or opened now (and kept, within the budgets).
    pub fn content(&self, asset: &Asset, variant: usize) -> Result<Content, Stale> {
        let v = &asset.variants[variant];
        let small = v.id.len <= self.limits.file_max;
        let file = match &v.resident {
            Resident::Memory(b) => return Ok(Content::Memory(b.clone())),
            Resident::Open(f) if !small => return Ok(Content::File(f.clone(), v.id)),
            Resident::Open(f) => f.clone(),
            Resident::Nothing => Arc::new(
                resolve::open_verified(&self.root, &asset.key, v.encoding, v.id)
                    .ok()
                    .flatten()
                    .ok_or(Stale)?,
            ),
        };
        // A small file's bytes are kept from its second request on; until then (or if
        // they do not fit) its descriptor is.
        let resident = if small && self.lock().warm_up(&asset.key) {
            let data = resolve::read_verified(&file, v.id, Some(self.limits.page))
                .ok()
                .flatten();
            Resident::Memory(data.ok_or(Stale)?)
        } else if matches!(v.resident, Resident::Open(_)) {
            return Ok(Content::File(file, v.id));
        } else {
            Resident::Open(file)
        };
        let content = match &resident {
            Resident::Memory(b) => Content::Memory(b.clone()),
            Resident::Open(f) => Content::File(f.clone(), v.id),
            Resident::Nothing => unreachable!("chosen above"),
        };
        let mut st = self.lock();
        st.update_variant(&asset.key, variant, v.id, |v| {
            if !matches!(v.resident, Resident::Memory(_)) {
                v.resident = resident;
            }
        });
        Ok(content)
    }

    /// The `_headers` and `_redirects` rules now: read again when the watch says something
    /// changed and their files did; a file with an error keeps the last good rules (the
    /// error is logged with its file and line).
    pub fn rules(&self) -> Arc<Rules> {
        let generation = self.watch.generation();
        let mut r = self.lock_rules();
        if r.0 != generation {
            r.0 = generation;
            let ids = rule_ids(self.root.path());
            if ids != r.1 {
                r.1 = ids;
                match Rules::load(self.root.path(), &REFUSED_HEADERS) {
                    Ok(rules) => {
                        tracing::info!("reloaded _headers and _redirects");
                        r.2 = Arc::new(rules);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "keeping the previous rules");
                    }
                }
            }
        }
        r.2.clone()
    }

    fn lock_rules(&self) -> MutexGuard<'_, (u64, [Option<FileId>; 2], Arc<Rules>)> {
        // Replaced whole under the lock: a poisoned lock still guards consistent data.
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops what is kept for `key`, after its files were found changed.
    pub fn forget(&self, key: &str) {
        self.lock().forget(key);
    }

    /// Whether `path` names an asset that never changes under its name (a fingerprinted
    /// file name or an `--immutable` prefix).
    pub fn is_immutable(&self, path: &str) -> bool {
        headers::is_immutable(&self.immutable, path)
    }

    /// The `Cache-Control` of `asset`.
    pub fn cache_control(&self, asset: &Asset) -> HeaderValue {
        if asset.immutable {
            HeaderValue::from_static(headers::IMMUTABLE)
        } else {
            self.cache_control.clone()
        }
    }

    /// Counters and sizes now.
    pub fn stats(&self) -> Stats {
        let mut stats = self.lock().stats();
        if let Some(c) = &self.compressed {
            stats.memory_bytes += c.used();
        }
        stats
    }

    /// The compressed representations, when `--compress` is on.
    pub fn compressed(&self) -> Option<&Compressed> {
        self.compressed.as_ref()
    }

    /// Holds `bytes` of the memory budget back for the compressed representations.
    pub fn reserve(&self, bytes: u64) {
        self.lock().reserve(bytes);
    }

    /// The gzip of `asset` (no sidecars, compressible, with its ETag) and that gzip's own
    /// ETag, if it is ready; otherwise it is queued and `None` says to send the file as it
    /// is for now.
    pub fn gzip_of(&self, asset: &Arc<Asset>) -> Option<(Bytes, Etag)> {
        let c = self.compressed.as_ref()?;
        let etag = asset.variants[0].etag?;
        c.get_or_queue(&self.me, asset, etag)
    }

    fn hash_in_background(&self, job: HashJob, buf: &mut [u8]) {
        let hash = resolve::open_verified(&self.root, &job.key, job.encoding, job.id)
            .ok()
            .flatten()
            .and_then(|f| resolve::hash_file(&f, job.id, buf).ok().flatten());
        self.lock()
            .hashed(&job.key, job.variant, job.id, hash.map(Etag::of));
    }
}

#[cfg(test)]
mod tests;
