//! The cache's bookkeeping: entries by key in slots, their eviction orders ([`S3Fifo`]) and
//! the budgets they are held to. It never touches the file system; [`crate::cache`] does
//! that and hands it what it found.
//!
//! Two budgets beside the entry count, each with its own S3-FIFO order:
//! - memory (`--cache-max`): every entry at [`ENTRY_BYTES`] plus its key's length, and the
//!   bytes of small files; content makes room for entries;
//! - open files (`--cache-open-files`): descriptors, sent with `sendfile`.
//!
//! An entry over a budget loses only what that budget counts: a file whose bytes are
//! dropped keeps its metadata and ETag and is read or opened again when next sent.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use crate::cache::entry::{Asset, Found, Resident, Variant};
use crate::cache::file_id::FileId;
use crate::cache::mapped::PageSize;
use crate::cache::s3fifo::S3Fifo;
use crate::files::negotiate::Encoding;
use crate::files::resolve::{Etag, Probe};

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
    /// The kernel's memory page: what content in memory is charged in.
    pub page: PageSize,
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
    /// Files over 256 KiB hashed in the background.
    pub hashed: u64,
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

struct Slot {
    key: Box<str>,
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
    order: S3Fifo,
    used: u64,
    limit: u64,
}

/// The entries, their orders and budgets.
pub struct Store {
    limits: Limits,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Slot ids by their key's hash, 4 bytes a bucket (a map of `Arc<str>` keys took 24);
    /// keys are compared through their slots, which a hit reads anyway. perf on bench/'s
    /// Zipf load: the lookup's share of the server's samples 5.1% -> 4.5%. The compare
    /// still follows the slot's pointer to its key (`memcmp`, 1.0% of samples); keys held
    /// in the slot only moved that miss to the slot's own load (bench 1600Z-ab). Hashed
    /// with SipHash and a random key: paths are the client's choice.
    index: hashbrown::HashTable<u32>,
    hasher: RandomState,
    entries: S3Fifo,
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

/// A representation of a kept file whose ETag is still to be computed.
pub struct Unhashed {
    /// Which representation of the entry.
    pub variant: usize,
    /// Its coding (which file it is).
    pub encoding: Encoding,
    /// The identity the ETag must describe.
    pub id: FileId,
}

impl Store {
    /// An empty store held to `limits`.
    pub fn new(limits: Limits) -> Store {
        let budget = |limit| Budget {
            order: S3Fifo::default(),
            used: 0,
            limit,
        };
        Store {
            limits,
            slots: Vec::new(),
            free: Vec::new(),
            index: hashbrown::HashTable::new(),
            hasher: RandomState::new(),
            entries: S3Fifo::default(),
            entry_bytes: 0,
            budgets: [budget(limits.memory), budget(limits.open_files as u64)],
            hashing: HashSet::new(),
            known: HashMap::new(),
            stats: Stats::default(),
        }
    }

    /// The entry for `key` if it was checked at `generation` (a hit).
    pub fn hit(&mut self, key: &str, generation: u64) -> Option<Found> {
        let id = self.find(key)?;
        let slot = self.slots[id as usize].as_ref().expect("indexed slot");
        if slot.checked != generation {
            return None;
        }
        let found = slot.found.clone();
        self.touch(id);
        self.stats.hits += 1;
        Some(found)
    }

    /// The entry for `key`, now known to be current at `generation`, if it still describes
    /// what `probe` found.
    pub fn revalidate(&mut self, key: &str, generation: u64, probe: &Probe) -> Option<Found> {
        let id = self.find(key)?;
        let slot = self.slots[id as usize].as_mut().expect("indexed slot");
        if !slot.found.describes(probe) {
            return None;
        }
        slot.checked = slot.checked.max(generation);
        let found = slot.found.clone();
        self.touch(id);
        self.stats.revalidations += 1;
        Some(found)
    }

    /// Stores `found` under `key` as checked at `generation`, within the budgets (ETags
    /// known from before filled in). Returns what was stored and the representations to
    /// hash, each now marked as being hashed.
    pub fn keep(&mut self, key: &str, found: Found, generation: u64) -> (Found, Vec<Unhashed>) {
        self.stats.misses += 1;
        let id = match self.find(key) {
            Some(id) => id,
            None => self.new_slot(key),
        };
        let found = self.with_known_etags(found);
        {
            let slot = self.slots[id as usize].as_mut().expect("slot");
            slot.found = found;
            slot.checked = generation;
        }
        self.settle(id);
        let found = self.slots[id as usize]
            .as_ref()
            .expect("slot")
            .found
            .clone();
        let mut work = Vec::new();
        if let Found::File(asset) = &found {
            for (i, v) in asset.variants.iter().enumerate() {
                if v.etag.is_none() && self.hashing.insert(v.id) {
                    work.push(Unhashed {
                        variant: i,
                        encoding: v.encoding,
                        id: v.id,
                    });
                }
            }
        }
        (found, work)
    }

    /// Records the end of hashing `key`'s representation `variant`, file `id`: its ETag,
    /// or `None` if the file changed meanwhile (the change moves the watch generation, and
    /// the reload queues the new file).
    pub fn hashed(&mut self, key: &str, variant: usize, id: FileId, etag: Option<Etag>) {
        self.hashing.remove(&id);
        let Some(etag) = etag else {
            return;
        };
        self.stats.hashed += 1;
        if self.known.len() >= self.limits.entries {
            self.known.clear();
        }
        self.known.insert(id, etag);
        self.update_variant(key, variant, id, |v| v.etag = Some(etag));
    }

    /// Drops what is kept for `key`.
    pub fn forget(&mut self, key: &str) {
        if let Some(id) = self.find(key) {
            self.remove_slot(id);
        }
    }

    /// Counters and sizes now.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.entries = self.index.len() as u64;
        s.content_bytes = self.budgets[MEMORY].used;
        s.memory_bytes = s.content_bytes + self.entry_bytes;
        s.open_files = self.budgets[OPEN].used;
        s
    }

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
    pub fn warm_up(&mut self, key: &str) -> bool {
        let Some(id) = self.find(key) else {
            return false;
        };
        let slot = self.slots[id as usize].as_mut().expect("indexed slot");
        std::mem::replace(&mut slot.warm, true)
    }

    /// The slot that holds `key`.
    fn find(&self, key: &str) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.hasher.hash_one(key), |&id| key_of(slots, id) == key)
            .copied()
    }

    fn touch(&mut self, id: u32) {
        self.entries.touch(id);
        // Only the orders the slot is in: its weights say which, without a look at them.
        let weight = self.slots[id as usize].as_ref().expect("slot").weight;
        for (b, w) in self.budgets.iter_mut().zip(weight) {
            if w > 0 {
                b.order.touch(id);
            }
        }
    }

    /// A new, empty slot for `key`, evicting the entry its order picks if the cache is full.
    fn new_slot(&mut self, key: &str) -> u32 {
        let cost = entry_cost(key);
        let memory = self.budgets[MEMORY].limit;
        while self.index.len() >= self.limits.entries || self.entry_bytes + cost > memory {
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
        let slot = Slot {
            key: key.into(),
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
        let (index, slots, hasher) = (&mut self.index, &self.slots, &self.hasher);
        index.insert_unique(hasher.hash_one(key_of(slots, id)), id, |&other| {
            hasher.hash_one(key_of(slots, other))
        });
        self.entries.insert(id, 1, None);
        id
    }

    fn remove_slot(&mut self, id: u32) {
        let Some(slot) = self.slots[id as usize].take() else {
            return;
        };
        // Unconditionally: the orders also forget what they remember of the id, which the
        // next new slot may reuse for another key.
        self.entries.remove(id);
        for (b, w) in self.budgets.iter_mut().zip(slot.weight) {
            if b.order.remove(id).is_some() {
                b.used -= w;
            }
        }
        if let Ok(found) = self
            .index
            .find_entry(self.hasher.hash_one(&*slot.key), |&other| other == id)
        {
            found.remove();
        }
        self.entry_bytes -= entry_cost(&slot.key);
        self.free.push(id);
    }

    /// Applies `change` to representation `variant` of `key`'s entry if it still holds the
    /// file `id`, then settles the budgets.
    pub fn update_variant(
        &mut self,
        key: &str,
        variant: usize,
        id: FileId,
        change: impl FnOnce(&mut Variant),
    ) {
        let Some(slot_id) = self.find(key) else {
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
            let need = weight(&slot.found, which, self.limits.page);
            let budget = &mut self.budgets[which];
            // A member keeps its queue and frequency across a change of weight (it goes
            // back as the newest of that queue); one that is not (its bytes or descriptor
            // dropped) keeps what its order remembers of it, so it is not removed.
            let standing = if budget.order.contains(id) {
                budget.used -= old;
                budget.order.remove(id)
            } else {
                None
            };
            let limit = self.limit(which);
            if need > 0 {
                self.make_room(which, need, limit);
            }
            let budget = &mut self.budgets[which];
            let slot = self.slots[id as usize].as_mut().expect("slot");
            if need > 0 && budget.used + need <= limit {
                budget.order.insert(id, need, standing);
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

    /// Holds `bytes` of `--cache-max` back for memory kept outside the store (the
    /// compressed representations), dropping content, then entries, until the rest fits.
    pub fn reserve(&mut self, bytes: u64) {
        let memory = self.limits.memory.saturating_sub(bytes);
        self.budgets[MEMORY].limit = memory;
        let limit = self.limit(MEMORY);
        self.make_room(MEMORY, 0, limit);
        while self.entry_bytes > memory {
            let Some(victim) = self.entries.evict() else {
                break;
            };
            self.stats.evictions += 1;
            self.remove_slot(victim);
        }
    }

    /// What budget `which` may use: content shares `--cache-max` with the entries.
    fn limit(&self, which: usize) -> u64 {
        let limit = self.budgets[which].limit;
        match which {
            MEMORY => limit.saturating_sub(self.entry_bytes),
            _ => limit,
        }
    }

    /// Drops what budget `which` counts from the members its order picks, until `need` more
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
            // Only dropped bytes start the count of requests over: a small file whose
            // descriptor is dropped before its second request must still be kept in memory
            // at that request. (With the count reset here too, a popular small page bounced
            // between the two budgets: 14% of bench/'s Zipf requests opened a file.)
            if which == MEMORY {
                victim.warm = false;
            }
            victim.found = strip(&victim.found, which);
        }
    }
}

/// The key of slot `id`, which the index holds.
fn key_of(slots: &[Option<Slot>], id: u32) -> &str {
    &slots[id as usize].as_ref().expect("indexed slot").key
}

/// The budget that counts what is kept of `resident`.
fn budget_of(resident: &Resident) -> Option<usize> {
    match resident {
        Resident::Nothing => None,
        Resident::Memory(_) => Some(MEMORY),
        Resident::Open(_) => Some(OPEN),
    }
}

/// The budget that counts what is kept of `resident`, and how much it counts with memory in
/// pages of `page`.
fn charge(resident: &Resident, page: PageSize) -> Option<(usize, u64)> {
    let n = match resident {
        Resident::Nothing => return None,
        Resident::Memory(b) => page.footprint(b.len() as u64),
        Resident::Open(_) => 1,
    };
    Some((budget_of(resident)?, n))
}

/// What `found` counts against budget `which`.
fn weight(found: &Found, which: usize, page: PageSize) -> u64 {
    let Found::File(asset) = found else {
        return 0;
    };
    asset
        .variants
        .iter()
        .filter_map(|v| charge(&v.resident, page))
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
        if budget_of(&v.resident) == Some(which) {
            v.resident = Resident::Nothing;
        }
    }
    Found::File(Arc::new(asset))
}

#[cfg(test)]
mod tests;
