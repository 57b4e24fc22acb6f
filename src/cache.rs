//! The file cache: what request paths name, loaded on first use and kept within bounds.
//!
//! Nothing is read at startup. A request path missing from the cache is resolved on the
//! spot ([`crate::resolve`]: a few `stat`s, and for a small file one read, which also gives
//! its ETag), and the result is kept: a file with its representations, a redirect, or "no
//! such file". Three budgets bound what is kept, each with its own [`Sieve`] order:
//! - entries (`--cache-entries`): every kept path, found or not;
//! - content bytes (`--cache-max`): small files' bytes, served without touching the disk;
//! - open files (`--cache-open-files`): descriptors of large files, sent with `sendfile`.
//!
//! An entry over a budget loses only what that budget counts: a file whose bytes are
//! evicted keeps its metadata and ETag and is read again when next sent.
//!
//! Freshness: each entry records the [`Watch`] generation it was checked at. A hit at the
//! current generation is served as it is; an older one is checked again (its files'
//! identities compared with a fresh `stat`) and reloaded only if they changed.
//!
//! ETags: a small file is hashed as it is read, so it never goes out without one. A large
//! file is hashed in the background by one thread; until that finishes its responses carry
//! no ETag (Last-Modified still validates), so no 200 ever carries an ETag that does not
//! describe its bytes, and the first request does not wait for a gigabyte to be read.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use http::HeaderValue;

use crate::config::{Config, ImmutableRule};
use crate::file_id::FileId;
use crate::headers;
use crate::mime;
use crate::negotiate::Encoding;
use crate::resolve::{self, Etag, Probe, Probed, Root};
use crate::sieve::Sieve;
use crate::watch::Watch;

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

/// What a request path names.
#[derive(Debug, Clone)]
pub enum Found {
    /// A file (or a directory's `index.html`).
    File(Arc<Asset>),
    /// A directory named without its trailing slash: redirect to the path with one.
    Redirect,
    /// Nothing servable.
    Missing,
}

/// A servable file with its representations.
#[derive(Debug, Clone)]
pub struct Asset {
    /// The cache key it is kept under.
    pub key: Arc<str>,
    /// Identity first, then the sidecars clients may prefer: brotli, then gzip.
    pub variants: Box<[Variant]>,
    /// The identity file's modification time, in whole seconds since the epoch.
    pub modified: Option<u64>,
    /// `Content-Type`, from the name.
    pub content_type: &'static str,
    /// Whether `--immutable` gives it the one-year `Cache-Control`.
    pub immutable: bool,
}

/// One representation of a file: the file itself or one of its precompressed sidecars.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Which coding this representation has.
    pub encoding: Encoding,
    /// The file's identity (its length included) when it was loaded.
    pub id: FileId,
    /// Its strong ETag, from the content alone; `None` while a large file is being hashed.
    pub etag: Option<Etag>,
    /// What the cache holds of it.
    pub resident: Resident,
}

impl Variant {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.id.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.id.len == 0
    }
}

/// What the cache holds of a representation's bytes.
#[derive(Debug, Clone)]
pub enum Resident {
    /// Nothing: read or opened when next sent.
    Nothing,
    /// Its bytes (files up to `--cache-file-max`).
    Memory(Bytes),
    /// An open descriptor (larger files).
    Open(Arc<File>),
}

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

/// The cache's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Content bytes kept in memory.
    pub memory: u64,
    /// Largest file kept in memory; larger ones are kept open instead.
    pub file_max: u64,
    /// Paths kept, at most (fewer if `memory` cannot hold that many at [`ENTRY_BYTES`]
    /// and their keys).
    pub entries: usize,
    /// Descriptors kept open.
    pub open_files: usize,
}

/// Counters and sizes, for metrics and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Paths kept.
    pub entries: u64,
    /// Memory charged against `--cache-max`: content, and entries at [`ENTRY_BYTES`].
    pub memory_bytes: u64,
    /// Content bytes kept in memory.
    pub content_bytes: u64,
    /// Descriptors kept open.
    pub open_files: u64,
    /// Lookups answered from the cache as they were.
    pub hits: u64,
    /// Lookups that had to go to the file system for a path not kept.
    pub misses: u64,
    /// Kept entries checked again after a possible change.
    pub revalidations: u64,
    /// Entries, contents or descriptors dropped to stay within a budget.
    pub evictions: u64,
    /// Large files hashed in the background.
    pub hashed: u64,
}

/// The cache; shared by every connection.
pub struct Cache {
    root: Root,
    limits: Limits,
    immutable: ImmutableRule,
    cache_control: HeaderValue,
    watch: Arc<Watch>,
    state: Mutex<State>,
    hasher: Sender<HashJob>,
}

struct Slot {
    key: Arc<str>,
    found: Found,
    /// The watch generation it was last checked at.
    checked: u64,
    /// What it counts against each budget.
    weight: [u64; 2],
    /// Whether a small file's bytes were asked for since they were last dropped: they are
    /// kept in memory only from the second time on, so pages asked for once (crawlers, a
    /// long tail of random pages) go out by `sendfile` and do not push popular ones out.
    warm: bool,
}

/// A budget: an eviction order and what its members use.
struct Budget {
    order: Sieve,
    used: u64,
    limit: u64,
}

/// Budget of small files' bytes (up to `--cache-file-max`), with the entries.
const MEMORY: usize = 0;
/// Budget of open descriptors.
const OPEN: usize = 1;

/// What one entry is charged against `--cache-max`, beside its content and its key's
/// length: its metadata, index slot and eviction links. Measured at about 410 bytes with
/// 20-byte keys (RSS over 48 000 entries with no content kept); rounded up for the
/// allocator's and the hash table's slack.
pub const ENTRY_BYTES: u64 = 512;

/// What an entry for `key` is charged: a flood of long random paths must not hold more
/// memory than `--cache-max` says.
fn entry_cost(key: &str) -> u64 {
    ENTRY_BYTES + key.len() as u64
}

struct State {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    index: HashMap<Arc<str>, u32>,
    entries: Sieve,
    /// What the entries are charged against `--cache-max` ([`entry_cost`]).
    entry_bytes: u64,
    budgets: [Budget; 2],
    /// Files being hashed, so a burst of misses queues one job each.
    hashing: HashSet<FileId>,
    /// ETags of large files hashed before, by identity: an entry evicted and loaded again
    /// gets its ETag at once instead of a second read of the whole file. Bounded by the
    /// entry budget (emptied when full: about 80 bytes an entry, no order to keep).
    known: HashMap<FileId, Etag>,
    stats: Stats,
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
        Ok(Arc::new_cyclic(|me: &Weak<Cache>| {
            let (tx, rx) = channel::<HashJob>();
            let me = me.clone();
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
            let budget = |limit| Budget {
                order: Sieve::default(),
                used: 0,
                limit,
            };
            Cache {
                root,
                limits,
                immutable: config.immutable.clone(),
                cache_control: headers::forever(&config.cache_control),
                watch,
                state: Mutex::new(State {
                    slots: Vec::new(),
                    free: Vec::new(),
                    index: HashMap::new(),
                    entries: Sieve::default(),
                    entry_bytes: 0,
                    budgets: [budget(limits.memory), budget(limits.open_files as u64)],
                    hashing: HashSet::new(),
                    known: HashMap::new(),
                    stats: Stats::default(),
                }),
                hasher: tx,
            }
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
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
        {
            let mut st = self.lock();
            if let Some(&id) = st.index.get(key) {
                let slot = st.slots[id as usize].as_ref().expect("indexed slot");
                if slot.checked == generation {
                    let found = slot.found.clone();
                    st.touch(id);
                    st.stats.hits += 1;
                    return found;
                }
            }
        }
        self.refresh(key, generation)
    }

    /// Looks `key` up on disk and brings its entry up to date.
    fn refresh(&self, key: &str, generation: u64) -> Found {
        // Watched before it is looked at: a change after this point moves the generation.
        self.watch
            .watch_folders(self.root.path(), resolve::folders(key));
        for _ in 0..3 {
            let probe = resolve::probe(&self.root, key);
            {
                let mut st = self.lock();
                if let Some(&id) = st.index.get(key) {
                    let slot = st.slots[id as usize].as_mut().expect("indexed slot");
                    if same(&slot.found, &probe) {
                        slot.checked = slot.checked.max(generation);
                        let found = slot.found.clone();
                        st.touch(id);
                        st.stats.revalidations += 1;
                        return found;
                    }
                }
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
            let (etag, resident) = if id.len <= self.limits.file_max {
                let data = resolve::read_verified(&file, id).ok()??;
                let etag = Etag::of(resolve::hash(&data));
                (Some(etag), Resident::Memory(Bytes::from(data)))
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
        Some(Found::File(Arc::new(Asset {
            key: key.into(),
            modified: variants[0].id.modified_secs(),
            variants: variants.into_boxed_slice(),
            content_type: mime::content_type(name),
            immutable: headers::is_immutable(&self.immutable, key),
        })))
    }

    /// Stores `found` under `key`, within the budgets, and queues the hashing of large
    /// files. Returns what was stored (contents over a budget dropped).
    fn keep(&self, key: &str, found: Found, generation: u64) -> Found {
        let mut jobs = Vec::new();
        let stored = {
            let mut st = self.lock();
            st.stats.misses += 1;
            let id = match st.index.get(key) {
                Some(&id) => id,
                None => st.new_slot(key, self.limits.entries),
            };
            let found = st.with_known_etags(found);
            {
                let slot = st.slots[id as usize].as_mut().expect("slot");
                slot.found = found;
                slot.checked = generation;
            }
            st.settle(id);
            let slot = st.slots[id as usize].as_ref().expect("slot");
            let found = slot.found.clone();
            if let Found::File(asset) = &found {
                for (i, v) in asset.variants.iter().enumerate() {
                    if v.etag.is_none() && !st.hashing.contains(&v.id) {
                        jobs.push(HashJob {
                            key: asset.key.clone(),
                            variant: i,
                            encoding: v.encoding,
                            id: v.id,
                        });
                    }
                }
                for job in &jobs {
                    st.hashing.insert(job.id);
                }
            }
            found
        };
        for job in jobs {
            // The thread lives as long as the cache: sending cannot fail.
            let _ = self.hasher.send(job);
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
            let data = resolve::read_verified(&file, v.id).ok().flatten();
            Resident::Memory(Bytes::from(data.ok_or(Stale)?))
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

    /// Drops what is kept for `key`, after its files were found changed.
    pub fn forget(&self, key: &str) {
        let mut st = self.lock();
        if let Some(&id) = st.index.get(key) {
            st.remove_slot(id);
        }
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
        let st = self.lock();
        let mut s = st.stats;
        s.entries = st.index.len() as u64;
        s.content_bytes = st.budgets[MEMORY].used;
        s.memory_bytes = s.content_bytes + st.entry_bytes;
        s.open_files = st.budgets[OPEN].used;
        s
    }

    /// The watch that keeps the entries fresh.
    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    fn hash_in_background(&self, job: HashJob, buf: &mut [u8]) {
        let hash = resolve::open_verified(&self.root, &job.key, job.encoding, job.id)
            .ok()
            .flatten()
            .and_then(|f| resolve::hash_file(&f, job.id, buf).ok().flatten());
        let mut st = self.lock();
        st.hashing.remove(&job.id);
        // A file that changed meanwhile gets no ETag from this job: the change moves the
        // watch generation, and the reload queues a job for the new file.
        if let Some(hash) = hash {
            st.stats.hashed += 1;
            let etag = Etag::of(hash);
            if st.known.len() >= self.limits.entries {
                st.known.clear();
            }
            st.known.insert(job.id, etag);
            st.update_variant(&job.key, job.variant, job.id, |v| v.etag = Some(etag));
        }
    }
}

/// Whether a kept entry still describes what the probe found: the same kind, the same
/// files with the same identities.
fn same(found: &Found, probe: &Probe) -> bool {
    match (found, probe) {
        (Found::Missing, Probe::Missing) | (Found::Redirect, Probe::Redirect) => true,
        (Found::File(asset), Probe::Files(files)) => {
            asset.variants.len() == files.len()
                && asset
                    .variants
                    .iter()
                    .zip(files)
                    .all(|(v, f)| v.encoding == f.encoding && v.id == f.id)
        }
        _ => false,
    }
}

impl State {
    /// `found` with the ETags of files hashed before filled in.
    fn with_known_etags(&self, found: Found) -> Found {
        let Found::File(asset) = &found else {
            return found;
        };
        let missing = |v: &Variant| v.etag.is_none() && self.known.contains_key(&v.id);
        if !asset.variants.iter().any(missing) {
            return found;
        }
        let mut asset = Asset::clone(asset);
        for v in asset.variants.iter_mut() {
            if v.etag.is_none() {
                v.etag = self.known.get(&v.id).copied();
            }
        }
        Found::File(Arc::new(asset))
    }

    /// Records that `key`'s bytes are asked for; whether they were asked for before since
    /// they were last dropped (so they are worth keeping now).
    fn warm_up(&mut self, key: &str) -> bool {
        let Some(&id) = self.index.get(key) else {
            return false;
        };
        let slot = self.slots[id as usize].as_mut().expect("indexed slot");
        std::mem::replace(&mut slot.warm, true)
    }

    fn touch(&mut self, id: u32) {
        self.entries.touch(id);
        for b in &mut self.budgets {
            b.order.touch(id);
        }
    }

    /// A new, empty slot for `key`, evicting the entry SIEVE picks if the cache is full.
    fn new_slot(&mut self, key: &str, max_entries: usize) -> u32 {
        let cost = entry_cost(key);
        let memory = self.budgets[MEMORY].limit;
        while self.index.len() >= max_entries || self.entry_bytes + cost > memory {
            let Some(victim) = self.entries.evict() else {
                break;
            };
            self.stats.evictions += 1;
            self.remove_slot(victim);
        }
        // Entries are charged against the memory budget too: content makes room for them.
        self.entry_bytes += cost;
        let limit = self.limit(MEMORY);
        self.make_room(MEMORY, 0, limit);
        let key: Arc<str> = key.into();
        let slot = Slot {
            key: key.clone(),
            found: Found::Missing,
            checked: 0,
            weight: [0; 2],
            warm: false,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, id);
        self.entries.insert(id);
        id
    }

    fn remove_slot(&mut self, id: u32) {
        let Some(slot) = self.slots[id as usize].take() else {
            return;
        };
        self.entries.remove(id);
        for (b, w) in self.budgets.iter_mut().zip(slot.weight) {
            if b.order.contains(id) {
                b.order.remove(id);
                b.used -= w;
            }
        }
        self.index.remove(&slot.key);
        self.entry_bytes -= entry_cost(&slot.key);
        self.free.push(id);
    }

    /// Applies `change` to representation `variant` of `key`'s entry if it still holds the
    /// file `id`, then settles the budgets.
    fn update_variant(
        &mut self,
        key: &str,
        variant: usize,
        id: FileId,
        change: impl FnOnce(&mut Variant),
    ) {
        let Some(&slot_id) = self.index.get(key) else {
            return;
        };
        let slot = self.slots[slot_id as usize].as_mut().expect("indexed slot");
        let Found::File(asset) = &slot.found else {
            return;
        };
        if asset.variants.get(variant).map(|v| v.id) != Some(id) {
            return;
        }
        let mut asset = Asset::clone(asset);
        change(&mut asset.variants[variant]);
        slot.found = Found::File(Arc::new(asset));
        self.settle(slot_id);
    }

    /// Counts slot `id`'s contents against the budgets again, evicting others' (or, if
    /// they cannot fit at all, its own) to stay within them.
    fn settle(&mut self, id: u32) {
        for which in [MEMORY, OPEN] {
            let slot = self.slots[id as usize].as_ref().expect("slot");
            let old = slot.weight[which];
            let need = weight(&slot.found, which);
            let budget = &mut self.budgets[which];
            if budget.order.contains(id) {
                budget.order.remove(id);
                budget.used -= old;
            }
            let limit = self.limit(which);
            if need > 0 {
                self.make_room(which, need, limit);
            }
            let budget = &mut self.budgets[which];
            let slot = self.slots[id as usize].as_mut().expect("slot");
            if need > 0 && budget.used + need <= limit {
                budget.order.insert(id);
                budget.used += need;
                slot.weight[which] = need;
            } else {
                slot.weight[which] = 0;
                if need > 0 {
                    slot.found = strip(&slot.found, which);
                }
            }
        }
    }
}

impl State {
    /// What budget `which` may use: content shares `--cache-max` with the entries.
    fn limit(&self, which: usize) -> u64 {
        let limit = self.budgets[which].limit;
        match which {
            MEMORY => limit.saturating_sub(self.entry_bytes),
            _ => limit,
        }
    }

    /// Drops what budget `which` counts from the members SIEVE picks, until `need` more
    /// fits within `limit` or nothing is left to drop.
    fn make_room(&mut self, which: usize, need: u64, limit: u64) {
        let budget = &mut self.budgets[which];
        while budget.used + need > limit {
            let Some(victim) = budget.order.evict() else {
                break;
            };
            self.stats.evictions += 1;
            let victim = self.slots[victim as usize].as_mut().expect("slot");
            budget.used -= victim.weight[which];
            victim.weight[which] = 0;
            victim.warm = false;
            victim.found = strip(&victim.found, which);
        }
    }
}

/// The budget that counts what is kept of `resident`, and how much it counts.
fn charge(resident: &Resident) -> Option<(usize, u64)> {
    match resident {
        Resident::Nothing => None,
        Resident::Memory(b) => Some((MEMORY, b.len() as u64)),
        Resident::Open(_) => Some((OPEN, 1)),
    }
}

/// What `found` counts against budget `which`.
fn weight(found: &Found, which: usize) -> u64 {
    let Found::File(asset) = found else {
        return 0;
    };
    asset
        .variants
        .iter()
        .filter_map(|v| charge(&v.resident))
        .filter(|&(w, _)| w == which)
        .map(|(_, n)| n)
        .sum()
}

/// `found` without what budget `which` counts.
fn strip(found: &Found, which: usize) -> Found {
    let Found::File(asset) = found else {
        return found.clone();
    };
    let mut asset = Asset::clone(asset);
    for v in asset.variants.iter_mut() {
        if charge(&v.resident).is_some_and(|(w, _)| w == which) {
            v.resident = Resident::Nothing;
        }
    }
    Found::File(Arc::new(asset))
}
